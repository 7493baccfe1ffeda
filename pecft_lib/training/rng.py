"""Snapshots of every global random generator a training run draws from: Python's, NumPy's and torch's
(CPU and each visible CUDA device).

A snapshot holds only tensors, ints, floats and strings, so it can be stored in a checkpoint that
``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "restore_rng"]


def capture_rng() -> dict[str, Any]:
    """The current state of every global generator."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": position,
                  "has_gauss": has_gauss, "cached_gaussian": cached_gaussian},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(snapshot: dict[str, Any]) -> None:
    """Put every global generator back to ``snapshot`` (from :func:`capture_rng`).

    Raises:
        ValueError: the snapshot was taken with a different number of CUDA devices visible.
    """
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(snapshot["cuda"]) != devices:
        raise ValueError(f"the random state was saved with {len(snapshot['cuda'])} CUDA devices visible, "
                         f"this process sees {devices}; resume with the same devices")
    python, numpy_state = snapshot["python"], snapshot["numpy"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(snapshot["torch"])
    if devices:
        torch.cuda.set_rng_state_all(snapshot["cuda"])
