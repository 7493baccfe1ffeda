"""L2P: Learning to Prompt for Continual Learning (Wang et al., CVPR 2022).

A pool of M prompts with learnable keys; each input picks the N prompts whose keys are closest (cosine) to
its prompt-free query q(x); the selected prompts are inserted after [CLS] of the frozen ViT, the head reads
the mean of their outputs, and a surrogate loss pulls the selected keys towards the query. Built on the
shared skeleton :mod:`pecft_lib.methods.prompting`. Official code: google-research/l2p (commit dd8836e; the v1
setting at 98b10ea) and its PyTorch port JH-LEE-KR/l2p-pytorch (commit f7bc994).
"""

from ..prompting import PROMPT_STRATEGY_STATE
from ..prompting.analysis import selection_mechanism
from ..spec import experiments_method
from .config import L2PConfig, L2PExperimentConfig, L2POptimConfig, L2PPresets
from .model import L2PModel
from .strategy import build_l2p, prepare_l2p, run_l2p

__all__ = [
    "METHOD", "L2PConfig", "L2PExperimentConfig", "L2PModel", "L2POptimConfig", "L2PPresets", "build_l2p",
    "prepare_l2p", "run_l2p",
]


METHOD = experiments_method(
    "l2p", "L2P", L2PPresets, L2PExperimentConfig, prepare_l2p,
    strategy_state=(PROMPT_STRATEGY_STATE,),
    references={"l2p-pytorch": "pecft_lib.methods.l2p.reference:from_reference_state_dict"},
    mechanism=(L2PModel, selection_mechanism),
)
"""L2P in the method registry (:mod:`pecft_lib.methods.registry`): ``configs/l2p.yaml``, its runs (``L2P`` and the
baselines of each experiment), the query cache in checkpoints, PyTorch-L2P checkpoints."""
