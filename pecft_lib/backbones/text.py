"""Hugging Face BERT-family encoders behind the :class:`~pecft_lib.backbones.base.Backbone` interface.

Inputs are token ids ``[B, T]`` padded with the tokenizer's pad id (the text benchmarks store them that
way); the padding mask is derived from that id. The wrapper composes the model's own modules — embeddings,
each layer's ``attention.output``, ``intermediate`` and ``output`` — and replaces only the self-attention
by a :class:`SplitQKVAttention` that *reuses* the model's ``query``/``key``/``value`` layers (BERT's
projections are already separate, so nothing is copied).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from ..errors import ConfigError
from .attention import Prefix, SplitQKVAttention
from .base import Backbone, EncoderOutput

POOLINGS = ("cls", "mean")


class TextEncoderBackbone(Backbone):
    """A BERT-family encoder (post-norm layers, no final norm) with [CLS] or masked-mean pooling.

    Args:
        model: a ``BertModel``-like model (``embeddings`` + ``encoder.layer[i]`` with BERT's sub-modules).
        pad_token_id: the id that marks padding in the inputs.
        pooling: ``"cls"`` (final hidden state of [CLS]) or ``"mean"`` (mean over non-padding tokens, the
            pooling sentence-transformers trained all-MiniLM-L6-v2 with).
    """

    modality = "text"
    qkv_pattern = r"model\.encoder\.layer\.\d+\.attention\.self\.(q|k|v)"

    def __init__(self, model: PreTrainedModel, pad_token_id: int, pooling: str = "mean", name: str = "text"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        config = model.config
        if getattr(config, "is_decoder", False):
            raise ConfigError(f"{name}: decoder models are not supported, use an encoder")
        for layer in model.encoder.layer:
            attention = layer.attention.self
            layer.attention.self = SplitQKVAttention(
                attention.query, attention.key, attention.value, config.num_attention_heads,
                attn_drop=config.attention_probs_dropout_prob,
            )
        self.model = model
        self.name = name
        self.pad_token_id = pad_token_id
        self.pooling = pooling
        self.embed_dim = config.hidden_size
        self.num_layers = config.num_hidden_layers
        self.num_heads = config.num_attention_heads

    def embed(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if inputs.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{self.name} expects token ids (int64), got a {inputs.dtype} tensor")
        return self.model.embeddings(input_ids=inputs), inputs != self.pad_token_id

    def attention(self, layer: int) -> SplitQKVAttention:
        return self.model.encoder.layer[layer].attention.self

    def block(
        self, layer: int, tokens: torch.Tensor, prefix: Prefix | None, padding_mask: torch.Tensor | None,
        n_outputs: int | None = None,
    ) -> torch.Tensor:
        bert_layer = self.model.encoder.layer[layer]
        context = bert_layer.attention.self(tokens, prefix=prefix, key_padding_mask=padding_mask, n_queries=n_outputs)
        attended = bert_layer.attention.output(context, tokens[:, :n_outputs])
        return bert_layer.output(bert_layer.intermediate(attended), attended)

    @property
    def pooled_outputs(self) -> int | None:
        return 1 if self.pooling == "cls" else None

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens

    def pool(self, output: EncoderOutput) -> torch.Tensor:
        if self.pooling == "cls":
            return output.cls
        weights = output.padding_mask.unsqueeze(-1).to(output.tokens.dtype)
        return (output.tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)
