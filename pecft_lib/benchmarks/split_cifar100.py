"""Split CIFAR-100 at 224 px: 100 classes in 10 class-incremental experiences of 10 classes, the CIFAR benchmark
of L2P, DualPrompt, CODA-Prompt and InfLoRA.

Data: torchvision's ``CIFAR100`` over the official python archive ``cifar-100-python.tar.gz``, kept in
``root`` (default ``data/cache``). The archive is downloaded with torchvision's downloader (which checks the
md5 torchvision publishes), its sha256 is checked on every load, and it is extracted next to itself. The
32×32 images stay ``uint8`` in memory; the 224-px transforms run when an item is read.

Class order: a permutation drawn with ``seed`` unless ``class_order`` is given. The references use the natural
order: pass ``class_order=list(range(100))`` (JAX/PyTorch L2P and DualPrompt, CODA-Prompt's first trial,
InfLoRA).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from torchvision.datasets import CIFAR100
from torchvision.datasets.utils import check_integrity, extract_archive

from ..errors import DatasetNotFoundError
from ..paths import cache_dir
from ..checksums import verify_sha256
from .base import ContinualBenchmark
from .vision import describe_transforms, download_archive, reference_transforms, split_lazily

log = logging.getLogger(__name__)

# sha256 of the official cifar-100-python.tar.gz (169,001,437 bytes), the value Keras' `cifar100.load_data`
# pins; torchvision's md5 of the same file, checked while downloading, is CIFAR100.tgz_md5.
ARCHIVE_SHA256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"


def _how_to_get(root: Path) -> str:
    return (
        f"let torchvision download it with internet access (`download=True`), or download {CIFAR100.url} "
        f"(sha256 {ARCHIVE_SHA256}, md5 {CIFAR100.tgz_md5}) yourself and put it at {root / CIFAR100.filename} "
        "(it is extracted there on the next call), or pass `root=` pointing to a folder holding that archive"
    )


def _extracted_intact(root: Path) -> bool:
    """Whether ``root/cifar-100-python`` holds train, test and meta with torchvision's md5 sums."""
    folder = root / CIFAR100.base_folder
    entries = CIFAR100.train_list + CIFAR100.test_list + [[CIFAR100.meta["filename"], CIFAR100.meta["md5"]]]
    return all(check_integrity(folder / name, md5) for name, md5 in entries)


def load_cifar100(root: str | Path | None = None, download: bool = True) -> tuple[CIFAR100, CIFAR100]:
    """The verified training and test sets (torchvision datasets without transforms: PIL images, int labels).

    Raises :class:`DatasetNotFoundError` when the archive is absent (and ``download`` is false or fails) and
    :class:`ChecksumMismatchError` when it is not the official file. An extraction that is missing or does not
    match torchvision's md5 sums is (re)done from the verified archive.
    """
    root = Path(root) if root is not None else cache_dir()
    archive = root / CIFAR100.filename
    if not archive.is_file():
        if not download:
            raise DatasetNotFoundError(f"CIFAR-100 archive {archive} not found. Fix: {_how_to_get(root)}.")
        download_archive(CIFAR100.url, archive, CIFAR100.tgz_md5, _how_to_get(root))
    verify_sha256(archive, ARCHIVE_SHA256, f"delete {archive} and get it again: {_how_to_get(root)}")
    if not _extracted_intact(root):
        log.warning("extracting %s into %s", archive, root)
        extract_archive(str(archive), str(root))
    return CIFAR100(str(root), train=True), CIFAR100(str(root), train=False)


def split_cifar100(
    n_experiences: int = 10,
    seed: int = 0,
    class_order: Sequence[int] | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    transform_recipe: str = "coda_prompt",
    input_scaling: str = "unit",
    root: str | Path | None = None,
    download: bool = True,
) -> ContinualBenchmark:
    """Class-incremental Split CIFAR-100 with 224×224 inputs.

    Args:
        n_experiences: number of experiences (must divide 100); the references use 10.
        seed: fixes the class order (unless ``class_order`` is given) and the per-class subsets.
        class_order: explicit order of the 100 classes, e.g. ``list(range(100))`` for the references' natural
            order; overrides ``seed`` for the order.
        train_per_class, test_per_class: keep only this many images per class (``None`` = all: 500 train and
            100 test per class).
        transform_recipe: ``"coda_prompt"`` or ``"l2p_dualprompt"``, see :mod:`pecft_lib.benchmarks.vision`.
        input_scaling: ``"unit"`` ([0, 1], as every reference), ``"minus_one_one"`` or ``"imagenet"``.
        root, download: where the archive is kept and whether to download it, see :func:`load_cifar100`.

    Items of ``train_stream[i].dataset`` are ``(float tensor [3, 224, 224], label, 0)``, computed when read.
    """
    transforms = reference_transforms(transform_recipe, "cifar100", input_scaling)  # checked before any download
    train, test = load_cifar100(root=root, download=download)
    return split_lazily(
        "split_cifar100", train, test, transforms,
        class_names=train.classes, n_experiences=n_experiences, seed=seed, class_order=class_order,
        train_per_class=train_per_class, test_per_class=test_per_class,
        info={
            "source": train.root,
            "archive_sha256": ARCHIVE_SHA256,
            **describe_transforms(transform_recipe, input_scaling, *transforms),
        },
    )
