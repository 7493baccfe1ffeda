"""Baselines every method is compared with."""

from .classic import (
    CLASSIC_STRATEGIES,
    ClassicConfig,
    MLPConfig,
    TrainConfig,
    build_classic_strategy,
    make_mlp,
    run_classic,
)
from .sequential import BASELINE_KINDS, BaselineConfig, run_baseline

__all__ = [
    "BASELINE_KINDS",
    "BaselineConfig",
    "CLASSIC_STRATEGIES",
    "ClassicConfig",
    "MLPConfig",
    "TrainConfig",
    "build_classic_strategy",
    "make_mlp",
    "run_baseline",
    "run_classic",
]
