"""Parameter overhead per task: what a continual PEFT model trains in each experience and what it keeps.

A parameter-efficient continual method freezes a pretrained backbone and adds its own parameters — a prompt
pool, per-task prompts or prompt components, per-task low-rank branches, heads. Some methods allocate them
all before the first task (L2P's pool, DualPrompt's E-prompt pool, one head over every class), others grow
them task by task (CODA-Prompt's component groups, InfLoRA's and O-LoRA's branches and per-task heads).
:func:`parameter_growth` measures both quantities on the model itself, by calling its ``begin_experience``
as a strategy does, so the numbers follow the code rather than a formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from .resources import count_trainable_parameters


@dataclass(frozen=True)
class GrowthRow:
    """The model right after ``begin_experience`` of experience ``tasks`` (1-based).

    Attributes:
        tasks: experiences begun so far.
        trainable: scalar parameters with ``requires_grad=True`` — what the fresh optimizer of this experience
            is built over (:class:`~pecft_lib.methods.common.ContinualPEFTStrategy`). A parameter tensor
            counts whole even when the method's loss only reaches part of it (DualPrompt's E-prompt pool is one
            tensor; the train mask gives the rows of other classes of a shared head zero gradient).
        stored: scalar parameters that are not the backbone's pretrained weights — what has to be kept, next
            to the unchanged backbone checkpoint, to run the model after this experience.
    """

    tasks: int
    trainable: int
    stored: int


def parameter_growth(build_model: Callable[[nn.Module], nn.Module], backbone: nn.Module, n_tasks: int,
                     classes_per_task: int) -> list[GrowthRow]:
    """Build ``build_model(backbone)``, begin ``n_tasks`` experiences of ``classes_per_task`` classes each
    (class ids ``0, 1, …`` in order) and count its parameters after each.

    The backbone's weights are identified by object before the model is built, so methods that wrap its
    linear layers (InfLoRA's branches, ``peft``'s LoRA layers for O-LoRA) still count only what they add.
    No forward pass runs: the counts do not depend on data.

    Raises:
        ValueError: ``n_tasks`` or ``classes_per_task`` is not positive, the model has no
            ``begin_experience``, or it does not hold the backbone it was given.
    """
    if n_tasks < 1 or classes_per_task < 1:
        raise ValueError(f"n_tasks and classes_per_task must be positive, got {n_tasks} and {classes_per_task}")
    pretrained = {id(parameter) for parameter in backbone.parameters()}
    model = build_model(backbone)
    if not callable(getattr(model, "begin_experience", None)):
        raise ValueError(f"{type(model).__name__} has no begin_experience(classes): parameter_growth needs a "
                         "continual model that adds its pieces per experience (a ContinualPEFTModel)")
    held = {id(parameter) for parameter in model.parameters()}
    if not pretrained <= held:
        raise ValueError(f"{type(model).__name__} does not hold the backbone passed to build_model: build the "
                         "model around that backbone object (not a copy), so its weights can be told apart")
    rows = []
    for task in range(n_tasks):
        model.begin_experience(range(task * classes_per_task, (task + 1) * classes_per_task))
        stored = sum(parameter.numel() for parameter in model.parameters() if id(parameter) not in pretrained)
        rows.append(GrowthRow(task + 1, count_trainable_parameters(model), stored))
    return rows
