"""CODA-Prompt's components, their input-conditioned weights and its prefix prompting (Smith et al., CVPR 2023).

Per prefixed layer ``l`` the model holds M components ``P^l [M, L_p, D]`` with keys ``K^l [M, D]`` and
attention vectors ``A^l [M, D]``, split into one equal group per task. Each group is its own
``nn.Parameter`` (an ``nn.ParameterList`` entry per tensor and layer): the reference keeps ``[M, …]``
tensors and detaches the rows of earlier tasks in its forward pass, which computes the same thing; separate
parameters let the strategy's optimizer hold only the group being trained, so earlier groups cannot move.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...backbones import Backbone, as_backbone
from ...errors import ConfigError
from ..prompting import Prompting, PromptClassifier
from .config import CodaPromptConfig

NORM_EPS = 1e-12
"""``F.normalize``'s floor on a norm, as in the reference's cosine."""


def orthonormal_rows(existing: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` new rows for the matrix ``existing [s, n]``: N(0, I) draws made orthogonal to the span of
    ``existing`` and to each other, each of unit norm (the reference's ``gram_schmidt``, ``zoo.py`` L75-131).

    The reference orthogonalises each draw by classical Gram–Schmidt against the earlier rows one by one,
    which is exact only while those rows are orthogonal; after training they are not, so here the draws are
    projected off an orthonormal basis of their span (twice, for round-off), then orthonormalised among
    themselves by a QR decomposition whose signs make it equal to Gram–Schmidt of the draws in order.
    Computed in float64 on the CPU with the global torch generator; returned in ``existing``'s dtype and device.
    """
    rows, width = existing.shape
    if rows + count > width:
        raise ConfigError(f"cannot add {count} orthogonal rows to {rows} rows of width {width}: "
                          f"at most {width} rows of width {width} are orthogonal")
    draws = torch.randn(count, width, dtype=torch.float64)
    if rows:
        basis = torch.linalg.qr(existing.detach().to("cpu", torch.float64).T).Q  # [n, s], spans the old rows
        for _ in range(2):
            draws = draws - (draws @ basis) @ basis.T
    q, r = torch.linalg.qr(draws.T)
    q = q * torch.sign(torch.diagonal(r))
    return q.T.to(existing.dtype).to(existing.device)


def component_weights(query: torch.Tensor, attention: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """α ``[B, m]`` with ``α[b, j] = cos(q_b ⊙ A_j, K_j)`` (``zoo.py`` L163-169): no softmax, no top-k.

    Computed without the ``[B, m, D]`` tensor of the reference's ``einsum``:
    ``⟨q ⊙ A_j, K̂_j⟩ = q · (A_j ⊙ K̂_j)`` and ``‖q ⊙ A_j‖² = q² · A_j²``. A zero key or attention vector
    gives α = 0, as ``F.normalize`` does.
    """
    unit_keys = F.normalize(keys, dim=-1, eps=NORM_EPS)
    scale = (query.pow(2) @ attention.pow(2).T).sqrt().clamp_min(NORM_EPS)
    return (query @ (attention * unit_keys).T) / scale


def orthogonality_penalty(x: torch.Tensor) -> torch.Tensor:
    """``O(X) = mean((X Xᵀ − I)²)`` over the rows of ``x [m, n]`` (``zoo.py`` ``ortho_penalty``), on ``x``'s device."""
    gram = x @ x.T
    return (gram - torch.eye(len(x), dtype=x.dtype, device=x.device)).pow(2).mean()


class ComponentGroups(nn.Module):
    """K, A and P of one layer, one parameter per task group (``keys.g``, ``attention.g``, ``prompts.g``)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = nn.ParameterList()
        self.attention = nn.ParameterList()
        self.prompts = nn.ParameterList()

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    def add_group(self, count: int, prompt_length: int, width: int, device: torch.device) -> None:
        """Append ``count`` Gram–Schmidt rows to each of K, A and P (P flattened to ``[count, L_p·D]``)."""
        shapes = ((self.keys, (width,)), (self.attention, (width,)), (self.prompts, (prompt_length, width)))
        for tensors, shape in shapes:
            rows = [parameter.detach().flatten(1) for parameter in tensors]
            existing = torch.cat(rows) if rows else torch.zeros(0, math.prod(shape), device=device)
            tensors.append(nn.Parameter(orthonormal_rows(existing, count).view(count, *shape)))

    def in_use(self, groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K ``[m, D]``, A ``[m, D]`` and P ``[m, L_p, D]`` of the first ``groups`` groups."""
        return tuple(torch.cat(list(tensors)[:groups]) for tensors in (self.keys, self.attention, self.prompts))

    def set_trainable(self, group: int) -> None:
        """Make group ``group`` the only trainable one."""
        for tensors in (self.keys, self.attention, self.prompts):
            for index, parameter in enumerate(tensors):
                parameter.requires_grad_(index == group)


class CodaPromptModel(PromptClassifier):
    """A frozen backbone prefixed at ``config.layers`` by input-weighted sums of prompt components.

    For q = q(x) (prompt-free final-norm [CLS]) and each prefixed layer, α = cos(q ⊙ A, K) over the
    components in use and ``p = Σ_j α_j P_j [B, L_p, D]``; its first L_p/2 rows are the layer's key prefix,
    the last L_p/2 its value prefix. The head (``nn.Linear``'s default init) reads the final-norm [CLS].

    Task ``t`` (0-based, counted by :meth:`begin_experience`) uses the components of groups ``0 … t``
    (``f = (t+1)·M/T`` components); only group ``t`` is trainable, the earlier ones are frozen. Before the
    first experience group 0 is in use, as in the reference (``task_count = 0``).

    Args:
        backbone: the frozen encoder (ViT or text).
        n_classes: the benchmark's classes (one head over all of them).
        n_tasks: T, the number of experiences; the components are split into T groups of M/T.
        config: the method's settings.
    """

    def __init__(self, backbone: Backbone, n_classes: int, n_tasks: int, config: CodaPromptConfig | None = None):
        backbone = as_backbone(backbone)
        config = config or CodaPromptConfig()
        super().__init__(backbone, n_classes, head_init="torch_default", eval_scope=config.eval_scope)
        width = backbone.embed_dim
        problems = []
        if max(config.layers) >= backbone.num_layers:
            problems.append(f"layers {config.layers} do not all exist in a backbone of {backbone.num_layers} layers")
        if n_tasks < 1 or config.n_components < n_tasks or config.n_components % n_tasks:
            problems.append(f"n_components={config.n_components} must be a positive multiple of the number of "
                            f"tasks ({n_tasks}), one equal group of components per task")
        if config.n_components > width:
            problems.append(f"n_components={config.n_components} keys of width {width} cannot be orthogonal; "
                            f"use at most {width} components")
        if problems:
            raise ConfigError("CODA-Prompt: " + "; ".join(problems))
        self.config = config
        self.n_tasks = n_tasks
        self.per_task = config.n_components // n_tasks
        self.task = -1
        self.components = nn.ModuleDict({str(layer): ComponentGroups() for layer in sorted(config.layers)})
        for _ in range(n_tasks if config.init == "orthogonal_at_start" else 1):
            self._add_group()
        self._set_trainable(0)

    @property
    def groups_in_use(self) -> int:
        """Component groups the forward pass uses: ``t + 1`` during and after task ``t`` (1 before any task)."""
        return max(self.task, 0) + 1

    @property
    def components_in_use(self) -> int:
        """f, components per layer the forward pass uses."""
        return self.groups_in_use * self.per_task

    def _add_group(self) -> None:
        device = self.head.weight.device
        for groups in self.components.values():
            groups.add_group(self.per_task, self.config.prompt_length, self.backbone.embed_dim, device)

    def _set_trainable(self, group: int) -> None:
        for groups in self.components.values():
            groups.set_trainable(group)

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Start task ``t``: add its Gram–Schmidt group (``process_task_count``) unless it exists, and make
        it the only trainable group; the head stays trainable (the train mask and a fresh Adam keep the
        other classes' rows unchanged)."""
        if self.task + 1 >= self.n_tasks:
            raise RuntimeError(f"this CODA-Prompt model was built for {self.n_tasks} tasks; "
                               f"build it with the benchmark's number of experiences")
        super().begin_experience(classes)
        self.task += 1
        if self.task >= next(iter(self.components.values())).n_groups:
            self._add_group()
        self._set_trainable(self.task)

    def weights(self, query: torch.Tensor, layer: int) -> torch.Tensor:
        """α ``[B, f]`` of the components in use at ``layer`` for queries ``[B, D]``."""
        keys, attention, _ = self.components[str(layer)].in_use(self.groups_in_use)
        return component_weights(query, attention, keys)

    def make_prompts(self, query: torch.Tensor) -> Prompting:
        half = self.config.prompt_length // 2
        mu = self.config.ortho_penalty
        prefixes, penalty = {}, None
        for layer, groups in self.components.items():
            keys, attention, prompts = groups.in_use(self.groups_in_use)
            prompt = torch.einsum("bm,mld->bld", component_weights(query, attention, keys), prompts)
            prefixes[int(layer)] = (prompt[:, :half], prompt[:, half:])
            if self.training and mu > 0:
                term = sum(orthogonality_penalty(x) for x in (keys, attention, prompts.flatten(1)))
                penalty = term if penalty is None else penalty + term
        return Prompting(prefixes=prefixes, aux_loss=None if penalty is None else mu * penalty)
