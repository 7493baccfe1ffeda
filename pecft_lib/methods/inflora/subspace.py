"""InfLoRA's subspaces: the designed down-projection and the DualGPM memory of old-task inputs.

Everything here works on one layer's **uncentered input covariance** ``C = (1/N) Σ x xᵀ`` (``d × d``),
averaged over every token of every training image, as the reference gathers it (liangyanshuo/InfLoRA,
commit e08b00e).

* :func:`design_down_projection` — before task ``t``: project the old-task subspace ``M`` out of ``C``
  and take the top-``r`` left singular vectors as the rows of ``down`` (paper: ``B_t``, Eq. 7–8). Its
  rows are then orthogonal to ``M``, so by Proposition 1 a gradient step on ``up`` changes the effective
  weight only along directions orthogonal to the old tasks' inputs.
* :class:`SubspaceMemory` — after task ``t``: grow ``M`` with the new task's principal directions until
  the captured energy reaches the threshold ``ε_t`` (GPM, Saha et al. 2021); DualGPM stores the smaller of
  ``M`` and its orthogonal complement (Liang & Li 2023).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

KINDS = ("remove", "retain")


def threshold_at(task: int, n_tasks: int, start: float, end: float = 1.0) -> float:
    """The energy threshold after (0-based) task ``task``: ``start + (end - start) · task / n_tasks``
    (the reference's ``lamb``/``lame`` schedule: 0.95, 0.955, …, 0.995 on 10-task CIFAR-100)."""
    return start + (end - start) * task / n_tasks


def _energy(singular_values: torch.Tensor) -> torch.Tensor:
    # The reference squares the singular values *of the covariance* (4th powers of the data's).
    return singular_values.pow(2)


@dataclass
class SubspaceMemory:
    """The stored subspace of one layer.

    ``kind == "remove"``: ``basis`` (``d × k``, orthonormal columns) spans the old tasks' inputs ``M``.
    ``kind == "retain"``: ``basis`` spans the orthogonal complement ``M^⊥`` (stored once ``k > d/2``).
    ``dual=False`` gives plain GPM: always "remove", never switched (InfLoRA-b5).
    """

    basis: torch.Tensor
    kind: str = "remove"
    dual: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def dim(self) -> int:
        """Dimension of the old-task subspace ``M`` (whichever of ``M`` / ``M^⊥`` is stored)."""
        d, k = self.basis.shape
        return k if self.kind == "remove" else d - k

    def old_task_basis(self) -> torch.Tensor:
        """Orthonormal columns spanning ``M`` (computes the complement when ``M^⊥`` is stored)."""
        if self.kind == "remove":
            return self.basis
        return _complement(self.basis)

    def captured_energy(self, covariance: torch.Tensor, power: int = 1) -> float:
        """Share of the energy of inputs with ``covariance`` that lies in ``M``.

        ``power=1``: the share of their variance, ``tr(P_M C) / tr(C)``. ``power=2``: the share of the squared
        spectrum, ``‖P_M C‖_F² / ‖C‖_F²`` — what the update criterion compares with the threshold (for
        inputs whose principal directions are ``M``'s).
        """
        covariance = covariance.double()
        basis = self.old_task_basis().to(covariance.dtype)
        projected = basis.T @ covariance
        if power == 1:
            return float((projected @ basis).trace() / covariance.trace())
        if power == 2:
            return float(projected.square().sum() / covariance.square().sum())
        raise ValueError(f"power must be 1 or 2, got {power}")

    def copy(self) -> "SubspaceMemory":
        return SubspaceMemory(self.basis.clone(), self.kind, self.dual)

    def project_out(self, covariance: torch.Tensor) -> torch.Tensor:
        """``(I − P_M) C`` — the reference's one-sided projection (``methods/inflora.py``)."""
        basis = self.basis.to(covariance.dtype)
        if self.kind == "remove":
            return covariance - basis @ (basis.T @ covariance)
        return basis @ (basis.T @ covariance)

    @classmethod
    def from_first_task(cls, covariance: torch.Tensor, threshold: float, dual: bool = True) -> "SubspaceMemory":
        """``M`` = the fewest top singular vectors of ``C`` whose energy share reaches ``threshold`` (at least 1)."""
        u, s, _ = torch.linalg.svd(covariance.double(), full_matrices=False)
        energy = _energy(s)
        k = max(int((torch.cumsum(energy, 0) / energy.sum() < threshold).sum()), 1)
        memory = cls(u[:, :k], "remove", dual)
        memory._switch_if_larger_than_half()
        return memory

    def update(self, covariance: torch.Tensor, threshold: float) -> int:
        """Add the new task's directions (reference ``update_DualGPM`` / ``update_GPM``); returns how many."""
        covariance = covariance.double()
        total = _energy(torch.linalg.svdvals(covariance)).sum()
        u, s, _ = torch.linalg.svd(self.project_out(covariance), full_matrices=False)
        share = _energy(s) / total
        if self.kind == "remove":
            # energy already captured by M, then add directions until the threshold is reached
            captured, k = 1.0 - float(share.sum()), 0
            while k < len(share) and captured < threshold:
                captured += float(share[k])
                k += 1
            if k:
                self.basis = torch.cat([self.basis, u[:, :k]], dim=1)[:, : self.basis.shape[0]]
                self._switch_if_larger_than_half()
        else:
            # energy left in M^⊥; move directions out of M^⊥ until it falls below 1 - threshold
            remaining, k = float(share.sum()), 0
            while k < len(share) and remaining >= 1.0 - threshold:
                remaining -= float(share[k])
                k += 1
            if k:
                moved = u[:, :k]
                shrunk = self.basis - moved @ (moved.T @ self.basis)
                left, _, _ = torch.linalg.svd(shrunk, full_matrices=True)
                self.basis = left[:, : self.basis.shape[1] - k]
        return k

    def _switch_if_larger_than_half(self) -> None:
        d, k = self.basis.shape
        if self.dual and self.kind == "remove" and k > d / 2:
            self.basis, self.kind = _complement(self.basis), "retain"


def _complement(basis: torch.Tensor) -> torch.Tensor:
    """Orthonormal columns spanning the orthogonal complement of ``basis``'s column space."""
    left, _, _ = torch.linalg.svd(basis, full_matrices=True)
    return left[:, basis.shape[1]:]


def design_down_projection(
    covariance: torch.Tensor,
    memory: SubspaceMemory | None,
    rank: int,
    scale: float = 1 / math.sqrt(3),
) -> torch.Tensor:
    """The frozen down-projection of a new task, ``rank × d`` (paper's ``B_t``, Eq. 7–8).

    Its rows are the top-``rank`` left singular vectors of ``C`` with the stored subspace projected out,
    ``(I − P_M) C`` (or ``P_{M^⊥} C``), times ``scale`` — the reference's ``1/√3`` (not in the paper; it
    sets the effective learning rate, keep it for parity). Without memory (first task) ``C`` is used as is.
    """
    if memory is not None and rank > covariance.shape[0] - memory.dim:
        warnings.warn(
            f"rank {rank} exceeds the {covariance.shape[0] - memory.dim} free dimensions left outside the "
            "old tasks' subspace; the extra rows of the down-projection are arbitrary and may interfere with "
            "old tasks (the reference behaves the same). Lower the rank or the threshold.", stacklevel=2)
    target = covariance.double() if memory is None else memory.project_out(covariance.double())
    u, _, _ = torch.linalg.svd(target, full_matrices=False)
    if rank > u.shape[1]:
        raise ValueError(f"rank {rank} exceeds the input width {u.shape[1]}")
    return (u[:, :rank].T * scale).to(covariance.dtype)
