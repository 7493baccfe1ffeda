"""Pieces every parameter-efficient continual method shares: per-experience heads and the strategy template."""

from .heads import TaskHeads
from .precision import PRECISIONS, MixedPrecisionPlugin, autocast, check_precision, strategy_precision, upcast
from .strategy import (
    ContinualPEFTModel,
    ContinualPEFTStrategy,
    EpochLRSchedule,
    LoopConfig,
    LRSchedule,
    OptimizerFactory,
    StatelessPlugin,
    loop_arguments,
    reference_cosine_lr,
)

__all__ = [
    "ContinualPEFTModel", "ContinualPEFTStrategy", "EpochLRSchedule", "LoopConfig", "LRSchedule",
    "MixedPrecisionPlugin", "OptimizerFactory", "PRECISIONS", "StatelessPlugin", "TaskHeads", "autocast",
    "check_precision", "loop_arguments", "reference_cosine_lr", "strategy_precision", "upcast",
]
