"""Caching the prompt-free query q(x) across the epochs of one experience.

Every training step of a prompt method runs the frozen backbone twice: once without prompts for q(x)
and once with them, as in every reference implementation. When the training inputs are deterministic (no random
augmentation — the quick profile's tensors), q(x) of a sample is the same in every epoch, so it can be
computed once per sample and experience and reused. The cache is keyed by the sample's position in the
experience's dataset: :func:`with_sample_index` adds that position to every item, after the task label,
so a mini-batch reads ``[x, y, task, index]``.

With random augmentation the cache would return the features of an earlier crop, so it must be off
(the paper profile); the strategy's ``cache_queries`` flag chooses.
"""

from __future__ import annotations

from typing import Callable

import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute

SAMPLE_INDEX = "sample_index"


def with_sample_index(dataset: AvalancheDataset) -> AvalancheDataset:
    """``dataset`` whose items end with their own index (an extra, last field)."""
    index = DataAttribute(list(range(len(dataset))), SAMPLE_INDEX, use_in_getitem=True)
    return AvalancheDataset([dataset], data_attributes=[index])


class QueryCache:
    """q(x) of the samples of one experience, by dataset index; computed on first use."""

    def __init__(self) -> None:
        self._features: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._features)

    def clear(self) -> None:
        self._features.clear()

    def state_dict(self) -> dict[int, torch.Tensor]:
        """The cached queries by sample index (for checkpoints: a recomputed query may differ in the last bits)."""
        return dict(self._features)

    def load_state_dict(self, state: dict[int, torch.Tensor]) -> None:
        self._features = dict(state)

    def lookup(
        self, indices: torch.Tensor, inputs: torch.Tensor, query: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """q of ``inputs`` (the samples ``indices``), computing ``query`` only for samples not seen yet."""
        keys = [int(i) for i in indices]
        missing = [row for row, key in enumerate(keys) if key not in self._features]
        if missing:
            for row, features in zip(missing, query(inputs[missing])):
                self._features[keys[row]] = features
        return torch.stack([self._features[key] for key in keys])
