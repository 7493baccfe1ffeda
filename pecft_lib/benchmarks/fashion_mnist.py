"""Fashion-MNIST (Xiao et al. 2017) read from the official IDX files, verified by sha256.

Where the files are looked for, in order:

1. ``root`` if given (a folder holding the four files, gzipped or not, or torchvision's
   ``<root>/FashionMNIST/raw`` layout);
2. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
3. the download cache (``data/cache/FashionMNIST/raw``), filled by torchvision's downloader when
   ``download=True``.

Checksums are taken over the *decompressed* IDX payload: Debian re-compresses the archives, so the
``.gz`` bytes differ from the upstream ones while the images and labels are identical.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ChecksumMismatchError, DatasetNotFoundError
from ..paths import cache_dir

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# sha256 of the decompressed IDX files of the official release (identical in Debian's package).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

HOW_TO_GET = (
    "either install Debian's package (as root: `apt-get install dataset-fashion-mnist`, files land in "
    f"{DEBIAN_DIR}), or let torchvision download it with internet access "
    "(`load_fashion_mnist(download=True)`, files land in data/cache/FashionMNIST/raw), "
    "or pass `root=` pointing to a folder with the four official IDX files"
)


@dataclass(frozen=True)
class FashionMNIST:
    """The full dataset as arrays: images ``uint8 [N, 28, 28]``, labels ``int64 [N]``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # folder the files were read from


def _candidate_dirs(root: str | Path | None) -> list[Path]:
    if root is not None:
        root = Path(root)
        return [root, root / "FashionMNIST" / "raw"]
    return [DEBIAN_DIR, cache_dir() / "FashionMNIST" / "raw"]


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _locate(dirs: list[Path]) -> tuple[Path, dict[str, Path]] | None:
    """The first folder holding any of the files, with the files found there (possibly incomplete)."""
    for folder in dirs:
        found = {name: path for name in SHA256 if (path := _find(folder, name)) is not None}
        if found:
            return folder, found
    return None


def _download_with_torchvision() -> None:
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    log.warning("Fashion-MNIST not found locally; downloading it with torchvision into %s", cache_dir())
    TorchvisionFashionMNIST(root=str(cache_dir()), train=True, download=True)
    TorchvisionFashionMNIST(root=str(cache_dir()), train=False, download=True)


def read_idx(path: Path, expected_sha256: str) -> np.ndarray:
    """Read one IDX file (gzipped or raw) after checking the sha256 of its decompressed bytes."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # truncated, damaged or not a gzip file
            raise ChecksumMismatchError(
                str(path), expected_sha256, f"<unreadable gzip: {err}>", f"delete it and get it again: {HOW_TO_GET}"
            ) from err
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha256:
        raise ChecksumMismatchError(str(path), expected_sha256, actual, f"delete it and get it again: {HOW_TO_GET}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(root: str | Path | None = None, download: bool = True) -> FashionMNIST:
    """Load and verify Fashion-MNIST; see the module docstring for where it is looked for.

    Raises :class:`DatasetNotFoundError` when the files are missing (or only some are present) and
    :class:`ChecksumMismatchError` when a file's content is not the official one.
    """
    dirs = _candidate_dirs(root)
    located = _locate(dirs)
    if located is None and download and root is None:
        try:
            _download_with_torchvision()
        except Exception as err:  # no network, proxy refused, disk full, ...
            raise DatasetNotFoundError(
                f"Fashion-MNIST is not installed and the download failed ({type(err).__name__}: {err}). "
                f"Fix: {HOW_TO_GET}."
            ) from err
        located = _locate(dirs)
    if located is None:
        raise DatasetNotFoundError(
            f"Fashion-MNIST files not found in {', '.join(map(str, dirs))}. Fix: {HOW_TO_GET}."
        )
    folder, found = located
    missing = sorted(set(SHA256) - set(found))
    if missing:
        raise DatasetNotFoundError(
            f"Fashion-MNIST in {folder} is incomplete: missing {', '.join(missing)} (.gz or raw). Fix: {HOW_TO_GET}."
        )
    arrays = {name: read_idx(found[name], digest) for name, digest in SHA256.items()}
    return FashionMNIST(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"].astype(np.int64),
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        source=str(folder),
    )
