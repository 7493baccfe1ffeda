"""Single-task parameter-efficient fine-tuning: linear probe, prompt tuning, prefix tuning, LoRA, full."""

from .config import TUNING_METHODS, OptimConfig, PeftPrimerConfig, SingleTaskConfig, TuningConfig
from .model import PEFTClassifier
from .strategy import build_tuning_strategy, prepare_single_task, run_single_task

__all__ = [
    "OptimConfig", "PEFTClassifier", "PeftPrimerConfig", "SingleTaskConfig", "TUNING_METHODS", "TuningConfig",
    "build_tuning_strategy", "prepare_single_task", "run_single_task",
]
