"""Key–query prompt selection and the prompt initialisations shared by L2P (Wang et al., CVPR 2022) and DualPrompt
(Wang et al., ECCV 2022), as their JAX code (google-research/l2p, commit dd8836e) and its PyTorch ports
(JH-LEE-KR/l2p-pytorch, commit f7bc994; JH-LEE-KR/dualprompt-pytorch, commit 7eb457d) compute them."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ...errors import UnknownNameError
from ..common.precision import in_float32

PROMPT_INITS = ("pytorch", "jax")
"""How prompts and keys are initialised (:func:`init_prompts`): ``"pytorch"``, U(−1, 1) as the PyTorch ports;
``"jax"``, U[0, 0.01) as the JAX code. The prompt methods pair them with a trunc-normal(0.02) and a zero head."""


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``x / sqrt(max(Σ x², eps))`` along the last dimension: ε on the *squared* norm, as the JAX code."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True).clamp_min(eps))


def top_ids(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest entries of each row, ties broken towards the lower index (``lax.top_k``)."""
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]


def majority_vote(ids: torch.Tensor, pool_size: int) -> torch.Tensor:
    """The ``k`` ids most often present in the rows of ``ids [B, k]``, ties → lower id first (JAX ``lax.top_k``)."""
    counts = torch.bincount(ids.flatten(), minlength=pool_size)
    return top_ids(counts, ids.shape[1])


def init_prompts(parameters: Iterable[nn.Parameter], init: str) -> None:
    """Fill prompts and keys in place as :data:`PROMPT_INITS` ``init`` says."""
    if init not in PROMPT_INITS:
        raise UnknownNameError("prompt init", init, PROMPT_INITS)
    low, high = (0.0, 0.01) if init == "jax" else (-1.0, 1.0)
    for parameter in parameters:
        nn.init.uniform_(parameter, low, high)


class KeyQuerySelection:
    """Mixin of a :class:`~pecft_lib.methods.prompting.PromptClassifier` with a pool of learnable ``keys [M, D]``
    matched against the prompt-free query q(x) by cosine similarity; the class defines ``select(similarity)``."""

    keys: nn.Parameter

    def similarity(self, query: torch.Tensor) -> torch.Tensor:
        """``[B, M]`` cosine similarity of the queries and the keys."""
        return l2_normalize(query) @ l2_normalize(self.keys).T

    def select(self, similarity: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` the ids of the prompts used for each input."""
        raise NotImplementedError

    @torch.no_grad()
    def prompt_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """The prompt ids ``forward`` uses for ``inputs`` in the current mode, ``[B, N]``; as in ``forward``,
        the selection runs in float32 with autocast off."""
        query = self.query(inputs)  # type: ignore[attr-defined]
        return in_float32(lambda q: self.select(self.similarity(q)), query)
