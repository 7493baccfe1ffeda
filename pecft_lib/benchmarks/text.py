"""What the text benchmarks (WordNet supersenses, O-LoRA's text benchmark) share: fixed-length token ids and a
benchmark object that keeps the raw texts.

Inputs are ``int64`` token ids ``[N, max_length]``: truncated to ``max_length`` and right-padded with the
tokenizer's pad id, the layout :class:`~pecft_lib.backbones.text.TextEncoderBackbone` expects (it derives the
attention mask from the pad id). ``info`` records the tokenizer, ``max_length`` and ``pad_token_id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import torch

from ..errors import ConfigError
from .base import ContinualBenchmark


@dataclass
class TextBenchmark(ContinualBenchmark):
    """A :class:`ContinualBenchmark` whose examples are texts, kept readable next to their token ids."""

    texts: dict[str, list[str]] = field(default_factory=dict)
    """Raw texts per split (``"train"``, ``"test"``), aligned with the examples of the datasets given to
    Avalanche (index ``i`` of the split's dataset is ``texts[split][i]``). Not part of :meth:`describe`."""


def with_texts(benchmark: ContinualBenchmark, texts: dict[str, list[str]]) -> TextBenchmark:
    """``benchmark`` as a :class:`TextBenchmark` that also holds ``texts``."""
    return TextBenchmark(**{f.name: getattr(benchmark, f.name) for f in fields(ContinualBenchmark)}, texts=texts)


def resolve_tokenizer(tokenizer: Any | None):
    """``tokenizer`` itself, or the offline all-MiniLM-L6-v2 tokenizer when it is ``None``."""
    if tokenizer is not None:
        return tokenizer
    from ..backbones.minilm import load_minilm_tokenizer

    return load_minilm_tokenizer()


def tokenize_texts(texts: Sequence[str], tokenizer: Any, max_length: int) -> torch.Tensor:
    """Token ids ``int64 [len(texts), max_length]`` of ``texts`` (special tokens added, truncated, padded
    with ``tokenizer.pad_token_id``) by a Hugging Face tokenizer."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2 (room for the special tokens), got {max_length}")
    if tokenizer.pad_token_id is None:
        raise ConfigError(f"tokenizer {tokenizer_name(tokenizer)} has no pad token; set tokenizer.pad_token first")
    encoded = tokenizer(list(texts), max_length=max_length, truncation=True, padding="max_length",
                        return_tensors="pt")
    return encoded["input_ids"].to(torch.int64)


def tokenizer_name(tokenizer: Any) -> str:
    """A portable name for the tokenizer: its hub id, or the folder name when it was read from a local path."""
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    return os.path.basename(os.path.normpath(name)) if os.path.isabs(name) else name


def text_info(tokenizer: Any, max_length: int, ids: Sequence[torch.Tensor]) -> dict[str, Any]:
    """The ``info`` entries that record the tokenization of the splits ``ids``, with the fraction of examples
    that fill all ``max_length`` positions (truncated, or exactly that long)."""
    pad = tokenizer.pad_token_id
    full = sum(int((split[:, -1] != pad).sum()) for split in ids)
    total = sum(len(split) for split in ids)
    return {
        "tokenizer": tokenizer_name(tokenizer),
        "max_length": max_length,
        "pad_token_id": pad,
        "filled_to_max_length": round(full / total, 4) if total else 0.0,
    }
