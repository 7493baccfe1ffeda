"""What the methods' mechanism diagnostics share (:mod:`pecft_lib.mechanisms`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

Mechanism = Callable[[nn.Module, list[list[torch.Tensor]]], dict[str, Any]]
"""``(trained model, test inputs in batches per task) -> {name: number or nested list}``: a method's own diagnostic,
declared in its :class:`~pecft_lib.methods.spec.MethodSpec` together with the model class it applies to."""


def rounded(matrix: np.ndarray) -> list[list[float | None]]:
    """``matrix`` as nested lists for a JSON record: 6 decimals, ``None`` for ``NaN``."""
    return [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in matrix]
