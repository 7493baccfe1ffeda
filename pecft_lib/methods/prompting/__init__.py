"""The skeleton shared by the prompt methods L2P (Wang et al., CVPR 2022), DualPrompt (Wang et al., ECCV 2022)
and CODA-Prompt (Smith et al., CVPR 2023).

A frozen backbone, the prompt-free query q(x), a method hook that turns q(x) into prompt tokens, prefixes
and an auxiliary loss, and one linear head over all classes (:class:`PromptClassifier`); the strategy adds
the auxiliary loss, gradient clipping and an optional cache of q(x) (:class:`PromptStrategy`,
:class:`QueryCache`); :mod:`.selection` holds the key–query selection and prompt initialisations of L2P and
DualPrompt. See :mod:`.model` for the extension points.
"""

from .cache import QueryCache, with_sample_index
from .model import EVAL_SCOPES, HEAD_INITS, PromptClassifier, Prompting
from .selection import PROMPT_INITS, KeyQuerySelection, init_prompts, l2_normalize, majority_vote, top_ids
from .strategy import PROMPT_STRATEGY_STATE, PromptOptimConfig, PromptStrategy, build_prompt_strategy

__all__ = [
    "EVAL_SCOPES", "HEAD_INITS", "KeyQuerySelection", "PROMPT_INITS", "PromptClassifier", "PromptOptimConfig",
    "PromptStrategy", "Prompting", "QueryCache", "build_prompt_strategy", "init_prompts", "l2_normalize",
    "majority_vote", "top_ids", "with_sample_index",
]
