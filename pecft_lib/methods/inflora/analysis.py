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
    deltas = {layer: model.branches(layer)[0].up[task] @ model.branches(layer)[0].down[task] for layer in model.layers}

    def measure(layer: int, tokens: torch.Tensor) -> None:
        key, _ = model.branches(layer)
        changed[layer] += (tokens @ deltas[layer].T).square().sum().item()
        base[layer] += (tokens @ key.base.weight.T).square().sum().item()

    model.visit_attention_inputs(batches, measure)
    return [(changed[layer] / base[layer]) ** 0.5 for layer in model.layers]
