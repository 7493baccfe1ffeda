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

    def __post_init__(self) -> None:
        """Check that the class order, the names and the scenario agree (a mismatch would otherwise surface
        mid-training as an index error of the classifier head)."""
        n = len(self.class_order)
        if sorted(self.class_order) != list(range(n)):
            raise ConfigError(f"{self.name}: class_order must be a permutation of 0..{n - 1} (the labels the "
                              f"heads index), got {list(self.class_order)}")
        if len(self.class_names) != n:
            raise ConfigError(f"{self.name}: {len(self.class_names)} class names for {n} classes")
        in_scenario = sorted({c for exp in self.scenario.train_stream for c in exp.classes_in_this_experience})
        if any(c not in range(n) for c in in_scenario):
            raise ConfigError(f"{self.name}: the scenario has labels {in_scenario}, but class_order covers only "
                              f"0..{n - 1}; give a class_order (and names) for every label")

    @classmethod
    def from_avalanche(cls, scenario: CLScenario, class_names: Sequence[str] | None = None, name: str | None = None,
                       info: dict[str, Any] | None = None) -> "ContinualBenchmark":
        """Any class-incremental Avalanche benchmark (``avalanche.benchmarks.classic``, ``nc_benchmark``,
        ``class_incremental_benchmark``, ...) as a :class:`ContinualBenchmark`: the class order is read from the
        experiences (each experience's classes in increasing order), and the scenario is checked to be class-
        incremental over the labels ``0..N-1``, with a test stream of the same experiences.

        Args:
            scenario: the Avalanche benchmark, with ``train_stream`` and ``test_stream``.
            class_names: one name per label ``0..N-1``; default ``"0"``, ``"1"``, ...
            name: recorded in results; default the scenario's class name.
            info: more provenance stored in every result record.
        """
        name = name or type(scenario).__name__
        for stream in ("train_stream", "test_stream"):
            if not hasattr(scenario, stream):
                raise ConfigError(f"{name} has no {stream}: pass an Avalanche benchmark (a CLScenario)")
        train = [sorted(exp.classes_in_this_experience) for exp in scenario.train_stream]
        test = [sorted(exp.classes_in_this_experience) for exp in scenario.test_stream]
        if len(train) != len(test):
            raise ConfigError(f"{name}: {len(train)} training but {len(test)} test experiences; the methods evaluate "
                              "every experience after each one is learned")
        seen: set[int] = set()
        for index, (classes, test_classes) in enumerate(zip(train, test)):
            repeated = seen.intersection(classes)
            if repeated:
                raise ConfigError(f"{name}: experience {index} repeats classes {sorted(repeated)} of earlier ones; "
                                  "the methods need a class-incremental benchmark (each class in one experience, "
                                  "labelled once: build it with class_ids_from_zero_in_each_exp=False)")
            if not set(test_classes) <= set(classes):
                raise ConfigError(f"{name}: test experience {index} has classes {test_classes} that training "
                                  f"experience {index} ({classes}) does not")
            seen.update(classes)
        order = [c for classes in train for c in classes]
        if sorted(order) != list(range(len(order))):
            raise ConfigError(f"{name}: labels must be 0..{len(order) - 1} across the experiences, got "
                              f"{sorted(order)}; build the benchmark without per-experience relabelling "
                              "(class_ids_from_zero_in_each_exp=False) or with class_ids_from_zero_from_first_exp=True")
        names = tuple(class_names) if class_names is not None else tuple(str(c) for c in range(len(order)))
        return cls(name, scenario, order, names, {"source": "avalanche", **(info or {})})

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
    classes_per_experience: Sequence[int] | None = None,
) -> ContinualBenchmark:
    """Split ``train``/``test`` into ``n_experiences`` experiences, taking the classes in ``class_order``:
    equally many classes per experience, or ``classes_per_experience[i]`` classes in experience ``i``."""
    n_classes = len(class_names)
    if sorted(class_order) != list(range(n_classes)):
        raise ConfigError(f"class_order must be a permutation of 0..{n_classes - 1}, got {list(class_order)}")
    if classes_per_experience is None:
        if n_experiences < 1 or n_classes % n_experiences:
            raise ConfigError(
                f"n_experiences={n_experiences} must divide the {n_classes} classes of {name} into equal experiences"
            )
        split: dict[str, Any] = {"num_experiences": n_experiences}
    else:
        sizes = list(classes_per_experience)
        if len(sizes) != n_experiences or sum(sizes) != n_classes or min(sizes, default=0) < 1:
            raise ConfigError(
                f"classes_per_experience={sizes} must give each of the n_experiences={n_experiences} experiences "
                f"of {name} at least one class and add up to its {n_classes} classes"
            )
        split = {"num_classes_per_exp": sizes}
    scenario = class_incremental_benchmark({"train": train, "test": test}, class_order=list(class_order), **split)
    return ContinualBenchmark(name, scenario, list(class_order), tuple(class_names), info)
