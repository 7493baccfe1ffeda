"""The Avalanche template of the parameter-efficient continual methods (InfLoRA, O-LoRA, ...).

Every method here follows the same protocol, taken from the reference implementations (liangyanshuo/InfLoRA,
commit e08b00e; google-research/l2p, commit dd8836e; GT-RIPL/CODA-Prompt, commit 6417d4f):

1. before training experience ``t`` the model adds that experience's pieces — a LoRA branch, an adapter,
   a head — and freezes the earlier ones (:meth:`ContinualPEFTModel.begin_experience`);
2. a **fresh optimizer** is built over the parameters that are trainable now, and only those (the
   references create a new optimizer per task; a frozen parameter never enters it, so neither Adam's
   state nor weight decay can move it);
3. the learning rate may follow a per-epoch schedule (InfLoRA's cosine, :func:`reference_cosine_lr`);
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


class ContinualPEFTModel(nn.Module):
    """A model that grows per experience. Subclasses implement :meth:`begin_experience`."""

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Add the trainable pieces of a new experience over ``classes`` and freeze everything earlier."""
        raise NotImplementedError


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
        # Avalanche wants an optimizer now; the real one is built per experience in make_optimizer.
        placeholder = torch.optim.SGD([nn.Parameter(torch.zeros(0))], lr=0.0)
        super().__init__(model=model, optimizer=placeholder, criterion=criterion or nn.CrossEntropyLoss(),
                         plugins=plugins, **kwargs)
        self.optimizer_factory = optimizer_factory
        self.lr_schedule = lr_schedule
        self._base_lrs: list[float] = []

    def check_model_and_optimizer(self, **kwargs: Any) -> None:
        self.model = self.model_adaptation()
        self.make_optimizer()

    def model_adaptation(self, model: nn.Module | None = None) -> nn.Module:
        model = self.model if model is None else model
        if self.is_training:
            model.begin_experience(sorted(self.experience.classes_in_this_experience))
        return model.to(self.device)

    def make_optimizer(self, **kwargs: Any) -> None:
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        if not trainable:
            raise RuntimeError(f"{type(self.model).__name__} has no trainable parameter in this experience")
        self.optimizer = self.optimizer_factory(trainable)
        self._base_lrs = [group["lr"] for group in self.optimizer.param_groups]

    def _before_training_epoch(self, **kwargs: Any) -> None:
        if self.lr_schedule is not None:
            factor = self.lr_schedule(self.clock.train_exp_epochs, self.train_epochs)
            for group, base in zip(self.optimizer.param_groups, self._base_lrs):
                group["lr"] = base * factor
        super()._before_training_epoch(**kwargs)
