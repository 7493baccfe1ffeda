"""Single-task parameter-efficient fine-tuning: linear probe, prompt tuning, prefix tuning, LoRA, full."""

from ..spec import MethodSpec
from .config import TUNING_METHODS, OptimConfig, PeftPrimerConfig, SingleTaskConfig, TuningConfig
from .model import PEFTClassifier
from .strategy import build_tuning_strategy, prepare_single_task, run_single_task

__all__ = [
    "METHOD", "OptimConfig", "PEFTClassifier", "PeftPrimerConfig", "SingleTaskConfig", "TUNING_METHODS", "TuningConfig",
    "build_tuning_strategy", "prepare_single_task", "run_single_task",
]


def _primer_method(cfg: SingleTaskConfig, run: str) -> str:
    """The primer's method entry (its display name, e.g. ``"LoRA (q, v)"``) whose tuning method is ``run``."""
    return next(name for name, tuning in cfg.methods.items() if tuning.method == run)


METHOD = MethodSpec(
    name="peft_primer", presets=PeftPrimerConfig,
    experiments=lambda presets: {"vision": presets.vision, "text": presets.text},
    experiment_type=lambda _: SingleTaskConfig,
    prefix=lambda exp: exp,
    runs=lambda cfg: [tuning.method for tuning in cfg.methods.values()],
    prepare=lambda cfg, run, seed, sources: prepare_single_task(
        cfg, _primer_method(cfg, run), sources.benchmark, backbone=sources.backbone, seed=seed),
    run_name=_primer_method,
)
"""The PEFT primer in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/peft_primer.yaml``, one
experiment per modality, one run per tuning method (named in records by its display name)."""
