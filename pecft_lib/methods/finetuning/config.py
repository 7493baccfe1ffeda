"""Configuration of single-task parameter-efficient fine-tuning (the PEFT primer chapter)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...benchmarks import BenchmarkConfig
from ...errors import ConfigError, UnknownNameError
from ..common.precision import check_precision

TUNING_METHODS = ("linear_probe", "prompt_tuning", "prefix_tuning", "lora", "full")
"""The values of :class:`~pecft_lib.methods.finetuning.TuningConfig`'s ``method``."""


@dataclass
class TuningConfig:
    """Which parameters are trained on top of a frozen backbone.

    * ``linear_probe`` — only the classifier;
    * ``prompt_tuning`` — ``prompt_length`` input tokens after [CLS] (Lester et al. 2021; VPT-shallow,
      Jia et al. 2022);
    * ``prefix_tuning`` — ``prefix_length`` key and value vectors in each attention of ``prefix_layers``
      (Li & Liang 2021, without their reparametrisation MLP, as DualPrompt and CODA-Prompt use it);
    * ``lora`` — rank-``lora_rank`` updates of the ``lora_targets`` projections through ``peft``
      (Hu et al. 2022): W x + (α / r) B A x;
    * ``full`` — every weight of the backbone.

    The classifier is trained in every case.
    """

    method: str = "linear_probe"
    prompt_length: int = 8
    prefix_length: int = 8
    prefix_layers: list[int] | None = None  # None = every layer
    lora_rank: int = 4
    lora_alpha: float = 8.0
    lora_targets: list[str] = field(default_factory=lambda: ["q", "v"])
    init_std: float = 0.02  # prompts and prefixes ~ N(0, init_std²)

    def __post_init__(self) -> None:
        if self.method not in TUNING_METHODS:
            raise UnknownNameError("tuning method", self.method, TUNING_METHODS)
        if not set(self.lora_targets) <= {"q", "k", "v"} or not self.lora_targets:
            raise ConfigError(f"lora_targets must be a non-empty subset of q, k, v; got {self.lora_targets}")


@dataclass
class OptimConfig:
    """AdamW with a learning rate per tuning method (full fine-tuning needs a much smaller one)."""

    epochs: int = 1
    batch_size: int = 64
    lr: dict[str, float] = field(default_factory=lambda: {method: 1e-3 for method in TUNING_METHODS})
    weight_decay: float = 0.0
    eval_batch_size: int = 500
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "optim.precision")
        unknown = set(self.lr) - set(TUNING_METHODS)
        if unknown:
            raise UnknownNameError("tuning method in optim.lr", sorted(unknown)[0], TUNING_METHODS)


@dataclass
class SingleTaskConfig:
    """One backbone fine-tuned on one task by every method in ``methods``."""

    backbone: str
    benchmark: BenchmarkConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    methods: dict[str, TuningConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.benchmark.n_experiences != 1:
            raise ConfigError(
                f"single-task fine-tuning needs benchmark.n_experiences=1, got {self.benchmark.n_experiences}"
            )
        missing = {tuning.method for tuning in self.methods.values()} - set(self.optim.lr)
        if missing:
            raise ConfigError(f"optim.lr has no learning rate for {sorted(missing)}")


@dataclass
class PeftPrimerConfig:
    """``configs/peft_primer.yaml``: the primer's vision and text experiments."""

    vision: SingleTaskConfig
    text: SingleTaskConfig
