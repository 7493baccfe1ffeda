"""O-LoRA on a frozen encoder: per-experience LoRA adapters summed at inference, per-experience linear heads."""

from __future__ import annotations

from typing import Sequence

import torch

from ...backbones import Backbone, as_backbone
from ..common import ContinualPEFTModel, TaskHeads
from .adapters import ModuleFactors, add_task_adapter, target_modules, task_factors
from .config import OLoRAConfig


class OLoRAClassifier(ContinualPEFTModel):
    """``heads(pool(backbone(x)))`` where every LoRA'd projection computes ``W x + b + s · Σ_i U_i D_i x``.

    :meth:`begin_experience` adds experience ``t``'s adapter (as cmnfriend/O-LoRA, commit 07117e1, does per
    task) and head; the adapters and heads of earlier experiences stay in the forward pass, frozen. Inference
    uses all of them, without task identity. The classification view is ours (O-LoRA generates label strings,
    see :mod:`.generative`); its heads are :class:`~pecft_lib.methods.common.TaskHeads`.
    """

    def __init__(self, backbone: Backbone, n_classes: int, lora: OLoRAConfig):
        super().__init__()
        backbone = as_backbone(backbone)
        self.backbone = backbone.freeze()
        self.lora = lora
        self.targets = target_modules(backbone.qkv_pattern, lora.targets)
        self.heads = TaskHeads(backbone.embed_dim, n_classes)

    @property
    def n_tasks(self) -> int:
        """Experiences added so far."""
        return len(self.heads.heads)

    def begin_experience(self, classes: Sequence[int]) -> None:
        add_task_adapter(self.backbone, self.lora, self.targets, self.n_tasks)
        self.heads.add_task(classes)

    def factors(self) -> list[ModuleFactors]:
        """Per LoRA'd layer, the old down matrices and the current experience's down and up matrices."""
        if self.n_tasks == 0:
            raise RuntimeError("no experience has begun: call begin_experience first")
        return task_factors(self.backbone, self.n_tasks - 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.heads(self.backbone(inputs))
