"""The interface every PECFT method talks to: tokens → blocks → pooled features, with three hooks.

A :class:`Backbone` exposes the pieces of a pre-norm (ViT) or post-norm (BERT) transformer encoder so that
a method can intervene without copying the model:

* **prompt tokens** (L2P, prompt tuning): extra ``[B, P, D]`` embeddings inserted right after the
  [CLS] token, ``[CLS, prompts, tokens]`` — the layout of PyTorch-L2P (JH-LEE-KR/l2p-pytorch, commit f7bc994);
* **prefix key/values** (DualPrompt, CODA-Prompt, prefix tuning): per layer, ``(keys, values)``
  concatenated to the projected keys and values of that layer's attention (``models/prefix_attention.py`` of
  google-research/l2p, commit dd8836e);
* **LoRA on separate q, k, v** (InfLoRA, O-LoRA): every attention is a :class:`SplitQKVAttention` whose
  ``q``/``k``/``v`` are plain ``nn.Linear`` layers that ``peft`` or our own modules can wrap
  (:attr:`Backbone.qkv_pattern` matches their names).

:meth:`Backbone.query_features` is the prompt-free query function q(x) of the prompt methods (L2P, Wang et
al., CVPR 2022): a second forward pass of the same frozen model, pooled, without gradient.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from .attention import Prefix, SplitQKVAttention


@dataclass
class EncoderOutput:
    """Final hidden states of a forward pass.

    Attributes:
        tokens: ``[B, T, D]``, [CLS] at position 0, then the ``num_prompts`` prompt tokens, then the inputs.
        padding_mask: ``[B, T]`` bool, ``True`` for real tokens (``None`` when every token is real).
        num_prompts: how many prompt tokens were inserted after [CLS].
    """

    tokens: torch.Tensor
    padding_mask: torch.Tensor | None
    num_prompts: int

    @property
    def cls(self) -> torch.Tensor:
        return self.tokens[:, 0]

    @property
    def prompts(self) -> torch.Tensor:
        """The outputs at the prompt positions, ``[B, P, D]`` (L2P's classifier reads their mean)."""
        return self.tokens[:, 1:1 + self.num_prompts]


class Backbone(nn.Module, ABC):
    """A pretrained transformer encoder split into embedding, blocks, final norm and pooling."""

    embed_dim: int
    num_layers: int
    num_heads: int
    modality: str
    qkv_pattern: str
    """Regular expression matching the module names of the q/k/v projections (for ``peft``'s ``target_modules``)."""

    @abstractmethod
    def embed(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input embedding with [CLS] and position embeddings: tokens ``[B, T, D]`` and padding mask (or ``None``)."""

    @abstractmethod
    def attention(self, layer: int) -> SplitQKVAttention:
        """The self-attention of block ``layer``."""

    @abstractmethod
    def block(
        self, layer: int, tokens: torch.Tensor, prefix: Prefix | None, padding_mask: torch.Tensor | None,
        n_outputs: int | None = None,
    ) -> torch.Tensor:
        """Run block ``layer`` on ``tokens``, with optional prefix key/values in its attention; return the
        outputs of the first ``n_outputs`` positions only (``None`` = all)."""

    @property
    def pooled_outputs(self) -> int | None:
        """How many leading output positions :meth:`pool` reads (1: [CLS] pooling), ``None`` = all of them."""
        return 1

    @abstractmethod
    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """The norm after the last block (identity for post-norm encoders)."""

    @abstractmethod
    def pool(self, output: EncoderOutput) -> torch.Tensor:
        """Pooled features ``[B, D]`` of a forward pass."""

    def encode(
        self,
        inputs: torch.Tensor,
        prompts: torch.Tensor | None = None,
        prefixes: Mapping[int, Prefix] | None = None,
        n_outputs: int | None = None,
    ) -> EncoderOutput:
        """Forward pass with optional prompt tokens ``[B, P, D]`` and per-layer prefixes ``{layer: (keys, values)}``.

        ``n_outputs`` limits the result to the first positions ([CLS], then the prompts): the last block then
        computes queries, attention output and MLP for those positions only, the work a head that reads
        [CLS] (or the prompt outputs) needs; ``None`` returns every position."""
        tokens, padding_mask = self.embed(inputs)
        num_prompts = 0
        if prompts is not None:
            num_prompts = prompts.shape[1]
            prompts = prompts.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], dim=1)
            if padding_mask is not None:
                padding_mask = torch.cat([padding_mask[:, :1], padding_mask.new_ones(len(tokens), num_prompts),
                                          padding_mask[:, 1:]], dim=1)
        prefixes = prefixes or {}
        unknown = sorted(set(prefixes) - set(range(self.num_layers)))
        if unknown:
            raise ValueError(f"prefix layers {unknown} do not exist; the backbone has layers 0..{self.num_layers - 1}")
        last = self.num_layers - 1
        for layer in range(self.num_layers):
            tokens = self.block(layer, tokens, prefixes.get(layer), padding_mask, n_outputs if layer == last else None)
        if padding_mask is not None and n_outputs is not None:
            padding_mask = padding_mask[:, :n_outputs]
        return EncoderOutput(self.final_norm(tokens), padding_mask, num_prompts)

    def forward(
        self,
        inputs: torch.Tensor,
        prompts: torch.Tensor | None = None,
        prefixes: Mapping[int, Prefix] | None = None,
    ) -> torch.Tensor:
        """Pooled features ``[B, D]``."""
        return self.pool(self.encode(inputs, prompts, prefixes))

    @torch.no_grad()
    def query_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """q(x): pooled features of a prompt-free forward pass, without gradient (L2P's query function)."""
        return self.pool(self.encode(inputs, n_outputs=self.pooled_outputs))

    def freeze(self) -> "Backbone":
        """Make every pretrained weight non-trainable (all references freeze the backbone)."""
        self.requires_grad_(False)
        return self
