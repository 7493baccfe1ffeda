"""Pieces every parameter-efficient continual method shares: per-experience heads and the strategy template."""

from .heads import TaskHeads
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
    "ContinualPEFTModel", "ContinualPEFTStrategy", "EpochLRSchedule", "LoopConfig", "LRSchedule", "OptimizerFactory",
    "StatelessPlugin", "TaskHeads", "loop_arguments", "reference_cosine_lr",
]
