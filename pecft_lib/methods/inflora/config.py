"""Configuration of InfLoRA (Liang & Li, CVPR 2024) and of its experiments (``configs/inflora.yaml``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...benchmarks import BenchmarkConfig
from ...errors import ConfigError, UnknownNameError
from ..baselines import BaselineConfig
from ..common.precision import check_precision

DESIGNS = ("inflora", "no_projection", "random")
MEMORIES = ("dual_gpm", "gpm")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("reference_cosine", "constant")


@dataclass
class InfLoRAConfig:
    """The method's own settings (Liang & Li, CVPR 2024; liangyanshuo/InfLoRA, commit e08b00e, ``configs/*.json``).

    Attributes:
        rank: rank ``r`` of each task's branch (10 for CIFAR-100 and ImageNet-R).
        layers: blocks that get branches on their key and value projections; ``None`` = every block,
            ``[0, 1, 2, 3, 4]`` = the InfLoRA-b5 variant.
        threshold, threshold_end: the energy threshold schedule ``ε_t`` (``lamb`` → ``lame``).
        memory: ``"dual_gpm"`` (InfLoRA) or ``"gpm"`` (InfLoRA-b5: never stores the complement).
        scale: factor on the designed rows; the reference's ``1/√3``.
        design: ``"inflora"`` (old subspace projected out), or an ablation of the paper's Table 3:
            ``"no_projection"`` (top directions of the new inputs only, "N_t → B_t") and ``"random"``
            (random orthonormal rows, frozen — sequential LoRA training only ``up``).
    """

    rank: int = 10
    layers: list[int] | None = None
    threshold: float = 0.95
    threshold_end: float = 1.0
    memory: str = "dual_gpm"
    scale: float = 1 / math.sqrt(3)
    design: str = "inflora"

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"rank must be at least 1, got {self.rank}")
        if not 0.0 < self.threshold <= self.threshold_end <= 1.0:
            raise ConfigError(
                f"need 0 < threshold <= threshold_end <= 1, got threshold={self.threshold}, "
                f"threshold_end={self.threshold_end} (the reference uses 0.95 or 0.98 → 1.0)"
            )
        if self.memory not in MEMORIES:
            raise UnknownNameError("InfLoRA memory", self.memory, MEMORIES)
        if self.design not in DESIGNS:
            raise UnknownNameError("InfLoRA design", self.design, DESIGNS)
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ConfigError(f"layers must be None (all blocks) or non-negative block indices, got {self.layers}")


@dataclass
class InfLoRAOptimConfig:
    """A new optimizer per task (reference ``methods/inflora.py``): Adam with the per-epoch cosine factor."""

    optimizer: str = "adam"
    lr: float = 5e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    schedule: str = "reference_cosine"
    epochs: int = 20
    batch_size: int = 128
    eval_batch_size: int = 256
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "optim.precision")
        if self.optimizer not in OPTIMIZERS:
            raise UnknownNameError("optimizer", self.optimizer, OPTIMIZERS)
        if self.schedule not in SCHEDULES:
            raise UnknownNameError("learning-rate schedule", self.schedule, SCHEDULES)
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"epochs, batch_size and lr must be positive, got {self.epochs}, "
                              f"{self.batch_size}, {self.lr}")


@dataclass
class InfLoRAExperimentConfig:
    """One InfLoRA experiment: backbone checkpoint, benchmark, method, optimisation, and the baselines it is
    compared with on the same backbone and benchmark (name → :class:`BaselineConfig`). ``backbone`` and
    ``benchmark`` may be left out when the runner is given them (``run_*(cfg, benchmark, backbone=...)``)."""

    backbone: str | None = None
    benchmark: BenchmarkConfig | None = None
    method: InfLoRAConfig = field(default_factory=InfLoRAConfig)
    optim: InfLoRAOptimConfig = field(default_factory=InfLoRAOptimConfig)
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)


@dataclass
class InfLoRAPresets:
    """``configs/inflora.yaml``: per profile, named experiments (quick: ``vision``, ``text``; paper:
    ``cifar100``, ``imagenet_r``)."""

    experiments: dict[str, InfLoRAExperimentConfig]
