"""O-LoRA's regularisers, as the official code computes them (cmnfriend/O-LoRA, commit 07117e1).

For every LoRA'd layer ``m``, with ``D_old^m`` the frozen down matrices of the previous experiences stacked along
the rank and ``D_t^m``, ``U_t^m`` the current down and up matrices::

    orth_m = Σ_{j,k} | (D_old^m (D_t^m)ᵀ)_{jk} |          ("reference_l1"; the paper squares the entries)
    l2_m   = ‖D_t^m‖_F + ‖U_t^m‖_F                         (Frobenius norms, not squared)

and the training loss is ``L_task + λ1 Σ_m orth_m + λ2 Σ_m l2_m`` — summed over modules, never averaged.
Because ``D_old`` is a concatenation, ``orth_m`` is the sum over previous experiences ``i`` of the same
quantity for ``D_i`` alone, which is how :func:`orthogonality_loss` computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ...errors import ConfigError
from .adapters import ModuleFactors
from .config import ORTHOGONALITY_FORMS


def orthogonality_loss(old_downs: Sequence[torch.Tensor], new_down: torch.Tensor,
                       form: str = "reference_l1") -> torch.Tensor:
    """The orthogonality penalty of one layer: ``Σ_i Σ_{j,k} |(D_i D_tᵀ)_{jk}|`` (``"reference_l1"``) or
    ``Σ_i Σ_{j,k} (D_i D_tᵀ)_{jk}²`` (``"paper_squared"``); exactly 0 without previous experiences."""
    if form not in ORTHOGONALITY_FORMS:
        raise ConfigError(f"orthogonality form must be one of {', '.join(ORTHOGONALITY_FORMS)}, got {form!r}")
    total = new_down.new_zeros(())
    for old_down in old_downs:
        overlap = old_down @ new_down.T
        total = total + (overlap.abs().sum() if form == "reference_l1" else overlap.square().sum())
    return total


def l2_loss(new_down: torch.Tensor, new_up: torch.Tensor) -> torch.Tensor:
    """``‖D_t‖_F + ‖U_t‖_F`` of one layer (non-squared Frobenius norms of both current factors)."""
    return torch.linalg.matrix_norm(new_down) + torch.linalg.matrix_norm(new_up)


def olora_penalties(factors: Sequence[ModuleFactors], form: str = "reference_l1") -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ_m orth_m, Σ_m l2_m)`` over the LoRA'd layers ``factors``."""
    if not factors:
        raise ValueError("no LoRA layer: the model has no O-LoRA adapter")
    orth = sum((orthogonality_loss(f.old_downs, f.down, form) for f in factors), factors[0].down.new_zeros(()))
    l2 = sum((l2_loss(f.down, f.up) for f in factors), factors[0].down.new_zeros(()))
    return orth, l2


@dataclass(frozen=True)
class PenaltyRecord:
    """The loss terms of one training step (unweighted penalties; ``loss`` is the weighted total)."""

    experience: int
    epoch: int
    step: int  # optimizer steps so far in this experience, from 0
    task_loss: float
    orthogonality: float
    l2: float
    loss: float
