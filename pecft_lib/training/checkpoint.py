"""Checkpoint files that are never half-written, and a loader that says what is wrong with a bad one.

:func:`atomic_save` writes to a temporary file in the destination's folder, flushes it to disk and renames
it over the destination (``os.replace`` is atomic on POSIX and Windows): a reader sees the previous file or
the new one, never a prefix of the new one, even if the writer is killed mid-write. A writer killed
mid-write leaves a hidden temporary file (``.NAME.*.tmp``) that no loader reads;
:func:`remove_stale_temporaries` deletes them.

Checkpoints hold only tensors and plain Python containers, so :func:`load_checkpoint` reads them with
``torch.load(weights_only=True)``: loading one never runs pickled code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import CheckpointError

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "remove_stale_temporaries"]


def _temporary_pattern(path: Path) -> str:
    return f".{path.name}.*.tmp"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)``, atomically: a temporary file in the same folder, fsync, then rename
    (:func:`pecft_lib.atomic.atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files an interrupted :func:`atomic_save` to ``path`` left behind; return them."""
    path = Path(path)
    stale = sorted(path.parent.glob(_temporary_pattern(path)))
    for file in stale:
        file.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dictionary saved at ``path`` (tensors mapped to ``map_location``).

    Raises:
        CheckpointError: the file is missing, is not a readable ``torch.save`` file of plain data (truncated,
            corrupted, or holding pickled objects), or does not hold a dictionary.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; start the run without resuming, or point to the run's "
                              "output folder")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); it is corrupted or was not "
            "written by pecft_lib.training; delete it to start the run over"
        ) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dictionary")
    return checkpoint
