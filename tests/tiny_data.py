"""The tiny synthetic class-incremental benchmark of the method tests: 8×8 one-channel images whose mean
grows with the class, so that a small ViT separates the classes within a few epochs."""

from __future__ import annotations

import torch

from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental

CLASSES, EXPERIENCES = 6, 3


def tiny_benchmark(per_class: int = 10):
    """``CLASSES`` classes in ``EXPERIENCES`` experiences of two; the same samples serve as train and test set."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(per_class)
    images = torch.randn(len(labels), 1, 8, 8, generator=generator) * 0.5 + labels.view(-1, 1, 1, 1).float() / 2
    dataset = TensorClassificationDataset(images, labels)
    return make_class_incremental("tiny", dataset, dataset, n_experiences=EXPERIENCES,
                                  class_order=list(range(CLASSES)), class_names=[str(c) for c in range(CLASSES)],
                                  info={})
