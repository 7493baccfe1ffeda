"""Diagnostics of a trained O-LoRA model: how orthogonal the tasks' down-projections ended up."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..common.analysis import rounded
from .adapters import adapter_name, lora_layers


@torch.no_grad()
def down_overlap(model: nn.Module, n_tasks: int) -> np.ndarray:
    """``[n_tasks, n_tasks]``: the mean absolute cosine between the rows of task ``i``'s and task ``j``'s down
    matrices ``D_i``, ``D_j``, averaged over the LoRA'd layers.

    0 means orthogonal row spaces, which the penalty ``Σ |D_i D_jᵀ|`` pushes towards; two random rows of
    width ``d`` have a mean absolute cosine near ``sqrt(2 / (π d))``. The diagonal compares a task's rows
    with each other (1 on the diagonal of the cosine matrix, so it is not 1 unless the rank is 1).
    """
    total = np.zeros((n_tasks, n_tasks))
    layers = lora_layers(model)
    for _, layer in layers:
        rows = [torch.nn.functional.normalize(layer.lora_A[adapter_name(t)].weight.float(), dim=1)
                for t in range(n_tasks)]
        for i in range(n_tasks):
            for j in range(n_tasks):
                total[i, j] += (rows[i] @ rows[j].T).abs().mean().item()
    return total / len(layers)


def orthogonality_mechanism(model: nn.Module, batches_by_task: list[list[torch.Tensor]]) -> dict[str, Any]:
    """O-LoRA's mechanism (:mod:`pecft_lib.mechanisms`): :func:`down_overlap` of the model's adapters and the
    mean of its off-diagonal entries (the inputs are not needed)."""
    overlap = down_overlap(model, model.n_tasks)
    off_diagonal = overlap[~np.eye(len(overlap), dtype=bool)]
    return {"down_overlap": rounded(overlap), "mean_off_diagonal_overlap": round(float(off_diagonal.mean()), 6)}
