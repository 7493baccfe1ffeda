"""Continual-learning benchmarks as Avalanche scenarios, looked up by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..errors import UnknownNameError
from .base import ContinualBenchmark
from .split_fashion_mnist import split_fashion_mnist

BENCHMARKS: dict[str, Callable[..., ContinualBenchmark]] = {
    "split_fashion_mnist": split_fashion_mnist,
}


def get_benchmark(name: str, **kwargs: Any) -> ContinualBenchmark:
    """Build the benchmark called ``name`` (see :data:`BENCHMARKS`) with keyword arguments ``kwargs``."""
    if name not in BENCHMARKS:
        raise UnknownNameError("benchmark", name, BENCHMARKS)
    return BENCHMARKS[name](**kwargs)


@dataclass
class BenchmarkConfig:
    """The ``benchmark:`` section of an experiment config."""

    name: str
    n_experiences: int = 5
    seed: int = 0
    train_per_class: int | None = None
    test_per_class: int | None = None

    def build(self) -> ContinualBenchmark:
        options = asdict(self)
        return get_benchmark(options.pop("name"), **options)


__all__ = ["BENCHMARKS", "BenchmarkConfig", "ContinualBenchmark", "get_benchmark", "split_fashion_mnist"]
