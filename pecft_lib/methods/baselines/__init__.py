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

__all__ = [
    "CLASSIC_STRATEGIES",
    "ClassicConfig",
    "MLPConfig",
    "TrainConfig",
    "build_classic_strategy",
    "make_mlp",
    "run_classic",
]
