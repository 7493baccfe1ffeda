"""DualPrompt: Complementary Prompting for Rehearsal-free Continual Learning (Wang et al., ECCV 2022).

A shared G-prompt at the first blocks and a pool of task-specific E-prompts at the next ones, both inserted
as attention prefixes (prefix-tuning) into a frozen ViT. Training task t uses E-prompt t and pulls its key
towards the task's queries; at test time each input picks the E-prompt whose key is closest (cosine) to
its prompt-free query q(x). The head reads [CLS]. Built on the shared skeleton
:mod:`pecft_lib.methods.prompting`. Official code: google-research/l2p (commit dd8836e); :mod:`.reference`
loads checkpoints of the PyTorch port (JH-LEE-KR/dualprompt-pytorch, commit 7eb457d).
"""

from ..prompting import PROMPT_STRATEGY_STATE
from ..spec import experiments_method
from .analysis import task_identification_mechanism
from .config import (
    DualPromptConfig,
    DualPromptExperimentConfig,
    DualPromptOptimConfig,
    DualPromptPresets,
)
from .model import DualPromptModel
from .strategy import build_dualprompt, prepare_dualprompt, run_dualprompt

__all__ = [
    "METHOD", "DualPromptConfig", "DualPromptExperimentConfig", "DualPromptModel", "DualPromptOptimConfig",
    "DualPromptPresets", "build_dualprompt", "prepare_dualprompt", "run_dualprompt",
]


METHOD = experiments_method(
    "dualprompt", "DualPrompt", DualPromptPresets, DualPromptExperimentConfig, prepare_dualprompt,
    strategy_state=(PROMPT_STRATEGY_STATE,),
    references={"dualprompt-pytorch": "pecft_lib.methods.dualprompt.reference:from_reference_state_dict"},
    mechanism=(DualPromptModel, task_identification_mechanism),
)
"""DualPrompt in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/dualprompt.yaml``, its runs,
the query cache in checkpoints, checkpoints of the PyTorch port."""
