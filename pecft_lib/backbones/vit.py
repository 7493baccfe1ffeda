"""timm Vision Transformers behind the :class:`~pecft_lib.backbones.base.Backbone` interface.

The wrapper composes timm's own modules (patch embedding, position embedding, blocks, final norm); the
only replaced piece is each block's attention, whose fused ``qkv`` is split into three linear layers
holding the same weights (:func:`~pecft_lib.backbones.attention.split_timm_attention`).
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block, VisionTransformer

from ..errors import ConfigError
from .attention import Prefix, SplitQKVAttention, split_timm_attention
from .base import Backbone, EncoderOutput


class ViTBackbone(Backbone):
    """A timm :class:`VisionTransformer` with [CLS]-token pooling; inputs are images ``[B, C, H, W]``."""

    modality = "vision"
    qkv_pattern = r"vit\.blocks\.\d+\.attn\.(q|k|v)"

    def __init__(self, vit: VisionTransformer, name: str = "vit"):
        super().__init__()
        problems = []
        if vit.global_pool != "token" or vit.cls_token is None:
            problems.append(f"pooling must be the [CLS] token (got global_pool={vit.global_pool!r})")
        if vit.reg_token is not None or vit.attn_pool is not None:
            problems.append("register tokens and attention pooling are not supported")
        if any(type(block) is not Block for block in vit.blocks):
            problems.append("only timm's standard pre-norm `Block` is supported")
        if any(getattr(block.attn, "gate", None) is not None for block in vit.blocks):
            problems.append("gated attention is not supported")
        if problems:
            raise ConfigError(f"{name}: " + "; ".join(problems))
        vit.reset_classifier(0)
        for block in vit.blocks:
            block.attn = split_timm_attention(block.attn)
        self.vit = vit
        self.name = name
        self.embed_dim = vit.embed_dim
        self.num_layers = len(vit.blocks)
        self.num_heads = vit.blocks[0].attn.num_heads

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.vit.patch_embed.img_size)

    @property
    def cls_position_embedding(self) -> torch.Tensor:
        """The position embedding of [CLS], ``[D]``; PyTorch-L2P (JH-LEE-KR/l2p-pytorch, commit f7bc994) copies
        it onto its prompts."""
        return self.vit.pos_embed[0, 0]

    def embed(self, inputs: torch.Tensor) -> tuple[torch.Tensor, None]:
        tokens = self.vit.patch_embed(inputs)
        tokens = self.vit._pos_embed(tokens)
        tokens = self.vit.patch_drop(tokens)
        return self.vit.norm_pre(tokens), None

    def attention(self, layer: int) -> SplitQKVAttention:
        return self.vit.blocks[layer].attn

    def block(
        self, layer: int, tokens: torch.Tensor, prefix: Prefix | None, padding_mask: None, n_outputs: int | None = None
    ) -> torch.Tensor:
        blk = self.vit.blocks[layer]
        attended = blk.attn(blk.norm1(tokens), prefix=prefix, n_queries=n_outputs)
        tokens = tokens[:, :n_outputs] + blk.drop_path1(blk.ls1(attended))
        return tokens + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(tokens))))

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.vit.norm(tokens)

    def pool(self, output: EncoderOutput) -> torch.Tensor:
        return self.vit.fc_norm(output.cls)
