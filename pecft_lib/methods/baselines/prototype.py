"""Frozen backbone + class-prototype classifier, the SimpleCIL baseline (Zhou et al., IJCV 2024, §4).

SimpleCIL trains nothing: after the pretrained backbone ``φ`` is frozen, the classifier row of class ``c`` is
its prototype ``p_c = mean_{(x, y = c)} φ(x)``, the mean pooled feature of its training samples, and a sample is
scored by cosine similarity, ``ŷ = argmax_c cos(φ(x), p_c)``. Prototypes of earlier classes never change, so
the method cannot forget; what it can reach is bounded by how separable the frozen features are. It is the
baseline a continual method must beat to show that its training helped at all.

Classes without a prototype (not seen yet) get a logit of ``-inf``: there is no classifier row for them, so
unlike a trained linear head this is not a choice of evaluation protocol.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from ...backbones import Backbone, as_backbone
from ..common import ContinualPEFTModel
from ..common.precision import upcast


class PrototypeClassifier(ContinualPEFTModel):
    """``cos(φ(x), p_c)`` over the classes with a prototype; ``φ`` is the frozen backbone's pooled feature."""

    def __init__(self, backbone: Backbone, n_classes: int):
        super().__init__()
        backbone = as_backbone(backbone)
        self.backbone = backbone.freeze()
        width = backbone.embed_dim
        self.register_buffer("feature_sums", torch.zeros(n_classes, width, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.long))

    def train(self, mode: bool = True) -> "PrototypeClassifier":
        """Train/eval mode of the module; the backbone always stays in eval mode (no dropout in φ)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Nothing to add: a class's prototype appears once its samples have been seen."""

    @torch.no_grad()
    def add_examples(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Accumulate the pooled features of ``inputs`` into the sums of their classes."""
        features = self.backbone(inputs).to(self.feature_sums.dtype)
        self.feature_sums.index_add_(0, targets, features)
        self.counts.index_add_(0, targets, torch.ones_like(targets))

    @property
    def prototypes(self) -> torch.Tensor:
        """``[n_classes, D]`` class means (rows of classes without samples are zero)."""
        return (self.feature_sums / self.counts.clamp_min(1).unsqueeze(1)).float()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Cosine scores ``[B, n_classes]``; under bfloat16 autocast only the backbone runs in bfloat16, the
        cosine (against float32 prototypes) is computed in float32."""
        features = self.backbone(inputs)
        with torch.autocast(features.device.type, enabled=False):
            scores = F.normalize(upcast(features), dim=-1) @ F.normalize(self.prototypes, dim=-1).T
        return scores.masked_fill(self.counts == 0, float("-inf"))


class PrototypeStrategy(SupervisedTemplate):
    """Avalanche's supervised template whose "training" is one pass computing class means, without gradients.

    ``train_epochs`` must be 1: a second pass would count every sample twice (the means would not change, but
    the pass is wasted).
    """

    def __init__(self, *, model: PrototypeClassifier, **kwargs: Any):
        if kwargs.get("train_epochs", 1) != 1:
            raise ValueError(f"the prototype baseline makes one pass over the data; got train_epochs="
                             f"{kwargs['train_epochs']} (set epochs: 1)")
        # Avalanche wants an optimizer; nothing here is trained by one.
        placeholder = torch.optim.SGD([nn.Parameter(torch.zeros(0))], lr=0.0)
        super().__init__(model=model, optimizer=placeholder, criterion=nn.CrossEntropyLoss(), **kwargs)

    def make_optimizer(self, **kwargs: Any) -> None:
        """No optimizer: the prototypes are statistics, not parameters."""

    def training_epoch(self, **kwargs: Any) -> None:
        for self.mbatch in self.dataloader:
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self.model.add_examples(self.mb_x, self.mb_y)
            self._after_training_iteration(**kwargs)
