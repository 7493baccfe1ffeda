"""The Avalanche template of the parameter-efficient continual methods (InfLoRA, O-LoRA, ...).

Every method here follows the same protocol, taken from the reference implementations (liangyanshuo/InfLoRA,
commit e08b00e; google-research/l2p, commit dd8836e; GT-RIPL/CODA-Prompt, commit 6417d4f):

1. before training experience ``t`` the model adds that experience's pieces — a LoRA branch, an adapter,
   a head — and freezes the earlier ones (:meth:`ContinualPEFTModel.begin_experience`, called by Avalanche's
   model adaptation: the model is a :class:`~avalanche.models.DynamicModule`);
2. a **fresh optimizer** is built over the parameters that are trainable now, and only those (the
   references create a new optimizer per task; a frozen parameter never enters it, so neither Adam's
   state nor weight decay can move it);
3. the learning rate may follow a per-epoch schedule (InfLoRA's cosine, :func:`reference_cosine_lr`), applied
   by the plugin :class:`EpochLRSchedule`;
4. the cross-entropy of a training step runs over the current experience's classes only
   (:class:`~pecft_lib.methods.train_mask.TrainClassMaskPlugin`; InfLoRA's "local CE");
5. evaluation uses the logits of all classes learned so far, without task identity.

Methods subclass :class:`ContinualPEFTStrategy` to add their own steps (InfLoRA's subspace design and
memory update) or pass Avalanche plugins.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol, Sequence

import torch
from avalanche.benchmarks import CLExperience
from avalanche.core import SupervisedPlugin
from avalanche.models import DynamicModule
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from ...evaluation import make_evaluator
from ...repro import check_device
from ..train_mask import TrainClassMaskPlugin
from .precision import check_device_precision, precision_plugins

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
"""Builds the optimizer of one experience from the parameters trainable in it."""

LRSchedule = Callable[[int, int], float]
"""``(epoch, epochs) -> factor`` applied to the optimizer's base learning rates at the start of an epoch."""


class LoopConfig(Protocol):
    """The training-loop part of a method's config: what every Avalanche template needs."""

    batch_size: int
    epochs: int
    eval_batch_size: int
    device: str
    precision: str
    """``fp32`` or ``bf16`` (:mod:`.precision`)."""


def loop_arguments(loop: LoopConfig, n_experiences: int, device_key: str = "optim.device",
                   plugins: Sequence[Any] = ()) -> dict[str, Any]:
    """The Avalanche template arguments of ``loop`` (mini-batch sizes, epochs, device — checked, with
    ``device_key`` naming the config key in the error), the evaluator recording the accuracy matrix, and
    ``plugins`` followed by the plugin of ``loop.precision`` (:func:`~.precision.precision_plugins`)."""
    device = check_device(loop.device, device_key)
    check_device_precision(loop.precision, torch.device(device), device_key.replace("device", "precision"))
    return {
        "train_mb_size": loop.batch_size,
        "train_epochs": loop.epochs,
        "eval_mb_size": loop.eval_batch_size,
        "device": device,
        "evaluator": make_evaluator(n_experiences),
        "plugins": [*plugins, *precision_plugins(loop.precision)],
    }


def reference_cosine_lr(epoch: int, epochs: int) -> float:
    """InfLoRA's and CODA-Prompt's per-epoch factor ``cos(99 π e / (200 (K - 1)))`` (``utils/schedulers.py``
    of both references): 1 at the first epoch, 0.0157 at the last of 20; the rate never reaches zero."""
    return 1.0 if epochs <= 1 else math.cos(99 * math.pi * epoch / (200 * (epochs - 1)))


class ContinualPEFTModel(DynamicModule):
    """A model that grows per experience: Avalanche's model adaptation calls :meth:`adaptation` before every
    training experience, which calls :meth:`begin_experience` (subclasses implement it)."""

    def adaptation(self, experience: CLExperience) -> None:
        """Grow for a training ``experience`` (the model is in training mode); nothing at evaluation."""
        if self.training:
            self.begin_experience(sorted(experience.classes_in_this_experience))

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Add the trainable pieces of a new experience over ``classes`` and freeze everything earlier."""
        raise NotImplementedError


class StatelessPlugin(SupervisedPlugin):
    """A plugin that keeps nothing beyond the current experience that is not the strategy's (checkpointed with
    it), so run checkpoints (:mod:`pecft_lib.training`) need nothing from it."""


class EpochLRSchedule(StatelessPlugin):
    """Scale the optimizer's learning rates by ``schedule(epoch, epochs)`` at the start of every epoch, from the
    rates it was built with in the experience (a fresh optimizer per experience restarts the schedule, as the
    references re-create optimizer and scheduler per task)."""

    def __init__(self, schedule: LRSchedule):
        super().__init__()
        self.schedule = schedule
        self.base_lrs: list[float] = []

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.base_lrs = [group["lr"] for group in strategy.optimizer.param_groups]

    def before_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        factor = self.schedule(strategy.clock.train_exp_epochs, strategy.train_epochs)
        for group, base in zip(strategy.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor


class ContinualPEFTStrategy(SupervisedTemplate):
    """Avalanche's supervised template with the protocol of the module docstring.

    Args:
        model: a :class:`ContinualPEFTModel`.
        optimizer_factory: e.g. ``lambda params: torch.optim.Adam(params, lr=5e-4)``.
        lr_schedule: optional per-epoch factor on the learning rate (see :data:`LRSchedule`).
        mask_other_classes: add :class:`TrainClassMaskPlugin` (default, as every reference does).
        **kwargs: the template's arguments (``train_mb_size``, ``train_epochs``, ``eval_mb_size``,
            ``device``, ``evaluator``, ``plugins``, ...).
    """

    def __init__(
        self,
        *,
        model: ContinualPEFTModel,
        optimizer_factory: OptimizerFactory,
        lr_schedule: LRSchedule | None = None,
        mask_other_classes: bool = True,
        criterion: nn.Module | None = None,
        plugins: Sequence[Any] = (),
        **kwargs: Any,
    ):
        if not isinstance(model, ContinualPEFTModel):
            raise TypeError(f"{type(self).__name__} needs a ContinualPEFTModel, got {type(model).__name__}")
        plugins = [TrainClassMaskPlugin(), *plugins] if mask_other_classes else list(plugins)
        if lr_schedule is not None:
            plugins.insert(0, EpochLRSchedule(lr_schedule))
        # Avalanche wants an optimizer now; the real one is built per experience in make_optimizer.
        placeholder = torch.optim.SGD([nn.Parameter(torch.zeros(0))], lr=0.0)
        super().__init__(model=model, optimizer=placeholder, criterion=criterion or nn.CrossEntropyLoss(),
                         plugins=plugins, **kwargs)
        self.optimizer_factory = optimizer_factory

    def check_model_and_optimizer(self, **kwargs: Any) -> None:
        """Grow the model, then build a fresh optimizer over what is trainable now.

        Overridden because no public hook gives this order: Avalanche's version builds the optimizer once
        before the first adaptation — when the model has no trainable parameter yet — and afterwards updates it
        in place (``update_optimizer`` keeps earlier parameter groups and Adam's state), while the references
        build a new optimizer per task over the parameters trainable after the model has grown.
        """
        self.model = self.model_adaptation()
        self.make_optimizer()

    def make_optimizer(self, **kwargs: Any) -> None:
        """A fresh optimizer (``optimizer_factory``) over the parameters trainable in this experience."""
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        if not trainable:
            raise RuntimeError(f"{type(self.model).__name__} has no trainable parameter in this experience")
        self.optimizer = self.optimizer_factory(trainable)
