"""Split Fashion-MNIST: 10 clothing classes in 5 class-incremental experiences of 2 classes."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .base import (
    ContinualBenchmark,
    TensorClassificationDataset,
    make_class_incremental,
    per_class_subset,
    seeded_class_order,
)
from .fashion_mnist import CLASS_NAMES, load_fashion_mnist
from .grey28 import MEAN, STD, normalise



def _to_tensors(images, labels, index) -> TensorClassificationDataset:
    return TensorClassificationDataset(normalise(images[index]), torch.from_numpy(labels[index]))


def split_fashion_mnist(
    n_experiences: int = 5,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    root: str | Path | None = None,
    download: bool = True,
) -> ContinualBenchmark:
    """Class-incremental Split Fashion-MNIST.

    Args:
        n_experiences: number of experiences (must divide 10).
        seed: fixes the class order (unless ``class_order`` is given) and the per-class subsets.
        class_order: explicit order of the 10 classes, overrides ``seed`` for the order.
        train_per_class, test_per_class: keep only this many examples per class (``None`` = all:
            6,000 train and 1,000 test per class); the quick profile uses small subsets.
        root, download: where to read the files from, see :func:`load_fashion_mnist`.
    """
    data = load_fashion_mnist(root=root, download=download)
    order = list(class_order) if class_order is not None else seeded_class_order(len(CLASS_NAMES), seed)
    train_idx = per_class_subset(data.train_labels, train_per_class, seed)
    test_idx = per_class_subset(data.test_labels, test_per_class, seed)
    return make_class_incremental(
        "split_fashion_mnist",
        _to_tensors(data.train_images, data.train_labels, train_idx),
        _to_tensors(data.test_images, data.test_labels, test_idx),
        n_experiences=n_experiences,
        class_order=order,
        class_names=CLASS_NAMES,
        info={
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "source": data.source,
            "normalization": {"mean": MEAN, "std": STD},
        },
    )
