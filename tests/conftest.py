"""Shared fixtures: a tiny synthetic class-incremental benchmark, small models and strategies, and guards that
put back the global torch state (thread count, deterministic flag) that some tests change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
requires_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_DEBIAN_DIR.is_dir(),
    reason=f"real Fashion-MNIST not installed ({FASHION_MNIST_DEBIAN_DIR} is absent; "
    "`apt-get install dataset-fashion-mnist` as root)",
)

# Synthetic benchmark: 4 classes of 20-dimensional Gaussian blobs, 2 experiences of 2 classes.
N_CLASSES, N_FEATURES, N_EXPERIENCES = 4, 20, 2
TRAIN_PER_CLASS, TEST_PER_CLASS = 40, 20
BLOB_CLASS_ORDER = (2, 0, 3, 1)  # deliberately not 0..3, so experiences are {0, 2} and {1, 3}


@dataclass
class Blobs:
    """The raw tensors behind the synthetic benchmark, for computations independent of Avalanche."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_order: tuple[int, ...]

    def classes_of(self, experience: int) -> list[int]:
        per = N_CLASSES // N_EXPERIENCES
        return sorted(self.class_order[per * experience: per * (experience + 1)])

    def test_split(self, experience: int) -> tuple[torch.Tensor, torch.Tensor]:
        keep = torch.isin(self.test_y, torch.tensor(self.classes_of(experience)))
        return self.test_x[keep], self.test_y[keep]


def _blobs(rng: np.random.Generator, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for cls in range(N_CLASSES):
        mean = np.zeros(N_FEATURES)
        mean[cls] = 2.0  # separable but overlapping: accuracies are neither 0 nor 1 everywhere
        xs.append(rng.normal(mean, 1.0, size=(per_class, N_FEATURES)))
        ys.append(np.full(per_class, cls))
    return torch.tensor(np.concatenate(xs), dtype=torch.float32), torch.tensor(np.concatenate(ys))


@pytest.fixture(scope="session")
def blobs() -> Blobs:
    rng = np.random.default_rng(20240601)
    train_x, train_y = _blobs(rng, TRAIN_PER_CLASS)
    test_x, test_y = _blobs(rng, TEST_PER_CLASS)
    return Blobs(train_x, train_y, test_x, test_y, BLOB_CLASS_ORDER)


@pytest.fixture
def blob_benchmark(blobs):
    """A fresh ContinualBenchmark over :func:`blobs` (Avalanche scenarios are cheap to build)."""
    from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental

    return make_class_incremental(
        "blobs",
        TensorClassificationDataset(blobs.train_x, blobs.train_y),
        TensorClassificationDataset(blobs.test_x, blobs.test_y),
        n_experiences=N_EXPERIENCES,
        class_order=blobs.class_order,
        class_names=[f"blob{c}" for c in range(N_CLASSES)],
        info={"synthetic": True},
    )


def make_model() -> torch.nn.Module:
    """A small MLP without dropout (so train/eval mode give the same outputs)."""
    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 32), torch.nn.ReLU(), torch.nn.Linear(32, N_CLASSES))


def make_strategy(kind: str, model: torch.nn.Module, evaluator=None, epochs: int = 3):
    """An Avalanche strategy (``naive`` or ``joint``) with SGD; ``evaluator`` defaults to make_evaluator."""
    from avalanche.training import JointTraining, Naive

    from pecft_lib.evaluation import make_evaluator

    cls = {"naive": Naive, "joint": JointTraining}[kind]
    return cls(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16,
        train_epochs=epochs,
        eval_mb_size=64,
        device="cpu",
        evaluator=make_evaluator(N_EXPERIENCES) if evaluator is None else evaluator,
    )


@torch.no_grad()
def direct_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: list[int] | None = None) -> float:
    """Top-1 accuracy computed straight from the model: argmax over all logits, or over ``mask`` only."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    if mask is None:
        predicted = logits.argmax(dim=1)
    else:
        classes = torch.tensor(mask)
        predicted = classes[logits[:, classes].argmax(dim=1)]
    return (predicted == y).sum().item() / len(y)


@pytest.fixture
def torch_state():
    """Put back torch's thread count and deterministic-algorithms flags after the test."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@pytest.fixture
def single_thread(torch_state):
    """Train on one thread (fast and reproducible for tiny models); restored afterwards."""
    torch.set_num_threads(1)
    yield
