"""InfLoRA's model: a frozen backbone whose key and value projections carry per-task branches, plus
per-task heads (Liang & Li, CVPR 2024; liangyanshuo/InfLoRA, commit e08b00e)."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from ...backbones import Backbone, as_backbone
from ...evaluation.modes import eval_mode
from ..common import ContinualPEFTModel, TaskHeads
from .config import InfLoRAConfig
from .layers import InfLoRALinear


class InfLoRAModel(ContinualPEFTModel):
    """``heads(pool(backbone(x)))`` with ``k = W_k x + Σ_j up^k_j down_j x`` (same for ``v``) in ``layers``.

    One designed ``down_j`` per block and task is shared by the key and value branches (the reference
    copies it into both ``lora_A_k[t]`` and ``lora_A_v[t]``); each has its own ``up``. Inference sums the
    branches of every task learned so far and reads every head: no task identity.
    """

    def __init__(self, backbone: Backbone, n_classes: int, config: InfLoRAConfig):
        super().__init__()
        self.config = config
        backbone = as_backbone(backbone)
        self.backbone = backbone.freeze()
        self.layers = list(range(backbone.num_layers)) if config.layers is None else sorted(config.layers)
        if self.layers[-1] >= backbone.num_layers:
            raise ValueError(f"layers {self.layers} exceed the backbone's {backbone.num_layers} blocks")
        for layer in self.layers:
            attention = backbone.attention(layer)
            attention.k = InfLoRALinear(attention.k)
            attention.v = InfLoRALinear(attention.v)
        self.heads = TaskHeads(backbone.embed_dim, n_classes)

    @property
    def n_tasks(self) -> int:
        return len(self.heads.heads)

    def branches(self, layer: int) -> tuple[InfLoRALinear, InfLoRALinear]:
        """The key and value branches of block ``layer``."""
        attention = self.backbone.attention(layer)
        return attention.k, attention.v

    def begin_experience(self, classes: Sequence[int]) -> None:
        for layer in self.layers:
            for branch in self.branches(layer):
                branch.add_task(self.config.rank)
        self.heads.add_task(classes)

    def set_down_projections(self, downs: Sequence[torch.Tensor]) -> None:
        """Install the newest task's designed ``down`` of every branched block (one per entry of ``layers``)."""
        for layer, down in zip(self.layers, downs, strict=True):
            for branch in self.branches(layer):
                branch.set_down(down)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.heads(self.backbone(inputs))

    @torch.no_grad()
    def visit_attention_inputs(self, batches: Iterable[torch.Tensor],
                               visit: Callable[[int, torch.Tensor], None]) -> None:
        """Run the backbone in eval mode over ``batches`` and call ``visit(layer, tokens)`` with the tokens
        ``[N, d]`` entering each branched block's attention (padding tokens excluded)."""

        def hook(layer: int):
            def call(module, args, kwargs):
                tokens, mask = args[0].detach(), kwargs.get("key_padding_mask")
                visit(layer, tokens.reshape(-1, tokens.shape[-1]) if mask is None else tokens[mask])
            return call

        handles = [self.backbone.attention(layer).register_forward_pre_hook(hook(layer), with_kwargs=True)
                   for layer in self.layers]
        try:
            with eval_mode(self):
                device = next(self.parameters()).device
                for inputs in batches:
                    self.backbone(inputs.to(device))
        finally:
            for handle in handles:
                handle.remove()

    def input_covariances(self, batches: Iterable[torch.Tensor]) -> list[torch.Tensor]:
        """Per branched block, the uncentered covariance ``(1/N) Σ x xᵀ`` of the attention's input tokens
        (``d × d``, float64 on the CPU), over all tokens of all ``batches`` — padding tokens excluded.

        The reference accumulates it inside the attention's forward over all 197 tokens of every training
        image (``models/vit_inflora.py`` of liangyanshuo/InfLoRA, commit e08b00e). Runs in eval mode through
        the current model (earlier branches active).
        """
        sums: dict[int, torch.Tensor] = {}
        counts = dict.fromkeys(self.layers, 0)

        def accumulate(layer: int, tokens: torch.Tensor) -> None:
            # the product in the tokens' precision on their device (as the reference), summed in float64
            product = (tokens.T @ tokens).double()
            sums[layer] = product if layer not in sums else sums[layer] + product
            counts[layer] += tokens.shape[0]

        self.visit_attention_inputs(batches, accumulate)
        if not counts[self.layers[0]]:
            raise ValueError("no input tokens: the batches were empty")
        return [(sums[layer] / counts[layer]).cpu() for layer in self.layers]
