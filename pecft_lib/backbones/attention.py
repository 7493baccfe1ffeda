"""Multi-head self-attention with separate q, k, v projections and optional prefix key/values.

timm's ViT fuses the three projections into one ``qkv`` linear layer; LoRA on only some of them (InfLoRA:
k and v; O-LoRA: q and v) needs them apart. :func:`split_timm_attention` slices the fused weight into
three ``nn.Linear`` layers whose weights are *copies of the same numbers*, so the split model computes
what the fused one did (checked to 1e-6 in float64 by the tests).

Prefix-tuning (DualPrompt, CODA-Prompt) concatenates learned vectors to the keys and values *after* the
frozen projections, without projecting them (DualPrompt's ``prefix_attention.py``; CODA's ``vit.py``): the
queries and therefore the output length are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Prefix = tuple[torch.Tensor, torch.Tensor]
"""Prefix (keys, values), each ``[B, L, D]`` or ``[L, D]`` (shared by the batch), ``D`` = model width."""


class SplitQKVAttention(nn.Module):
    """Self-attention over ``[B, T, D]`` with three projections ``q``, ``k``, ``v`` and an output ``proj``.

    ``proj`` is the identity for encoders whose output projection lives elsewhere (BERT's ``SelfOutput``).
    """

    def __init__(
        self,
        q: nn.Linear,
        k: nn.Linear,
        v: nn.Linear,
        num_heads: int,
        proj: nn.Module | None = None,
        q_norm: nn.Module | None = None,
        k_norm: nn.Module | None = None,
        attn_drop: float = 0.0,
        proj_drop: nn.Module | None = None,
    ):
        super().__init__()
        if q.out_features % num_heads:
            raise ValueError(f"width {q.out_features} is not divisible by {num_heads} heads")
        self.q, self.k, self.v = q, k, v
        self.num_heads = num_heads
        self.head_dim = q.out_features // num_heads
        self.q_norm = q_norm if q_norm is not None else nn.Identity()
        self.k_norm = k_norm if k_norm is not None else nn.Identity()
        self.attn_drop = attn_drop
        self.proj = proj if proj is not None else nn.Identity()
        self.proj_drop = proj_drop if proj_drop is not None else nn.Identity()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        prefix: Prefix | None = None,
        key_padding_mask: torch.Tensor | None = None,
        n_queries: int | None = None,
    ) -> torch.Tensor:
        """Attend over ``x`` (and the prefix vectors, which every query may attend to).

        Args:
            x: hidden states ``[B, T, D]``.
            prefix: optional ``(keys, values)`` prepended to the projected keys and values.
            key_padding_mask: optional ``[B, T]`` bool, ``True`` where a token may be attended to.
            n_queries: compute the outputs of the first ``n_queries`` positions only (all keys and values
                are still used); ``None`` = every position.
        """
        batch = x.shape[0]
        queries = x if n_queries is None else x[:, :n_queries]
        q, k, v = self.q_norm(self._heads(self.q(queries))), self._heads(self.k(x)), self._heads(self.v(x))
        if prefix is not None:
            prefix_k, prefix_v = (p.expand(batch, -1, -1) if p.dim() == 2 else p for p in prefix)
            k = torch.cat([self._heads(prefix_k.to(k.dtype)), k], dim=2)
            v = torch.cat([self._heads(prefix_v.to(v.dtype)), v], dim=2)
            if key_padding_mask is not None:
                visible = key_padding_mask.new_ones(batch, prefix_k.shape[1])
                key_padding_mask = torch.cat([visible, key_padding_mask], dim=1)
        k = self.k_norm(k)
        mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(batch, -1, self.num_heads * self.head_dim)
        return self.proj_drop(self.proj(out))


def split_timm_attention(attn: nn.Module) -> SplitQKVAttention:
    """A :class:`SplitQKVAttention` holding copies of a timm ``Attention``'s weights (``qkv`` sliced in three)."""
    width = attn.qkv.in_features
    has_bias = attn.qkv.bias is not None
    layers = []
    for index in range(3):
        linear = nn.Linear(width, width, bias=has_bias, dtype=attn.qkv.weight.dtype, device=attn.qkv.weight.device)
        with torch.no_grad():
            linear.weight.copy_(attn.qkv.weight[index * width:(index + 1) * width])
            if has_bias:
                linear.bias.copy_(attn.qkv.bias[index * width:(index + 1) * width])
        linear.weight.requires_grad_(attn.qkv.weight.requires_grad)
        if has_bias:
            linear.bias.requires_grad_(attn.qkv.bias.requires_grad)
        layers.append(linear)
    q, k, v = layers
    norm = getattr(attn, "norm", None)
    if norm is not None and not isinstance(norm, nn.Identity):
        raise NotImplementedError("timm attention with a post-attention norm (scale_norm=True) is not supported")
    return SplitQKVAttention(
        q, k, v, attn.num_heads, proj=attn.proj, q_norm=attn.q_norm, k_norm=attn.k_norm,
        attn_drop=attn.attn_drop.p, proj_drop=attn.proj_drop,
    )
