"""A frozen :class:`~pecft_lib.backbones.Backbone` plus the trainable pieces of one PEFT method and a head."""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from ...backbones import Backbone, as_backbone
from .config import TuningConfig


class PEFTClassifier(nn.Module):
    """``head(pool(backbone(x, prompts, prefixes)))`` with only the parameters of ``tuning.method`` trainable."""

    def __init__(self, backbone: Backbone, n_classes: int, tuning: TuningConfig):
        super().__init__()
        self.tuning = tuning
        backbone = as_backbone(backbone)
        self.backbone = backbone.freeze()
        width = backbone.embed_dim
        self.prompts: nn.Parameter | None = None
        self.prefixes = nn.ParameterDict()
        if tuning.method == "prompt_tuning":
            self.prompts = nn.Parameter(torch.randn(1, tuning.prompt_length, width) * tuning.init_std)
        elif tuning.method == "prefix_tuning":
            layers = tuning.prefix_layers if tuning.prefix_layers is not None else range(backbone.num_layers)
            for layer in layers:
                self.prefixes[str(layer)] = nn.Parameter(torch.randn(2, tuning.prefix_length, width) * tuning.init_std)
        elif tuning.method == "lora":
            targets = "|".join(tuning.lora_targets)
            pattern = backbone.qkv_pattern.replace("(q|k|v)", f"({targets})")
            config = LoraConfig(r=tuning.lora_rank, lora_alpha=tuning.lora_alpha, target_modules=pattern)
            inject_adapter_in_model(config, self.backbone)
        elif tuning.method == "full":
            self.backbone.requires_grad_(True)
        self.head = nn.Linear(width, n_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        prefixes = {int(layer): (pair[0], pair[1]) for layer, pair in self.prefixes.items()}
        return self.head(self.backbone(inputs, prompts=self.prompts, prefixes=prefixes or None))
