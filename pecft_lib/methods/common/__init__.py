"""Pieces every parameter-efficient continual method shares: per-experience heads and the strategy template."""

from .heads import TaskHeads
from .precision import PRECISIONS, MixedPrecisionPlugin, autocast, check_precision, strategy_precision, upcast
from .strategy import (
    ContinualPEFTModel,
    ContinualPEFTStrategy,
    LoopConfig,
    LRSchedule,
    OptimizerFactory,
    loop_arguments,
    reference_cosine_lr,
)

__all__ = [
    "ContinualPEFTModel", "ContinualPEFTStrategy", "LoopConfig", "LRSchedule", "MixedPrecisionPlugin", "OptimizerFactory",
    "PRECISIONS", "TaskHeads", "autocast", "check_precision", "loop_arguments", "reference_cosine_lr", "strategy_precision", "upcast",
]
