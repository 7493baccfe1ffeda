"""L2P's prompt pool, query-key selection and prompt-pooled head (Wang et al., CVPR 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ...backbones import Backbone, as_backbone
from ...backbones.base import EncoderOutput
from ...errors import ConfigError
from ..common.precision import upcast
from ..prompting import Prompting, PromptClassifier
from .config import L2PConfig


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


class L2PModel(PromptClassifier):
    """A frozen backbone prompted by the top-N prompts of a pool whose keys match q(x).

    Selection (per sample, or by the batch's majority vote if ``config.batchwise_selection``) uses the cosine
    similarity of q(x) and the keys; the N selected prompts, concatenated (N·L_p tokens), are inserted
    after [CLS]; the head reads the mean of the final-norm outputs at the prompt positions. The surrogate
    loss pulls the selected keys towards the query; selection itself is not differentiable, so keys get
    gradient from that loss only and prompts from the cross-entropy only.
    """

    def __init__(self, backbone: Backbone, n_classes: int, config: L2PConfig | None = None):
        backbone = as_backbone(backbone)
        config = config or L2PConfig()
        super().__init__(backbone, n_classes, head_init="zeros" if config.init == "jax" else "trunc_normal",
                         eval_scope=config.eval_scope)
        self.config = config
        width = backbone.embed_dim
        self.prompts = nn.Parameter(torch.empty(config.pool_size, config.prompt_length, width))
        self.keys = nn.Parameter(torch.empty(config.pool_size, width))
        low, high = (0.0, 0.01) if config.init == "jax" else (-1.0, 1.0)
        nn.init.uniform_(self.prompts, low, high)
        nn.init.uniform_(self.keys, low, high)
        if config.position_embedding == "cls_copy" and not hasattr(backbone, "cls_position_embedding"):
            raise ConfigError(
                f"{type(backbone).__name__} has no [CLS] position embedding to copy onto the prompts; "
                "use position_embedding='none' (text backbones)"
            )

    def similarity(self, query: torch.Tensor) -> torch.Tensor:
        """``[B, M]`` cosine similarity of the queries and the keys."""
        return l2_normalize(query) @ l2_normalize(self.keys).T

    def select(self, similarity: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` selected prompt ids: per-sample top-N, or the batch's majority vote broadcast to all."""
        ids = top_ids(similarity.detach(), self.config.top_k)
        if self.config.batchwise_selection:
            ids = majority_vote(ids, self.config.pool_size).expand(len(ids), -1)
        return ids

    @torch.no_grad()
    def prompt_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """The prompt ids :meth:`forward` selects for ``inputs``, ``[B, N]``."""
        query = self.query(inputs)
        with torch.autocast(query.device.type, enabled=False):  # as in forward: selection in float32
            return self.select(self.similarity(upcast(query)))

    def make_prompts(self, query: torch.Tensor) -> Prompting:
        similarity = self.similarity(query)
        ids = self.select(similarity)
        prompts = self.prompts[ids].flatten(1, 2)  # [B, N·L_p, D]
        if self.config.position_embedding == "cls_copy":
            prompts = prompts + self.backbone.cls_position_embedding
        pull = similarity.gather(1, ids).sum(1).mean()
        return Prompting(prompts=prompts, aux_loss=-self.config.pull_coefficient * pull)

    def features(self, output: EncoderOutput) -> torch.Tensor:
        """The mean of the outputs at the N·L_p prompt positions (L2P's "prompt" pooling), not [CLS]."""
        return output.prompts.mean(1)

    def feature_positions(self, num_prompts: int) -> int:
        return 1 + num_prompts
