"""CODA-Prompt: COntinual Decomposed Attention-based Prompting (Smith et al., CVPR 2023).

Per prefixed layer, a set of prompt components with keys and attention vectors; an input's prompt is the sum
of the components weighted by α = cos(q(x) ⊙ A, K), trained end to end (no key-query loss), and split into
the layer's key and value prefixes. Components come in one group per task: a task adds its group
(Gram–Schmidt initialised) and freezes the earlier ones. Built on the shared skeleton
:mod:`pecft_lib.methods.prompting`. Checkpoints of the official code (GT-RIPL/CODA-Prompt, commit 6417d4f)
load with :func:`pecft_lib.methods.coda_prompt.reference.from_reference_state_dict`.
"""

from ..prompting import PROMPT_STRATEGY_STATE
from ..spec import experiments_method
from .analysis import component_mechanism
from .config import CodaPromptConfig, CodaPromptExperimentConfig, CodaPromptOptimConfig, CodaPromptPresets
from .model import CodaPromptModel, component_weights, orthogonality_penalty, orthonormal_rows
from .strategy import build_coda_prompt, prepare_coda_prompt, run_coda_prompt

__all__ = [
    "METHOD", "CodaPromptConfig", "CodaPromptExperimentConfig", "CodaPromptModel", "CodaPromptOptimConfig",
    "CodaPromptPresets", "build_coda_prompt", "component_weights", "orthogonality_penalty",
    "orthonormal_rows", "prepare_coda_prompt", "run_coda_prompt",
]


METHOD = experiments_method(
    "coda_prompt", "CODA-Prompt", CodaPromptPresets, CodaPromptExperimentConfig, prepare_coda_prompt,
    strategy_state=(PROMPT_STRATEGY_STATE,),
    references={"coda-prompt": "pecft_lib.methods.coda_prompt.reference:from_reference_state_dict"},
    mechanism=(CodaPromptModel, component_mechanism),
)
"""CODA-Prompt in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/coda_prompt.yaml``, its
runs, the query cache in checkpoints, checkpoints of the authors' code."""
