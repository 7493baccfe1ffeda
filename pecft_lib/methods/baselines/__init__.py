"""Baselines every method is compared with."""

from ..spec import MethodSpec
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
    "METHOD",
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


METHOD = MethodSpec(
    name="classic_cl", presets=ClassicConfig,
    experiments=lambda presets: {"default": presets},
    experiment_type=lambda _: ClassicConfig,
    prefix=lambda _: "",
    runs=lambda cfg: list(CLASSIC_STRATEGIES),
    prepare=lambda cfg, run, seed, sources: prepare_classic(cfg, sources.benchmark, seed=seed, name=run),
    evaluate_untrained=lambda cfg, run: True,  # run_classic's default
)
"""The classic strategies of the primer chapter in the method registry (:mod:`pecft_lib.methods.registry`):
``configs/classic_cl.yaml``, one experiment (``default``), one run per strategy of :data:`CLASSIC_STRATEGIES`."""
