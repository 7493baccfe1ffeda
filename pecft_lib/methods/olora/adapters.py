"""One ``peft`` LoRA adapter per experience, all active, only the newest trainable (cmnfriend/O-LoRA, commit 07117e1).

The reference keeps, in every LoRA'd linear layer, a frozen "old" branch (the concatenation of all previous
tasks' factors) and a trainable "new" branch; both are summed into the output with the same scaling
``s = α / r``. Here every task is a named ``peft`` adapter ``task_0``, ``task_1``, ...; ``peft``'s LoRA layer
sums its active adapters, each with its own scaling, which is the same function
(``y = W x + b + s · Σ_i U_i D_i drop(x)``). Two differences to the reference: ``peft`` draws an independent
dropout mask per adapter (the reference shares one), and nothing is merged or concatenated —
``add_weighted_adapter(..., "cat")`` would fold the scaling into the down matrices and change the size of the
orthogonality penalty.

``peft`` re-enables gradients on every adapter it touches (injecting a new adapter marks all adapters trainable;
``set_adapter`` makes all active adapters trainable), so :func:`add_task_adapter` freezes the old adapters
explicitly after activating them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from .config import OLoRAConfig


def adapter_name(task: int) -> str:
    """The ``peft`` adapter name of experience ``task`` (0-based)."""
    return f"task_{task}"


def target_modules(qkv_pattern: str, targets: list[str]) -> str:
    """``peft`` ``target_modules`` regex: ``qkv_pattern`` (ending in a ``(q|k|v)``- or ``(q|v)``-like group)
    restricted to the projections ``targets``."""
    pattern, count = re.subn(r"\((?:[qkv]\|)*[qkv]\)$", f"({'|'.join(targets)})", qkv_pattern)
    if count != 1:
        raise ValueError(f"{qkv_pattern!r} does not end in a group of q/k/v names")
    return pattern


def lora_layers(model: nn.Module) -> list[tuple[str, LoraLayer]]:
    """Every ``peft`` LoRA layer of ``model`` with its module name, in module order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def add_task_adapter(model: nn.Module, lora: OLoRAConfig, targets: str, task: int) -> str:
    """Inject experience ``task``'s LoRA pair (rank ``lora.rank``, scaling ``lora.scaling``, freshly initialised:
    down kaiming-uniform, up zero) into the layers of ``model`` matching ``targets``, activate the adapters of
    experiences ``0..task`` and leave only the new one trainable. Returns the new adapter's name.

    Experiences must be added in order; the base weights stay frozen (``peft`` freezes them).
    """
    existing = {name for _, layer in lora_layers(model) for name in layer.lora_A}
    expected = {adapter_name(i) for i in range(task)}
    if existing != expected:
        raise ValueError(f"adding the adapter of experience {task} needs exactly {sorted(expected)}, "
                         f"the model has {sorted(existing)}")
    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                        bias="none")
    name = adapter_name(task)
    with warnings.catch_warnings():  # peft warns that a second adapter is being added: that is the point
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, model, adapter_name=name)
    old = [adapter_name(i) for i in range(task)]
    for _, layer in lora_layers(model):
        layer.set_adapter([*old, name])  # also marks every active adapter trainable ...
        layer.set_requires_grad(old, requires_grad=False)  # ... so freeze the old ones again
    return name


@dataclass(frozen=True)
class ModuleFactors:
    """The LoRA factors of one adapted layer ``m`` after experience ``t`` was added (notation of :mod:`.loss`).

    Attributes:
        name: the layer's module name.
        old_downs: ``D_0 … D_{t-1}`` (each rank × d_in, frozen); empty for the first experience.
        down: ``D_t`` (rank × d_in), peft's ``lora_A``, trainable.
        up: ``U_t`` (d_out × rank), peft's ``lora_B``, trainable.
        scaling: ``s = α / r`` of the current adapter.
    """

    name: str
    old_downs: tuple[torch.Tensor, ...]
    down: torch.Tensor
    up: torch.Tensor
    scaling: float


def task_factors(model: nn.Module, task: int) -> list[ModuleFactors]:
    """Per LoRA'd layer of ``model``, the down matrices of experiences ``< task`` and the factors of ``task``."""
    current = adapter_name(task)
    return [
        ModuleFactors(
            name,
            tuple(layer.lora_A[adapter_name(i)].weight for i in range(task)),
            layer.lora_A[current].weight,
            layer.lora_B[current].weight,
            layer.scaling[current],
        )
        for name, layer in lora_layers(model)
    ]
