"""Diagnostics of a trained :class:`InfLoRAModel`: how much a task's branch changes other tasks' inputs."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..common.analysis import rounded
from .model import InfLoRAModel


@torch.no_grad()
def branch_interference(model: InfLoRAModel, batches: Iterable[torch.Tensor], task: int) -> list[float]:
    """Per branched block, ``‖Δ_t X‖_F / ‖W_k X‖_F``: the key change task ``task``'s branch
    (``Δ_t = up_t down_t``) makes on the tokens ``X`` entering that block for ``batches``, relative to the
    frozen key projection. Padding tokens are excluded.

    On inputs of earlier tasks this is the interference Proposition 1 bounds: 0 if their tokens lay
    exactly in the stored subspace, small when the memory captures most of their energy. The tokens are
    those of the model as it is now (all branches active).
    """
    changed = dict.fromkeys(model.layers, 0.0)
    base = dict.fromkeys(model.layers, 0.0)
    deltas = {layer: model.branches(layer)[0].up[task] @ model.branches(layer)[0].down[task] for layer in model.layers}

    def measure(layer: int, tokens: torch.Tensor) -> None:
        key, _ = model.branches(layer)
        changed[layer] += (tokens @ deltas[layer].T).square().sum().item()
        base[layer] += (tokens @ key.base.weight.T).square().sum().item()

    model.visit_attention_inputs(batches, measure)
    return [(changed[layer] / base[layer]) ** 0.5 for layer in model.layers]


def interference_matrix(model: InfLoRAModel, batches_by_task: Sequence[Sequence[torch.Tensor]]) -> np.ndarray:
    """``[T, T]``: entry ``(s, t)``, for ``s <= t``, is :func:`branch_interference` of task ``t``'s branch on
    the inputs of task ``s``, averaged over the branched blocks; ``NaN`` below the diagonal.

    Above the diagonal it is the interference on earlier tasks that InfLoRA (Liang & Li, CVPR 2024) designs
    ``down_t`` to avoid (Proposition 1); the diagonal is the change the branch makes on its own task's
    inputs, the scale to read the interference against (:func:`interference_ratio`).
    """
    tasks = len(batches_by_task)
    if tasks > model.n_tasks:
        raise ValueError(f"{tasks} tasks of inputs for a model with {model.n_tasks} branches")
    matrix = np.full((tasks, tasks), np.nan)
    for t in range(tasks):
        for s in range(t + 1):
            matrix[s, t] = float(np.mean(branch_interference(model, batches_by_task[s], t)))
    return matrix


def interference_ratio(matrix: np.ndarray) -> float:
    """The mean over pairs ``s < t`` of ``matrix[s, t] / matrix[t, t]``: how strongly a branch changes an earlier
    task's inputs relative to its own task's. Scale-free, so branches trained to different sizes (a designed
    and a random ``down``, the paper's Table 3 ablation) compare: near 1 when the branch does not tell old inputs
    from new ones, near 0 when old inputs lie in the subspace the branch ignores."""
    tasks = len(matrix)
    ratios = [matrix[s, t] / matrix[t, t] for t in range(1, tasks) for s in range(t)]
    if not ratios:
        raise ValueError("the interference ratio needs at least two tasks")
    return float(np.mean(ratios))


def interference_mechanism(model: InfLoRAModel, batches_by_task: list[list[torch.Tensor]]) -> dict[str, Any]:
    """InfLoRA's mechanism (:mod:`pecft_lib.mechanisms`): :func:`interference_matrix` and :func:`interference_ratio`."""
    matrix = interference_matrix(model, batches_by_task)
    return {"interference": rounded(matrix), "interference_ratio": round(interference_ratio(matrix), 6)}
