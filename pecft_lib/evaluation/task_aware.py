"""Accuracy under the task-incremental protocol: the model is told which experience a sample comes from."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..benchmarks import ContinualBenchmark
from .modes import eval_mode


@torch.no_grad()
def task_aware_accuracy(model: torch.nn.Module, benchmark: ContinualBenchmark, batch_size: int = 1000) -> np.ndarray:
    """Accuracy on every test experience when the logits are restricted to that experience's classes.

    This is the task-incremental protocol (van de Ven et al. 2022): the task identity picks the head, and
    the model only has to tell apart the classes of one experience. Comparing it with the
    class-incremental accuracy (argmax over all classes) separates *forgetting the features* from
    *confusing old and new classes*.
    """
    device = next(model.parameters()).device
    accuracies = []
    with eval_mode(model):
        for experience in benchmark.test_stream:
            classes = torch.tensor(sorted(experience.classes_in_this_experience))
            correct = total = 0
            for x, y, *_ in DataLoader(experience.dataset.eval(), batch_size=batch_size):
                logits = model(x.to(device))[:, classes.to(device)]
                correct += (classes[logits.argmax(dim=1).cpu()] == y).sum().item()
                total += len(y)
            accuracies.append(correct / total)
    return np.array(accuracies)
