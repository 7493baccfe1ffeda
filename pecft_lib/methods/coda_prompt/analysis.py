"""Diagnostics of a trained CODA-Prompt model: which tasks' components the inputs of each task weight."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from ...evaluation.modes import eval_mode
from ..common.analysis import rounded
from .model import CodaPromptModel


@torch.no_grad()
def component_weight_by_task(model: CodaPromptModel,
                             batches_by_task: Iterable[Iterable[torch.Tensor]]) -> np.ndarray:
    """``[T, G]``: row ``t`` is the share of the total weight ``Σ_j |α_j|`` that the inputs of task ``t`` put
    on the components of each task group ``g`` (the components added for task ``g``), averaged over the
    prompted layers and the inputs; each row sums to 1.

    CODA-Prompt (Smith et al., CVPR 2023) replaces L2P's hard top-N by the weights
    ``α_j = cos(q ⊙ A_j, K_j)`` over all components; its claim is that the attention vectors ``A`` and keys
    ``K`` learn to weight the components useful to an input. A diagonal that stands out means the inputs of
    a task weight mostly the components trained on it.
    """
    groups, per_task = model.groups_in_use, model.per_task
    rows = []
    with eval_mode(model):
        for batches in batches_by_task:
            total, count = np.zeros(groups), 0
            for inputs in batches:
                query = model.query(inputs)
                for layer in model.components:
                    weight = model.weights(query, int(layer)).abs().double()  # [B, groups · per_task]
                    by_group = weight.reshape(len(weight), groups, per_task).sum(-1)
                    total += (by_group / by_group.sum(-1, keepdim=True).clamp_min(1e-12)).sum(0).cpu().numpy()
                count += len(inputs) * len(model.components)
            if count == 0:
                raise ValueError("a task has no input: every task needs at least one batch")
            rows.append(total / count)
    return np.stack(rows)


def component_mechanism(model: CodaPromptModel, batches_by_task: list[list[torch.Tensor]]) -> dict[str, Any]:
    """CODA-Prompt's mechanism (:mod:`pecft_lib.mechanisms`): :func:`component_weight_by_task` and the mean
    share an input puts on its own task's components (``1/T`` for a weighting that ignores the task)."""
    share = component_weight_by_task(model, batches_by_task)
    return {"component_weight_share": rounded(share), "own_task_share": round(float(np.mean(np.diagonal(share))), 6)}
