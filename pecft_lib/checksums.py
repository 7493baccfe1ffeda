"""sha256 of files, and the one check every loader uses for downloaded or committed files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import ChecksumMismatchError


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, fix: str) -> None:
    """Raise :class:`~pecft_lib.errors.ChecksumMismatchError` (saying ``fix``) unless ``path`` hashes to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatchError(str(path), expected, actual, fix)
