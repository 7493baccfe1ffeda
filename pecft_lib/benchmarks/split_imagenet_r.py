"""Split ImageNet-R at 224 px: 200 classes in 10 class-incremental experiences of 20 classes, with CODA-Prompt's
fixed train/test split.

Data: the official ``imagenet-r.tar`` of Hendrycks et al. (2021), 30,000 renditions of 200 ImageNet classes laid
out as ``imagenet-r/<wnid>/<file>.jpg``. Kept in ``root`` (default ``data/cache``): the archive is downloaded
with torchvision's downloader (md5 check), its sha256 is checked, and it is extracted to ``root/imagenet-r``.
Every load then checks the extracted folder against the split file: the sorted list of its images must have
the recorded sha256 (which catches missing, extra and renamed files, e.g. a folder rearranged by the PyTorch
DualPrompt loader, which *moves* files into ``train/`` and ``test/``). Images are read and transformed when an
item is read (Avalanche's ``PathsDataset``, which converts them to RGB like CODA-Prompt's loader).

Split: CODA-Prompt ships it as two YAML files (``dataloaders/splits/imagenet-r_{train,test}.yaml``,
GT-RIPL/CODA-Prompt @ 6417d4f): 24,000 training and 6,000 test images, together every image of the archive,
between 5 and 81 test images per class. The committed file ``data/splits/imagenet-r_coda-prompt.json`` (checked
by sha256) holds the same split compactly: the 200 wnids in CODA-Prompt's label order (label k = ``classes[k]``;
this is not the sorted-wnid order of ImageFolder), the number of images per class, the sha256 of the sorted
image listing, and the positions of the test images in that sorted listing; every other image is a training
image. ``tools/imagenet_r_split_from_coda.py`` rebuilds it from CODA-Prompt's YAML files.

Class order: a permutation drawn with ``seed`` unless ``class_order`` is given; ``class_order=list(range(200))``
gives CODA-Prompt's tasks (its first trial keeps the label order). The JAX and PyTorch DualPrompt codes use
other 80/20 splits and label orders: TFDS ``imagenet_r`` ``test[:80%]`` / ``test[80%:]`` in natural label order
(google-research/l2p, commit dd8836e), and a seeded ``random_split`` with ImageFolder's sorted-wnid order
(JH-LEE-KR/dualprompt-pytorch, commit 7eb457d).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from avalanche.benchmarks.utils import PathsDataset
from torchvision.datasets.utils import extract_archive

from ..errors import ChecksumMismatchError, DatasetNotFoundError
from ..paths import cache_dir, package_data
from ..checksums import verify_sha256
from .base import ContinualBenchmark
from .vision import describe_transforms, download_archive, reference_transforms, split_lazily

log = logging.getLogger(__name__)

URL = "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar"
ARCHIVE = "imagenet-r.tar"
FOLDER = "imagenet-r"
# sha256 and size of the official archive as recorded in TensorFlow Datasets' checksum list for `imagenet_r`;
# the md5 is the one torchvision-style loaders (e.g. pytorch-ood) check.
ARCHIVE_SHA256 = "18c6bf493b39a0d975d48e587437f562caab9c52ae6327dcfa9dd8eb54aa1b52"
ARCHIVE_MD5 = "a61312130a589d0ca1a8fca1f2bd3337"
ARCHIVE_BYTES = 2_191_079_936

SPLIT_FILE = package_data("splits", "imagenet-r_coda-prompt.json")
SPLIT_SHA256 = "1fafa5870b878b922d8610959651ce699a792850a2badfb4bec1632d420333ce"


def _how_to_get(root: Path) -> str:
    return (
        f"let torchvision download it with internet access (`download=True`), or download the official archive "
        f"{URL} (Hendrycks et al. 2021; {ARCHIVE_BYTES:,} bytes, sha256 {ARCHIVE_SHA256}, md5 {ARCHIVE_MD5}) "
        f"yourself and put it at {root / ARCHIVE} (it is verified and extracted to {root / FOLDER} on the next "
        f"call), or extract it yourself (`tar -xf {ARCHIVE} -C {root}`) so that "
        f"{root / FOLDER}/<wnid>/<file>.jpg exist, or pass `root=` pointing to a folder holding {FOLDER}/"
    )


@dataclass(frozen=True)
class CodaSplit:
    """The content of the split file (see the module docstring)."""

    classes: tuple[str, ...]
    images_per_class: tuple[int, ...]
    listing_sha256: str
    test_indices: tuple[int, ...]
    source: str

    def label_of(self) -> dict[str, int]:
        return {wnid: label for label, wnid in enumerate(self.classes)}


def listing_sha256(listing: Sequence[str]) -> str:
    """sha256 of the image listing: each relative path ``<wnid>/<file>`` followed by a newline, UTF-8."""
    return hashlib.sha256("".join(f"{path}\n" for path in listing).encode()).hexdigest()


def make_split_record(train: Sequence[tuple[str, int]], test: Sequence[tuple[str, int]], source: str) -> dict[str, Any]:
    """The split-file content for a split given as ``(relative path '<wnid>/<file>', label)`` pairs.

    Train and test must be disjoint and every wnid must have a single label, the labels being 0..C-1.
    """
    pairs = list(train) + list(test)
    paths = [path for path, _ in pairs]
    if len(set(paths)) != len(paths):
        raise ValueError("a path occurs twice (in train and test, or twice in one of them)")
    label_of: dict[str, int] = {}
    for path, label in pairs:
        wnid = path.split("/")[0]
        if label_of.setdefault(wnid, label) != label:
            raise ValueError(f"{wnid} has labels {label_of[wnid]} and {label}")
    if sorted(label_of.values()) != list(range(len(label_of))):
        raise ValueError("labels must be 0..C-1, one per wnid")
    classes = sorted(label_of, key=label_of.__getitem__)
    listing = sorted(paths)
    test_paths = {path for path, _ in test}
    counts = Counter(path.split("/")[0] for path in paths)
    return {
        "description": "ImageNet-R train/test split. Label k is the wnid classes[k]. The images are the sorted "
        "(Python str order) relative paths '<wnid>/<file>' of all files in imagenet-r/<wnid>/; the sha256 of "
        "that listing (one path per line, newline-terminated, UTF-8) is listing_sha256. test_indices are "
        "positions in that listing; every other image is a training image.",
        "source": source,
        "n_images": len(listing),
        "n_train": len(listing) - len(test_paths),
        "n_test": len(test_paths),
        "listing_sha256": listing_sha256(listing),
        "classes": classes,
        "images_per_class": [counts[wnid] for wnid in classes],
        "test_indices": [i for i, path in enumerate(listing) if path in test_paths],
    }


def load_split() -> CodaSplit:
    """Read :data:`SPLIT_FILE` after checking its sha256 against :data:`SPLIT_SHA256`."""
    if not SPLIT_FILE.is_file():
        raise DatasetNotFoundError(
            f"the split file {SPLIT_FILE}, which ships inside the package, is missing. Fix: reinstall pecft_lib "
            f"(`pip install --force-reinstall pecft_lib`), or in a checkout "
            f"`git checkout -- pecft_lib/data/splits/{SPLIT_FILE.name}`."
        )
    raw = SPLIT_FILE.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != SPLIT_SHA256:
        raise ChecksumMismatchError(
            str(SPLIT_FILE), SPLIT_SHA256, actual, "reinstall pecft_lib (`pip install --force-reinstall pecft_lib`), "
            f"or in a checkout `git checkout -- pecft_lib/data/splits/{SPLIT_FILE.name}`"
        )
    record = json.loads(raw)
    return CodaSplit(
        classes=tuple(record["classes"]),
        images_per_class=tuple(record["images_per_class"]),
        listing_sha256=record["listing_sha256"],
        test_indices=tuple(record["test_indices"]),
        source=record["source"],
    )


def _listing(folder: Path) -> list[str]:
    """Sorted relative paths ``<wnid>/<file>`` of the files one level below ``folder``."""
    return sorted(f"{path.parent.name}/{path.name}" for path in folder.glob("*/*") if path.is_file())


def _check_listing(folder: Path, listing: list[str], split: CodaSplit, fix: str) -> None:
    actual = listing_sha256(listing)
    if actual == split.listing_sha256:
        return
    counts = Counter(path.split("/")[0] for path in listing)
    expected = dict(zip(split.classes, split.images_per_class))
    differing = [
        f"{wnid}: {counts.get(wnid, 0)} instead of {expected.get(wnid, 0)}"
        for wnid in sorted(set(counts) | set(expected))
        if counts.get(wnid, 0) != expected.get(wnid, 0)
    ]
    if differing:
        detail = f"classes with the wrong number of images: {', '.join(differing[:10])}"
    else:
        detail = "the image counts per class are right but file names differ"
    raise ChecksumMismatchError(
        f"{folder} (listing of its {len(listing):,} images, {sum(split.images_per_class):,} expected)",
        split.listing_sha256,
        actual,
        f"{detail}. Delete {folder} and extract the official archive again: {fix}",
    )


def load_imagenet_r(
    split: CodaSplit, root: str | Path | None = None, download: bool = True
) -> tuple[PathsDataset, PathsDataset]:
    """The training and test images of ``split`` (Avalanche ``PathsDataset``: RGB PIL images, int labels).

    Raises :class:`DatasetNotFoundError` when neither the extracted folder nor the archive is present (and
    ``download`` is false or fails) and :class:`ChecksumMismatchError` when the archive or the extracted
    folder is not the official one.
    """
    root = Path(root) if root is not None else cache_dir()
    folder, archive = root / FOLDER, root / ARCHIVE
    how_to_get = _how_to_get(root)
    if not folder.is_dir():
        if not archive.is_file():
            if not download:
                raise DatasetNotFoundError(
                    f"ImageNet-R not found: neither {folder} nor {archive} exists. Fix: {how_to_get}."
                )
            download_archive(URL, archive, ARCHIVE_MD5, how_to_get)
        verify_sha256(archive, ARCHIVE_SHA256, f"delete {archive} and get it again: {how_to_get}")
        log.warning("extracting %s into %s", archive, root)
        extract_archive(str(archive), str(root))
    listing = _listing(folder)
    _check_listing(folder, listing, split, how_to_get)
    label_of = split.label_of()
    is_test = np.zeros(len(listing), dtype=bool)
    is_test[list(split.test_indices)] = True
    files = [(path, label_of[path.split("/")[0]]) for path in listing]
    train = [item for item, held_out in zip(files, is_test) if not held_out]
    test = [item for item, held_out in zip(files, is_test) if held_out]
    return PathsDataset(folder, train), PathsDataset(folder, test)


def split_imagenet_r(
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
    """Class-incremental Split ImageNet-R with CODA-Prompt's train/test split and 224×224 inputs.

    Args:
        n_experiences: number of experiences (must divide 200); CODA-Prompt uses 10 (also 5 and 20).
        seed: fixes the class order (unless ``class_order`` is given) and the per-class subsets.
        class_order: explicit order of the 200 labels; ``list(range(200))`` gives CODA-Prompt's tasks.
        train_per_class, test_per_class: keep only this many images per class (``None`` = all; classes are
            unbalanced: 38–354 training and 5–81 test images).
        transform_recipe: ``"coda_prompt"`` or ``"l2p_dualprompt"``, see :mod:`pecft_lib.benchmarks.vision`.
        input_scaling: ``"unit"`` ([0, 1], as every reference), ``"minus_one_one"`` or ``"imagenet"``.
        root, download: where the data is kept and whether to download it, see :func:`load_imagenet_r`.

    Items of ``train_stream[i].dataset`` are ``(float tensor [3, 224, 224], label, 0)``, computed when read.
    """
    transforms = reference_transforms(transform_recipe, "imagenet_r", input_scaling)  # checked before any download
    split = load_split()
    train, test = load_imagenet_r(split, root=root, download=download)
    return split_lazily(
        "split_imagenet_r", train, test, transforms,
        class_names=split.classes, n_experiences=n_experiences, seed=seed, class_order=class_order,
        train_per_class=train_per_class, test_per_class=test_per_class,
        info={
            "source": str(train.root),
            "archive_sha256": ARCHIVE_SHA256,
            "split": split.source,
            "split_sha256": SPLIT_SHA256,
            **describe_transforms(transform_recipe, input_scaling, *transforms),
        },
    )
