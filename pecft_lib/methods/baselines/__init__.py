"""Baselines every method is compared with."""

from .classic import (
    CLASSIC_STRATEGIES,
    ClassicConfig,
    MLPConfig,
    TrainConfig,
    build_classic_strategy,
    make_mlp,
    prepare_classic,
    run_classic,
)
from .sequential import BASELINE_KINDS, BaselineConfig, prepare_baseline, run_baseline

__all__ = [
    "BASELINE_KINDS",
    "BaselineConfig",
    "CLASSIC_STRATEGIES",
    "ClassicConfig",
    "MLPConfig",
    "TrainConfig",
    "build_classic_strategy",
    "make_mlp",
    "prepare_baseline",
    "prepare_classic",
    "run_baseline",
    "run_classic",
]
