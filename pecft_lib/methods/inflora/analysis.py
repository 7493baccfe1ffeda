"""Diagnostics of a trained :class:`InfLoRAModel`: how much a task's branch changes other tasks' inputs."""

from __future__ import annotations

from typing import Iterable

import torch

from .model import InfLoRAModel


@torch.no_grad()
def branch_interference(model: InfLoRAModel, batches: Iterable[torch.Tensor], task: int) -> list[float]:
    """Per branched block, ``‖Δ_t X‖_F / ‖W_k X‖_F``: the key change task ``task``'s branch
    (``Δ_t = up_t down_t``) makes on the tokens ``X`` entering that block for ``batches``, relative to the
    frozen key projection. Padding tokens are excluded.

    On inputs of earlier tasks this is the interference Proposition 1 bounds: 0 if their tokens lay
    exactly in the stored subspace, small when the memory captures most of their energy. The tokens are
    those of the model as it is now (all branches active).
    """
    changed = dict.fromkeys(model.layers, 0.0)
    base = dict.fromkeys(model.layers, 0.0)

    def hook(layer: int):
        key, _ = model.branches(layer)
        delta = key.up[task] @ key.down[task]

        def measure(module, args, kwargs):
            tokens, mask = args[0], kwargs.get("key_padding_mask")
            flat = tokens.reshape(-1, tokens.shape[-1]) if mask is None else tokens[mask]
            changed[layer] += (flat @ delta.T).square().sum().item()
            base[layer] += (flat @ key.base.weight.T).square().sum().item()
        return measure

    handles = [model.backbone.attention(layer).register_forward_pre_hook(hook(layer), with_kwargs=True)
               for layer in model.layers]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        for inputs in batches:
            model.backbone(inputs.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [(changed[layer] / base[layer]) ** 0.5 for layer in model.layers]
