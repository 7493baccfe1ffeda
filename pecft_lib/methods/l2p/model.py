"""L2P's prompt pool, query-key selection and prompt-pooled head (Wang et al., CVPR 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ...backbones import Backbone, as_backbone
from ...backbones.base import EncoderOutput
from ...errors import ConfigError
from ..prompting import KeyQuerySelection, Prompting, PromptClassifier, init_prompts, majority_vote, top_ids
from .config import L2PConfig


class L2PModel(KeyQuerySelection, PromptClassifier):
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
        init_prompts((self.prompts, self.keys), config.init)
        if config.position_embedding == "cls_copy" and not hasattr(backbone, "cls_position_embedding"):
            raise ConfigError(
                f"{type(backbone).__name__} has no [CLS] position embedding to copy onto the prompts; "
                "use position_embedding='none' (text backbones)"
            )

    def select(self, similarity: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` selected prompt ids: per-sample top-N, or the batch's majority vote broadcast to all."""
        ids = top_ids(similarity.detach(), self.config.top_k)
        if self.config.batchwise_selection:
            ids = majority_vote(ids, self.config.pool_size).expand(len(ids), -1)
        return ids

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
