"""The benchmark object every method consumes: an Avalanche scenario plus what is needed to reproduce it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from torch.utils.data import Dataset

from ..errors import ConfigError


class TensorClassificationDataset(Dataset):
    """Inputs and integer labels held in memory, with the ``targets`` field Avalanche reads."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs = inputs
        self.targets = targets.tolist()
        self._targets = targets

    def __len__(self) -> int:
        return len(self._targets)

    def __getitem__(self, index: int):
        return self.inputs[index], self._targets[index]


@dataclass
class ContinualBenchmark:
    """A class-incremental Avalanche scenario with its class order and provenance recorded."""

    name: str
    scenario: CLScenario
    class_order: list[int]
    class_names: Sequence[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def train_stream(self):
        return self.scenario.train_stream

    @property
    def test_stream(self):
        return self.scenario.test_stream

    @property
    def n_experiences(self) -> int:
        return len(self.scenario.train_stream)

    @property
    def n_classes(self) -> int:
        return len(self.class_order)

    @property
    def classes_per_experience(self) -> list[list[int]]:
        return [sorted(exp.classes_in_this_experience) for exp in self.scenario.train_stream]

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary stored in every result record."""
        return {
            "name": self.name,
            "n_experiences": self.n_experiences,
            "class_order": list(self.class_order),
            "classes_per_experience": self.classes_per_experience,
            "class_names": list(self.class_names),
            "train_sizes": [len(exp.dataset) for exp in self.train_stream],
            "test_sizes": [len(exp.dataset) for exp in self.test_stream],
            **self.info,
        }


def seeded_class_order(n_classes: int, seed: int) -> list[int]:
    """The class order used when none is given: a permutation drawn from ``numpy``'s PCG64 with ``seed``
    (independent of torch's global RNG, so it does not depend on what ran before)."""
    return np.random.default_rng(seed).permutation(n_classes).tolist()


def per_class_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of every class, drawn with ``seed``, in ascending order."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        if per_class > len(idx):
            raise ConfigError(f"asked for {per_class} examples of class {cls}, only {len(idx)} exist")
        chosen.append(rng.permutation(idx)[:per_class])
    return np.sort(np.concatenate(chosen))


def make_class_incremental(
    name: str,
    train: TensorClassificationDataset,
    test: TensorClassificationDataset,
    *,
    n_experiences: int,
    class_order: Sequence[int],
    class_names: Sequence[str],
    info: dict[str, Any],
) -> ContinualBenchmark:
    """Split ``train``/``test`` into ``n_experiences`` experiences of equally many classes, in ``class_order``."""
    n_classes = len(class_names)
    if sorted(class_order) != list(range(n_classes)):
        raise ConfigError(f"class_order must be a permutation of 0..{n_classes - 1}, got {list(class_order)}")
    if n_experiences < 1 or n_classes % n_experiences:
        raise ConfigError(
            f"n_experiences={n_experiences} must divide the {n_classes} classes of {name} into equal experiences"
        )
    scenario = class_incremental_benchmark(
        {"train": train, "test": test}, class_order=list(class_order), num_experiences=n_experiences
    )
    return ContinualBenchmark(name, scenario, list(class_order), tuple(class_names), info)
