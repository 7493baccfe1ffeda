"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning"): one LoRA
adapter per task, all summed at inference, trained under a penalty on the overlap of its down-projection with the
previous tasks' (official code: cmnfriend/O-LoRA, commit 07117e1)."""

from typing import Any

from ..spec import MethodSpec, Sources, baseline_evaluates_untrained, with_baselines
from .analysis import down_overlap, orthogonality_mechanism
from .adapters import ModuleFactors, adapter_name, add_task_adapter, lora_layers, target_modules, task_factors
from .config import (
    ORTHOGONALITY_FORMS,
    OLoRAConfig,
    OLoRAExperimentConfig,
    OLoRAGenerativeConfig,
    OLoRAOptimConfig,
    OLoRAPresets,
    inclora,
)
from .generative import (
    OLoRASeq2Seq,
    encode_examples,
    exact_match,
    load_t5_tokenizer,
    normalize_answer,
    run_olora_generative,
)
from .loss import PenaltyRecord, l2_loss, olora_penalties, orthogonality_loss
from .model import OLoRAClassifier
from .strategy import OLORA_STATE, OLoRA, build_olora, prepare_olora, run_olora

__all__ = [
    "METHOD", "ModuleFactors", "OLoRA", "OLoRAClassifier", "OLoRAConfig", "OLoRAExperimentConfig",
    "OLoRAGenerativeConfig", "OLoRAOptimConfig", "OLoRAPresets", "OLoRASeq2Seq", "ORTHOGONALITY_FORMS",
    "PenaltyRecord", "adapter_name", "add_task_adapter", "build_olora", "down_overlap", "encode_examples",
    "exact_match", "inclora", "l2_loss", "load_t5_tokenizer", "lora_layers", "normalize_answer", "olora_penalties",
    "orthogonality_loss", "prepare_olora", "run_olora", "run_olora_generative", "target_modules", "task_factors",
]

GENERATIVE = "generative"
"""The name of O-LoRA's T5 experiment, which runs its own loop (:func:`run_olora_generative`)."""
INCLORA = "IncLoRA"
"""The run of an O-LoRA experiment without the orthogonality penalty (:func:`inclora`)."""


def _prepare(cfg: Any, run: str, seed: int, sources: Sources):
    chosen = inclora(cfg) if run == INCLORA else cfg
    return with_baselines("O-LoRA", prepare_olora)(chosen, "O-LoRA" if run == INCLORA else run, seed, sources)


def _generative_loop(cfg: OLoRAGenerativeConfig, run: str, name: str, save_to: Any, dry_run: bool,
                     experiences: int | None):
    from ...dry_run import generative_dry_arguments

    chosen = inclora(cfg) if run == INCLORA else cfg
    sources = generative_dry_arguments(chosen.model, chosen.order, experiences) if dry_run else {}
    return run_olora_generative(chosen, name=name, save_to=save_to, **sources).record


METHOD = MethodSpec(
    name="olora", presets=OLoRAPresets,
    experiments=lambda p: {**p.experiments, **({GENERATIVE: p.generative} if p.generative is not None else {})},
    experiment_type=lambda exp: OLoRAGenerativeConfig if exp == GENERATIVE else OLoRAExperimentConfig,
    prefix=lambda exp: GENERATIVE if exp == GENERATIVE else f"experiments.{exp}",
    runs=lambda cfg: ["O-LoRA", INCLORA, *getattr(cfg, "baselines", {})],
    prepare=_prepare,
    evaluate_untrained=baseline_evaluates_untrained,
    own_loop=lambda cfg: isinstance(cfg, OLoRAGenerativeConfig),
    loop=_generative_loop,
    strategy_state=(OLORA_STATE,),
    mechanism=(OLoRAClassifier, orthogonality_mechanism),
)
"""O-LoRA in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/olora.yaml``, its runs (``O-LoRA``,
``IncLoRA`` and the baselines), the generative T5 loop, the penalty log in checkpoints."""
