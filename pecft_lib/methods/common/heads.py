"""One linear head per experience, read as one class-incremental output layer.

InfLoRA's reference (``models/sinet_inflora.py`` of liangyanshuo/InfLoRA, commit e08b00e) keeps a
``Linear(D, C_t)`` per task, trains only the current one with a cross-entropy over the current classes
("local CE", paper Eq. 9), and at test time concatenates the logits of every head learned so far (no task
identity). :class:`TaskHeads` does this over the
benchmark's global class ids: column ``c`` of the output is the logit of class ``c``; classes no head
has learned yet get ``-inf``, so an argmax never picks them and the softmax of a training step (with
:class:`~pecft_lib.methods.train_mask.TrainClassMaskPlugin`) runs over the current classes only.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class TaskHeads(nn.Module):
    """Per-experience linear heads over ``in_features``-dimensional features, ``n_classes`` logits in all."""

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.in_features = in_features
        self.n_classes = n_classes
        self.heads = nn.ModuleList()
        self.classes: list[list[int]] = []

    def add_task(self, classes: Sequence[int]) -> nn.Linear:
        """Freeze every existing head and append a trainable one for ``classes`` (global class ids)."""
        classes = sorted(int(c) for c in classes)
        seen = {c for task in self.classes for c in task}
        problems = [c for c in classes if not 0 <= c < self.n_classes] + sorted(seen.intersection(classes))
        if not classes or problems:
            raise ValueError(f"a new head needs unseen class ids in 0..{self.n_classes - 1}; got {classes}")
        for head in self.heads:
            head.requires_grad_(False)
        reference = next(self.parameters(), None)
        head = nn.Linear(self.in_features, len(classes),
                         device=None if reference is None else reference.device)
        self.heads.append(head)
        self.classes.append(classes)
        return head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = features.new_full((features.shape[0], self.n_classes), float("-inf"))
        for head, classes in zip(self.heads, self.classes):
            logits[:, classes] = head(features).to(logits.dtype)  # a bfloat16 product under autocast
        return logits

    def get_extra_state(self) -> dict:
        return {"classes": self.classes}

    def set_extra_state(self, state: dict) -> None:
        if state["classes"] != self.classes:
            raise ValueError(
                f"the checkpoint's heads cover classes {state['classes']}, this model's {self.classes}; "
                "add the same tasks (add_task) before loading"
            )
