"""Configuration of O-LoRA (Wang et al. 2023): the method's hyperparameters and its experiments.

Defaults are the reference's (cmnfriend/O-LoRA, commit 07117e1): rank 8, α 32 (scaling α/r = 4), dropout 0.1,
LoRA on ``q`` and ``v``, λ1 = 0.5, λ2 = 0, AdamW at a constant learning rate 1e-3, one epoch per task, global
batch 64.
``configs/olora.yaml`` holds the experiments: an encoder classifier per modality in the quick profile, T5-large
generating the label strings of O-LoRA's text benchmark in the paper profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from ...benchmarks import BenchmarkConfig
from ...benchmarks.olora_text import OLORA_TEST_SIZE, ORDERS
from ...backbones.t5 import T5_ARCHITECTURES
from ...errors import ConfigError, UnknownNameError
from ..baselines import BaselineConfig
from ..common.precision import check_precision

ORTHOGONALITY_FORMS = ("reference_l1", "paper_squared")
"""``reference_l1``: Σ ``|D_old D_tᵀ|`` over entries and modules, as the official code computes it
(``src/uie_trainer_lora.py``); ``paper_squared``: Σ ``(D_old D_tᵀ)²``, the squared entries the paper writes."""

LORA_TARGETS = ("q", "k", "v")


@dataclass
class OLoRAConfig:
    """O-LoRA's hyperparameters (Wang et al., EMNLP Findings 2023; cmnfriend/O-LoRA, commit 07117e1).

    Every experience gets a fresh LoRA pair (down ``D_t``: rank × d_in, up ``U_t``: d_out × rank) on each
    ``targets`` projection; the loss of experience ``t`` is
    ``L_task + lambda_orth · Σ_m orth(D_old^m, D_t^m) + lambda_l2 · Σ_m (‖D_t^m‖_F + ‖U_t^m‖_F)``.
    ``lambda_orth = 0`` is the IncLoRA baseline (:func:`inclora`).
    """

    rank: int = 8
    alpha: float = 32.0
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["q", "v"])
    lambda_orth: float = 0.5
    lambda_l2: float = 0.0
    orthogonality: str = "reference_l1"

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"method.rank must be a positive integer, got {self.rank}")
        if self.alpha <= 0:
            raise ConfigError(f"method.alpha must be positive (the scaling is alpha / rank), got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"method.dropout must be in [0, 1), got {self.dropout}")
        if not self.targets or not set(self.targets) <= set(LORA_TARGETS) or len(set(self.targets)) < len(self.targets):
            raise ConfigError(f"method.targets must be distinct names among q, k, v; got {self.targets}")
        for name in ("lambda_orth", "lambda_l2"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0 (a penalty weight), got {getattr(self, name)}")
        if self.orthogonality not in ORTHOGONALITY_FORMS:
            raise ConfigError(
                f"method.orthogonality must be one of {', '.join(ORTHOGONALITY_FORMS)} (reference code: L1 of the "
                f"cross-Gram entries; paper: squared entries), got {self.orthogonality!r}"
            )

    @property
    def scaling(self) -> float:
        """``s = α / r``, the factor of every task's branch (4 with the defaults)."""
        return self.alpha / self.rank


@dataclass
class OLoRAOptimConfig:
    """AdamW with a constant learning rate and a fresh optimizer per experience (the reference's scripts)."""

    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 64
    eval_batch_size: int = 128
    weight_decay: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "optim.precision")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"optim.{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass
class OLoRAExperimentConfig:
    """O-LoRA on a frozen encoder :class:`~pecft_lib.backbones.Backbone` with one linear head per experience,
    over a class-incremental benchmark; ``seed`` seeds the adapters, heads and data order. ``baselines`` are
    compared with it on the same backbone and benchmark (name → :class:`BaselineConfig`). ``backbone`` and
    ``benchmark`` may be left out when the runner is given them (``run_olora(cfg, benchmark, backbone=...)``)."""

    backbone: str | None = None
    benchmark: BenchmarkConfig | None = None
    method: OLoRAConfig = field(default_factory=OLoRAConfig)
    optim: OLoRAOptimConfig = field(default_factory=OLoRAOptimConfig)
    seed: int = 0
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)


@dataclass
class OLoRAGenerativeConfig:
    """O-LoRA's paper recipe: a T5 model generating the label string of O-LoRA's text benchmark (cmnfriend/O-LoRA).

    ``model`` names a T5 architecture of :mod:`pecft_lib.backbones.t5`; ``local_path`` is a folder holding the
    model and its tokenizer saved with ``save_pretrained`` (machines without internet). ``order``,
    ``data_seed``, ``train_per_class``, ``test_per_class`` and ``test_per_task`` select the data as in
    :func:`~pecft_lib.benchmarks.olora_text.olora_generative_tasks`. Sources are truncated to
    ``max_source_length`` tokens, targets to ``max_target_length``; greedy decoding generates at most
    ``max_new_tokens`` tokens.
    """

    model: str = "t5-large"
    local_path: str | None = None
    order: int = 1
    data_seed: int = 0
    train_per_class: int | None = 1000
    test_per_class: int | None = None
    test_per_task: int | None = OLORA_TEST_SIZE
    max_source_length: int = 512
    max_target_length: int = 50
    max_new_tokens: int = 50
    method: OLoRAConfig = field(default_factory=OLoRAConfig)
    optim: OLoRAOptimConfig = field(default_factory=OLoRAOptimConfig)
    seed: int = 42  # the HF Trainer's default seed, which O-LoRA's scripts keep

    def __post_init__(self) -> None:
        if self.model not in T5_ARCHITECTURES:
            raise UnknownNameError("T5 model", self.model, T5_ARCHITECTURES)
        if self.order not in ORDERS:
            raise ConfigError(f"order must be one of {', '.join(map(str, ORDERS))} (O-LoRA's task orders), "
                              f"got {self.order!r}")
        for name in ("max_source_length", "max_target_length", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")


@dataclass
class OLoRAPresets:
    """``configs/olora.yaml``: per profile, named experiments of encoder classifiers (quick: ``text``,
    ``vision``) and O-LoRA's own generative T5 experiment (paper: ``generative``), which has a loop of its own."""

    experiments: dict[str, OLoRAExperimentConfig] = field(default_factory=dict)
    generative: OLoRAGenerativeConfig | None = None

    def __post_init__(self) -> None:
        if not self.experiments and self.generative is None:
            raise ConfigError("an O-LoRA config needs at least one experiment (experiments: {name: ...}) or the "
                              "generative one")
        if "generative" in self.experiments:
            raise ConfigError("'generative' names O-LoRA's T5 experiment; give the classifier experiment another "
                              "name")


Experiment = TypeVar("Experiment", OLoRAExperimentConfig, OLoRAGenerativeConfig)


def inclora(cfg: Experiment) -> Experiment:
    """The IncLoRA baseline of the O-LoRA paper: the same experiment, a new LoRA per task, no orthogonality
    constraint (``lambda_orth = 0``; Wang et al., EMNLP Findings 2023). ``lambda_l2`` is kept (0 in every
    standard recipe)."""
    return replace(cfg, method=replace(cfg.method, lambda_orth=0.0))
