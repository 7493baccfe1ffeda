"""Reproducibility: the one call every chapter and script makes first.

Pinning the thread count matters as much as the seed: on the same CPU, one vs two threads changed a
printed metric at the second decimal after a few hundred optimizer steps, because floating-point sums are
reduced in a different order.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .errors import ConfigError, UnknownNameError

PROFILES = ("quick", "medium", "paper")
"""``quick``: CPU, offline, minutes (what CI re-executes); ``medium``: longer offline CPU runs whose records are
committed under ``data/records/medium/`` and loaded by the chapters ("train or load"); ``paper``: GPU, downloads,
the papers' recipes."""


@dataclass(frozen=True)
class ReproSettings:
    """What :func:`setup` set, returned so that a chapter can print it."""

    seed: int
    threads: int
    deterministic: bool
    profile: str

    def __str__(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in asdict(self).items())


def current_profile(default: str = "quick") -> str:
    """The run profile: ``$PECFT_PROFILE`` if set, else ``default``; one of :data:`PROFILES`."""
    profile = os.environ.get("PECFT_PROFILE", default)
    if profile not in PROFILES:
        raise UnknownNameError("profile (PECFT_PROFILE)", profile, PROFILES)
    return profile


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, threads: int | None = 1, deterministic: bool = True, profile: str | None = None) -> ReproSettings:
    """Seed every generator, pin the number of CPU threads and ask torch for deterministic algorithms.

    Args:
        seed: the seed of Python's, NumPy's and torch's generators.
        threads: torch intra-op threads; ``None`` keeps torch's default (all cores; faster, but printed
            numbers may then differ in the last digits from the book's).
        deterministic: ``torch.use_deterministic_algorithms`` (and the cuBLAS workspace setting it needs).
        profile: ``quick`` or ``paper``; default: :func:`current_profile`.
    """
    from tqdm import TqdmWarning

    # tqdm.auto warns (with a path in the message) when ipywidgets is missing; the text bar is fine.
    warnings.filterwarnings("ignore", category=TqdmWarning)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
    return ReproSettings(seed, torch.get_num_threads(), deterministic, profile or current_profile())


def check_device(device: str, key: str = "device") -> str:
    """``device`` itself, or a :class:`~pecft_lib.errors.ConfigError` if it names a GPU that is not there
    (``key`` is the config key that set it, quoted in the message)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"{key}={device!r} but no CUDA GPU is visible; run the quick profile (PECFT_PROFILE=quick) "
            f"or override the device with {{'{key}': 'cpu'}}"
        )
    return device
