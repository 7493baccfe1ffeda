"""Diagnostics of key–query prompt selection (L2P, DualPrompt): how the selected prompts depend on the task."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from ...evaluation.modes import eval_mode
from ..common.analysis import rounded


@torch.no_grad()
def selection_by_task(model: torch.nn.Module, batches_by_task: Iterable[Iterable[torch.Tensor]],
                      pool_size: int) -> np.ndarray:
    """``[T, M]``: row ``t`` is the share of the prompt ids that the inputs of task ``t`` select
    (:meth:`prompt_ids` of the model, each of an input's N ids counted once), so every row sums to 1.

    L2P's claim (Wang et al., CVPR 2022, Fig. 4) is that instance-wise selection groups similar inputs on
    shared prompts and dissimilar ones on different prompts; a row per task shows how far the selection
    tells tasks apart without being told the task.
    """
    rows = []
    with eval_mode(model):
        for batches in batches_by_task:
            counts = torch.zeros(pool_size, dtype=torch.float64)
            for inputs in batches:
                counts += torch.bincount(model.prompt_ids(inputs).flatten().cpu(), minlength=pool_size).double()
            if counts.sum() == 0:
                raise ValueError("a task has no input: every task needs at least one batch")
            rows.append((counts / counts.sum()).numpy())
    return np.stack(rows)


def task_selection_information(usage: np.ndarray, task_weights: np.ndarray | None = None) -> float:
    """The mutual information ``I(task; selected id)`` in bits of the joint distribution
    ``p(t, j) = p(t) · usage[t, j]`` (``p(t)`` from ``task_weights``, uniform by default).

    0 when every task selects the prompts in the same proportions (selection ignores the task);
    ``log2 T`` when each task has prompts of its own (selection identifies the task).
    """
    usage = np.asarray(usage, dtype=np.float64)
    weights = np.full(len(usage), 1.0 / len(usage)) if task_weights is None else np.asarray(task_weights, float)
    joint = weights[:, None] * usage / usage.sum(axis=1, keepdims=True)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    present = joint > 0
    return float((joint[present] * np.log2(joint[present] / outer[present])).sum())


def selection_mechanism(model: torch.nn.Module, batches_by_task: list[list[torch.Tensor]]) -> dict[str, Any]:
    """L2P's mechanism (:mod:`pecft_lib.mechanisms`): the share of each prompt per task and the bits of
    :func:`task_selection_information` against the ``log2 T`` of a selection that identifies the task."""
    usage = selection_by_task(model, batches_by_task, model.config.pool_size)
    return {"selection_share": rounded(usage), "task_selection_bits": round(task_selection_information(usage), 6),
            "task_entropy_bits": round(float(np.log2(len(usage))), 6)}
