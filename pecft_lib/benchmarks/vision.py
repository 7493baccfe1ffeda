"""What the 224-px image benchmarks (Split CIFAR-100, Split ImageNet-R) share: the reference codes' transforms,
the input scaling, lazy Avalanche datasets, and downloading and verifying archives.

Transforms follow the reference code, not the papers' text (JH-LEE-KR/l2p-pytorch, commit f7bc994;
JH-LEE-KR/dualprompt-pytorch, commit 7eb457d; GT-RIPL/CODA-Prompt, commit 6417d4f; liangyanshuo/InfLoRA, commit
e08b00e). Two recipes exist:

``"coda_prompt"`` (CODA-Prompt ``dataloaders/utils.py`` ``get_transform``; InfLoRA ``utils/data.py`` is the same)
    train ``RandomResizedCrop(224)`` (torchvision's default area 0.08–1, ratio 3/4–4/3, bilinear) + horizontal
    flip; test ``Resize(224)`` for CIFAR-100 (32×32 → 224×224, no crop) and ``Resize(256)`` + ``CenterCrop(224)``
    for ImageNet-R.
``"l2p_dualprompt"`` (the PyTorch ports of L2P and DualPrompt, ``datasets.py`` ``build_transform``, identical in both)
    train ``RandomResizedCrop(224, scale=(0.05, 1), ratio=(3/4, 4/3))`` + flip; test ``Resize(256, bicubic)`` +
    ``CenterCrop(224)`` for both datasets. (The JAX original first resizes CIFAR images to 256×256 before the
    random crop; that variant is not offered.)

Every reference then only calls ``ToTensor()``: inputs in [0, 1], no mean/std normalisation, although the ViT
checkpoints were trained on [-1, 1] inputs. That is the default ``input_scaling="unit"``; ``"minus_one_one"``
(mean = std = 0.5, what the checkpoints expect) and ``"imagenet"`` (ImageNet mean/std) are explicit alternatives.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from avalanche.benchmarks.utils import TaskAwareSupervisedClassificationDataset, _make_taskaware_classification_dataset
import numpy as np
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.datasets.utils import download_url

from ..errors import DatasetNotFoundError, UnknownNameError
from .base import ContinualBenchmark, make_class_incremental, per_class_subset, seeded_class_order

log = logging.getLogger(__name__)

IMAGE_SIZE = 224

INPUT_SCALINGS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "unit": None,  # ToTensor only: [0, 1], as every reference feeds the ViT
    "minus_one_one": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # [-1, 1], the checkpoints' own preprocessing
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet-1k mean/std
}

TRANSFORM_RECIPES = {
    "coda_prompt": "CODA-Prompt / InfLoRA: RandomResizedCrop(224) + flip; test Resize(224) (CIFAR) or "
    "Resize(256) + CenterCrop(224) (ImageNet-R)",
    "l2p_dualprompt": "PyTorch L2P / DualPrompt: RandomResizedCrop(224, scale=(0.05, 1)) + flip; test "
    "Resize(256, bicubic) + CenterCrop(224)",
}

DATASETS = ("cifar100", "imagenet_r")


def reference_transforms(recipe: str, dataset: str, input_scaling: str = "unit") -> tuple[T.Compose, T.Compose]:
    """The (train, test) transforms of ``recipe`` (see the module docstring) for ``dataset`` at 224 px.

    Both take a PIL image and end with ``ToTensor()`` and, unless ``input_scaling="unit"``, ``Normalize``.
    """
    if recipe not in TRANSFORM_RECIPES:
        raise UnknownNameError("transform recipe", recipe, TRANSFORM_RECIPES)
    if dataset not in DATASETS:
        raise UnknownNameError("dataset", dataset, DATASETS)
    if input_scaling not in INPUT_SCALINGS:
        raise UnknownNameError("input scaling", input_scaling, INPUT_SCALINGS)
    if recipe == "coda_prompt":
        train = [T.RandomResizedCrop(IMAGE_SIZE), T.RandomHorizontalFlip()]
        test = [T.Resize(IMAGE_SIZE)] if dataset == "cifar100" else [T.Resize(256), T.CenterCrop(IMAGE_SIZE)]
    else:
        train = [
            T.RandomResizedCrop(IMAGE_SIZE, scale=(0.05, 1.0), ratio=(3 / 4, 4 / 3)),
            T.RandomHorizontalFlip(p=0.5),
        ]
        test = [T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(IMAGE_SIZE)]
    tail: list[Any] = [T.ToTensor()]
    if (stats := INPUT_SCALINGS[input_scaling]) is not None:
        tail.append(T.Normalize(*stats))
    return T.Compose(train + tail), T.Compose(test + tail)


def describe_transforms(recipe: str, input_scaling: str, train: T.Compose, test: T.Compose) -> dict[str, Any]:
    """The ``info`` entries that record the preprocessing: recipe, scaling and every transform's repr."""
    stats = INPUT_SCALINGS[input_scaling]
    return {
        "transform_recipe": recipe,
        "input_scaling": input_scaling,
        "normalization": None if stats is None else {"mean": list(stats[0]), "std": list(stats[1])},
        "train_transforms": [repr(t) for t in train.transforms],
        "test_transforms": [repr(t) for t in test.transforms],
    }


def lazy_dataset(
    dataset: Dataset,
    indices: Sequence[int],
    train_transform: T.Compose,
    test_transform: T.Compose,
    *,
    train: bool,
) -> TaskAwareSupervisedClassificationDataset:
    """``dataset`` (PIL images with a ``targets`` field) as an Avalanche classification dataset restricted to
    ``indices``, transformed when an item is read.

    The two transforms become Avalanche's ``"train"`` and ``"eval"`` transform groups, so strategies switch
    between them with ``dataset.train()`` / ``dataset.eval()`` (e.g. to read training images without
    augmentation). The dataset starts in ``"train"`` when ``train`` is true, otherwise in ``"eval"``. Items
    are ``(image tensor, label, task label 0)``, as in every Avalanche classification dataset.
    """
    wrapped = _make_taskaware_classification_dataset(
        dataset,
        transform_groups={"train": (train_transform, None), "eval": (test_transform, None)},
        initial_transform_group="train" if train else "eval",
    )
    return wrapped if len(indices) == len(dataset) else wrapped.subset(list(indices))


def download_archive(url: str, archive: Path, md5: str, how_to_get: str) -> None:
    """Download ``url`` to ``archive`` with torchvision's downloader, which checks the published ``md5``.

    Raises :class:`DatasetNotFoundError` (with ``how_to_get``) when that fails: no network, refused proxy,
    wrong md5, full disk.
    """
    log.warning("%s not found; downloading %s with torchvision", archive, url)
    try:
        download_url(url, str(archive.parent), archive.name, md5=md5)
    except Exception as err:  # URLError, HTTPError, RuntimeError("File not found or corrupted."), OSError
        raise DatasetNotFoundError(
            f"{archive.name} is not in {archive.parent} and the download failed ({type(err).__name__}: {err}). "
            f"Fix: {how_to_get}."
        ) from err


def split_lazily(
    name: str,
    train: Dataset,
    test: Dataset,
    transforms: tuple[T.Compose, T.Compose],
    *,
    class_names: Sequence[str],
    n_experiences: int,
    seed: int,
    class_order: Sequence[int] | None,
    train_per_class: int | None,
    test_per_class: int | None,
    info: dict[str, Any],
) -> ContinualBenchmark:
    """What the 224 px benchmarks share once their data is on disk: per-class subsets drawn with ``seed``,
    lazily transformed datasets, the class-incremental split in the seeded (or given) class order, and the
    subset and order settings recorded next to ``info``."""
    train_tf, test_tf = transforms
    order = list(class_order) if class_order is not None else seeded_class_order(len(class_names), seed)
    train_idx = per_class_subset(np.asarray(train.targets), train_per_class, seed)
    test_idx = per_class_subset(np.asarray(test.targets), test_per_class, seed)
    return make_class_incremental(
        name,
        lazy_dataset(train, train_idx, train_tf, test_tf, train=True),
        lazy_dataset(test, test_idx, train_tf, test_tf, train=False),
        n_experiences=n_experiences,
        class_order=order,
        class_names=class_names,
        info={
            "seed": seed,
            "class_order_given": class_order is not None,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            **info,
        },
    )
