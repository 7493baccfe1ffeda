"""Continual-learning benchmarks as Avalanche scenarios, looked up by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..errors import UnknownNameError
from .base import ContinualBenchmark
from .debian_sections import debian_sections
from .grey28_streams import five_domains, split_mnist
from .olora_text import olora_text
from .split_cifar100 import split_cifar100
from .split_fashion_mnist import split_fashion_mnist
from .split_imagenet_r import split_imagenet_r
from .text_domains import text_domains
from .wordnet_supersenses import wordnet_supersenses

BENCHMARKS: dict[str, Callable[..., ContinualBenchmark]] = {
    "split_fashion_mnist": split_fashion_mnist,
    "split_mnist": split_mnist,
    "five_domains": five_domains,
    "split_cifar100": split_cifar100,
    "split_imagenet_r": split_imagenet_r,
    "wordnet_supersenses": wordnet_supersenses,
    "olora_text": olora_text,
    "debian_sections": debian_sections,
    "text_domains": text_domains,
}
"""Benchmark name (as in the ``benchmark:`` section of a config) → the function that builds it."""


def data_identity(name: str) -> dict[str, str]:
    """The sha256 of every pinned file the benchmark ``name`` is built from (empty for an unknown name): stored
    with records made on it, so that a record made on other data is recognised as such."""
    from .debian_sections import DATA_SHA256 as DEBIAN
    from .fashion_mnist import SHA256 as FASHION
    from .grey28_streams import SHA256 as GREY
    from .split_cifar100 import ARCHIVE_SHA256 as CIFAR
    from .split_imagenet_r import ARCHIVE_SHA256 as IMAGENET_R, SPLIT_SHA256 as IMAGENET_R_SPLIT
    from .text_domains import FORTUNES_SHA256, SPAM_SHA256
    from .wordnet_supersenses import DATA_NOUN_SHA256 as WORDNET

    grey = {f"{stem}.npz": digest for stem, digest in GREY.items()}
    identities = {
        "split_fashion_mnist": dict(FASHION),
        "split_mnist": {"mnist.npz": grey["mnist.npz"]},
        "five_domains": {**grey, **FASHION},
        "split_cifar100": {"archive": CIFAR},
        "split_imagenet_r": {"archive": IMAGENET_R, "split": IMAGENET_R_SPLIT},
        "wordnet_supersenses": {"data.noun": WORDNET},
        "debian_sections": {"debian_sections.jsonl.gz": DEBIAN},
        "text_domains": {"data.noun": WORDNET, "debian_sections.jsonl.gz": DEBIAN,
                         "fortunes.jsonl.gz": FORTUNES_SHA256, "spam.jsonl.gz": SPAM_SHA256},
    }
    return identities.get(name, {})


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
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments only some benchmarks take (e.g. ``max_length`` of a text benchmark)."""

    def build(self) -> ContinualBenchmark:
        settings = asdict(self)
        extra = settings.pop("options")
        return get_benchmark(settings.pop("name"), **settings, **extra)


__all__ = [
    "BENCHMARKS",
    "BenchmarkConfig",
    "ContinualBenchmark",
    "data_identity",
    "debian_sections",
    "five_domains",
    "get_benchmark",
    "olora_text",
    "split_cifar100",
    "split_fashion_mnist",
    "split_imagenet_r",
    "split_mnist",
    "text_domains",
    "wordnet_supersenses",
]
