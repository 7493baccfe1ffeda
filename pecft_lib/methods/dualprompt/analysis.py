"""Diagnostics of a trained DualPrompt model: task identification by the E-prompt keys."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..prompting.analysis import selection_mechanism


def task_identification_mechanism(model: torch.nn.Module, batches_by_task: list[list[torch.Tensor]]) -> dict[str, Any]:
    """DualPrompt's mechanism (:mod:`pecft_lib.mechanisms`): the selection shares per task as for L2P, and the
    share of inputs whose nearest key is their own task's (the diagonal; Wang et al., ECCV 2022, read the
    test-time key match as a task prediction)."""
    found = selection_mechanism(model, batches_by_task)
    usage = np.array(found["selection_share"])
    found["task_identification"] = round(float(np.mean(np.diagonal(usage[:, :len(usage)]))), 6)
    return found
