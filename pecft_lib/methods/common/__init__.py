"""Pieces every parameter-efficient continual method shares: per-experience heads and the strategy template."""

from .heads import TaskHeads
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
    "ContinualPEFTModel", "ContinualPEFTStrategy", "LoopConfig", "LRSchedule", "OptimizerFactory", "TaskHeads", "loop_arguments",
    "reference_cosine_lr",
]
