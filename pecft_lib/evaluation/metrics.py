"""Continual-learning metrics computed from an accuracy matrix.

Convention used everywhere in this library: ``R[i, t]`` is the top-1 accuracy on the test set of
experience ``i`` measured right after training experience ``t`` (0-based). Rows are evaluated
experiences, columns are training stages. Entries of experiences not yet trained (``i > t``) may be
present (they are needed for forward transfer) but are ignored by every metric except :func:`fwt`.

All accuracies are fractions in ``[0, 1]``. Averages over experiences are unweighted (one vote per
experience, not per test sample), as in the L2P/DualPrompt and CODA-Prompt reference code.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "as_matrix",
    "average_accuracy",
    "accuracy_after_each_stage",
    "mean_incremental_accuracy",
    "forgetting_max",
    "forgetting_coda",
    "bwt",
    "fwt",
]


def as_matrix(R: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Validate and return ``R`` as a float64 array of shape (T, T)."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(
            f"accuracy matrix must be square (T experiences x T training stages), got shape {R.shape}"
        )
    seen = np.triu(np.ones_like(R, dtype=bool))  # i <= t: experiences already trained
    if np.isnan(R[seen]).any():
        raise ValueError("accuracy matrix has NaN entries for experiences already trained (i <= t)")
    if ((R[seen] < 0) | (R[seen] > 1)).any():
        raise ValueError("accuracies must be fractions in [0, 1]")
    return R


def accuracy_after_each_stage(R) -> np.ndarray:
    """``A_t = (1/(t+1)) * sum_{i<=t} R[i, t]`` for every stage ``t``: the average accuracy over the
    experiences seen so far (L2P ``train_continual.py``; CODA-Prompt "global" accuracy per stage)."""
    R = as_matrix(R)
    T = R.shape[0]
    return np.array([R[: t + 1, t].mean() for t in range(T)])


def average_accuracy(R) -> float:
    """``A_last = A_{T-1}``: average accuracy over all experiences after the last one (the number the
    papers report as "Acc" / "A_N")."""
    return float(accuracy_after_each_stage(R)[-1])


def mean_incremental_accuracy(R) -> float:
    """``Ā = (1/T) * sum_t A_t`` (Rebuffi et al., iCaRL 2017; "average incremental accuracy")."""
    return float(accuracy_after_each_stage(R).mean())


def forgetting_max(R) -> float | None:
    """Forgetting as in the L2P/DualPrompt reference code (Chaudhry et al. 2018 flavour).

    ``F = (1/(T-1)) * sum_{i<T-1} ( max_{i<=tau<=T-1} R[i, tau] - R[i, T-1] )``.
    The maximum includes the final column, so an experience whose accuracy rose contributes 0, never a
    negative number (``train_continual.py`` of google-research/l2p, commit dd8836e; ``engine.py`` of
    JH-LEE-KR/l2p-pytorch, commit f7bc994). ``None`` for a single experience.
    """
    R = as_matrix(R)
    T = R.shape[0]
    if T < 2:
        return None
    drops = [R[i, i:].max() - R[i, T - 1] for i in range(T - 1)]
    return float(np.mean(drops))


def forgetting_coda(R) -> float | None:
    """Forgetting as in CODA-Prompt's ``utils/calc_forgetting.py``: an average of consecutive-stage drops.

    ``F = (1/(T-1)) * sum_{t=1}^{T-1} (1/t) * sum_{i<t} ( R[i, t-1] - R[i, t] )``.
    Unlike :func:`forgetting_max` it can be negative (an accuracy that recovers pays back earlier drops).
    ``None`` for a single experience.
    """
    R = as_matrix(R)
    T = R.shape[0]
    if T < 2:
        return None
    total = sum(np.sum(R[:t, t - 1] - R[:t, t]) / t for t in range(1, T))
    return float(total / (T - 1))


def bwt(R) -> float | None:
    """Backward transfer (Lopez-Paz & Ranzato, GEM 2017): ``(1/(T-1)) * sum_{i<T-1} (R[i, T-1] - R[i, i])``.
    Negative values are forgetting. ``None`` for a single experience."""
    R = as_matrix(R)
    T = R.shape[0]
    if T < 2:
        return None
    return float(np.mean([R[i, T - 1] - R[i, i] for i in range(T - 1)]))


def fwt(R, initial_accuracy: Sequence[float] | np.ndarray | None) -> float | None:
    """Forward transfer (Lopez-Paz & Ranzato, GEM 2017):
    ``(1/(T-1)) * sum_{i>=1} (R[i, i-1] - b_i)``, where ``b_i`` is the accuracy on experience ``i`` of the
    model before any training.

    Defined only when the experiences were evaluated before being trained (the entries above the diagonal
    ``R[i, i-1]``) and the untrained accuracies ``b`` were measured; otherwise ``None``.
    In class-incremental learning with one shared head, ``R[i, i-1]`` is usually 0 (the classes of ``i``
    were never trained), so FWT mostly measures the chance level of ``b``.
    """
    R = as_matrix(R)
    T = R.shape[0]
    if T < 2 or initial_accuracy is None:
        return None
    b = np.asarray(initial_accuracy, dtype=np.float64)
    if b.shape != (T,):
        raise ValueError(f"initial_accuracy must have one entry per experience ({T}), got shape {b.shape}")
    ahead = np.array([R[i, i - 1] for i in range(1, T)])
    if np.isnan(ahead).any():
        return None
    return float(np.mean(ahead - b[1:]))
