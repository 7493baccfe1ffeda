"""InfLoRA: Interference-Free Low-Rank Adaptation for Continual Learning (Liang & Li, CVPR 2024).

Each task adds a low-rank branch ``up_t · down_t`` to the key and value projections. ``down_t`` is
*designed* before training — its rows span the new task's principal input directions with the old tasks'
input subspace projected out — and frozen; only ``up_t`` (and the task's head) is trained. By the paper's
Proposition 1 the update then lies in a subspace orthogonal to the old tasks' inputs, so it does not
interfere with them. Official code: liangyanshuo/InfLoRA (commit e08b00e); see also the chapter
``book/inflora``.
"""

from ..spec import experiments_method
from .analysis import branch_interference, interference_mechanism
from .config import InfLoRAConfig, InfLoRAExperimentConfig, InfLoRAOptimConfig, InfLoRAPresets
from .layers import InfLoRALinear
from .model import InfLoRAModel
from .strategy import (INFLORA_STATE, InfLoRA, build_inflora, make_optimizer_factory, prepare_inflora, run_inflora,
                       subspace_history)
from .subspace import SubspaceMemory, design_down_projection, threshold_at

__all__ = [
    "METHOD", "InfLoRA", "InfLoRAConfig", "InfLoRAExperimentConfig", "InfLoRALinear", "InfLoRAModel",
    "InfLoRAOptimConfig", "InfLoRAPresets", "SubspaceMemory", "branch_interference", "build_inflora",
    "design_down_projection", "make_optimizer_factory", "prepare_inflora", "run_inflora", "threshold_at",
]


METHOD = experiments_method(
    "inflora", "InfLoRA", InfLoRAPresets, InfLoRAExperimentConfig, prepare_inflora,
    extra=lambda cfg, run: subspace_history if run == "InfLoRA" else None,
    strategy_state=(INFLORA_STATE,),
    references={"inflora": "pecft_lib.methods.inflora.reference:from_reference_state_dict"},
    mechanism=(InfLoRAModel, interference_mechanism),
)
"""InfLoRA in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/inflora.yaml``, its runs, the
subspace history in records, the memories in checkpoints, checkpoints of the authors' code."""
