"""Exceptions with messages that say what is wrong and how to fix it."""

from __future__ import annotations

from typing import Iterable


class PecftError(Exception):
    """Base class of every error raised on purpose by ``pecft_lib``."""


class DatasetNotFoundError(PecftError, FileNotFoundError):
    """A dataset is missing locally and could not be obtained."""


class ChecksumMismatchError(PecftError):
    """A file exists but its content is not the expected one."""

    def __init__(self, path: str, expected: str, actual: str, fix: str):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}. "
            f"The file is corrupted or is not the official release. Fix: {fix}"
        )


class UnknownNameError(PecftError, KeyError):
    """A name (benchmark, method, profile, ...) is not one of the known choices."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = ""):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        message = f"unknown {kind} {name!r}; valid choices: {', '.join(self.choices)}"
        super().__init__(f"{message}. {hint}" if hint else message)

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return self.args[0]


class ConfigError(PecftError, ValueError):
    """A configuration has unknown keys or values of the wrong type."""


class CheckpointNotFoundError(PecftError, FileNotFoundError):
    """Pretrained weights are neither available locally nor downloadable."""


class CheckpointMismatchError(PecftError, ValueError):
    """A weights file does not fit the architecture it was given for."""


class CheckpointError(PecftError):
    """A run checkpoint (``pecft_lib.training``) is missing, unreadable, or belongs to a different run; not
    to be confused with :class:`CheckpointNotFoundError`, which is about pretrained weights."""
