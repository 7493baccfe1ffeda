"""Pieces every parameter-efficient continual method shares: per-experience heads and the strategy template."""

from .heads import TaskHeads
from .strategy import ContinualPEFTStrategy, ContinualPEFTModel, OptimizerFactory, reference_cosine_lr

__all__ = ["ContinualPEFTModel", "ContinualPEFTStrategy", "OptimizerFactory", "TaskHeads", "reference_cosine_lr"]
