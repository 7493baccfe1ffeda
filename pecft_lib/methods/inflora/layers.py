"""The InfLoRA branch on one frozen projection: ``W x + b + Σ_j up_j (down_j x)``.

Naming (the most common source of bugs): ``down`` is the ``r × d_in`` matrix applied
first, ``up`` the ``d_out × r`` one applied second. In the InfLoRA **paper** the designed, frozen matrix
is called ``B_t`` and the trained one ``A_t``; in the reference **code** and in ``peft`` they are
``lora_A`` (= our ``down``) and ``lora_B`` (= our ``up``). So:

============  ==================  ===============  ==================
ours          paper               reference code   trained?
============  ==================  ===============  ==================
``down[t]``   B_t (designed)      ``lora_A_*[t]``  never (frozen)
``up[t]``     A_t (zero init)     ``lora_B_*[t]``  during task t only
============  ==================  ===============  ==================

No α/r scaling, no dropout, no bias: the reference (``models/vit_inflora.py`` of liangyanshuo/InfLoRA,
commit e08b00e) adds ``Σ_j lora_B_j lora_A_j x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InfLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus one low-rank branch per task; only the newest ``up`` is trainable."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.down = nn.ParameterList()
        self.up = nn.ParameterList()

    @property
    def n_tasks(self) -> int:
        return len(self.down)

    def add_task(self, rank: int) -> None:
        """Freeze every branch, then add one with ``down = 0`` (to be designed) and ``up = 0`` (trainable).

        With ``up = 0`` the new branch changes nothing, so the statistics gathered before training the task
        see the model as it was after the previous one (the reference's ``get_cur_feat`` pass).
        """
        for parameter in self.up:
            parameter.requires_grad_(False)
        weight = self.base.weight
        self.down.append(nn.Parameter(weight.new_zeros(rank, self.base.in_features), requires_grad=False))
        self.up.append(nn.Parameter(weight.new_zeros(self.base.out_features, rank)))

    @torch.no_grad()
    def set_down(self, down: torch.Tensor) -> None:
        """Install the designed down-projection of the newest task (``r × d_in``)."""
        current = self.down[-1]
        if down.shape != current.shape:
            raise ValueError(f"down-projection must be {tuple(current.shape)}, got {tuple(down.shape)}")
        current.copy_(down)

    def delta_weight(self, tasks: slice | None = None) -> torch.Tensor:
        """``Σ_j up_j down_j`` over ``tasks`` (all by default), ``d_out × d_in``."""
        ups, downs = list(self.up)[tasks or slice(None)], list(self.down)[tasks or slice(None)]
        if not ups:
            return self.base.weight.new_zeros(self.base.weight.shape)
        return torch.cat(ups, dim=1) @ torch.cat(downs, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.n_tasks:
            out = out + F.linear(F.linear(x, torch.cat(list(self.down), dim=0)), torch.cat(list(self.up), dim=1))
        return out
