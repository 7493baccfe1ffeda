"""State dicts of the official CODA-Prompt code (``GT-RIPL/CODA-Prompt``) ↔ :class:`CodaPromptModel`.

The reference learner saves ``self.model.state_dict()`` of its ``ViTZoo`` (``learners/default.py``
``save_model``): ``feat``, its own ViT (timm-0.4 layout, fused ``qkv``), ``prompt``, the ``CodaPrompt``
module with full ``[M, …]`` tensors per prefixed layer ``l`` — rows of tasks not started yet are zero — and
``last``, one linear head over all classes. Its evaluation (``learners/default.py`` ``validation``) is
``model(x)[:, :valid_out_dim]`` with the components ``[0, f)`` of the tasks started: what a
:class:`CodaPromptModel` that has begun those tasks computes with ``eval_scope="seen"``. Class ``c`` is the
reference's label ``c``, i.e. position ``c`` in its task order (``dataloaders/dataloader.py`` remaps labels).

Key mapping (``i`` = block, ``l`` = prefixed layer, ``g`` = task group of ``M/T`` rows):

===========================================  ==============================================================
reference                                    :class:`CodaPromptModel`
===========================================  ==============================================================
``feat.<name>``                              ``backbone.vit.<name>``: ``cls_token``, ``pos_embed``,
                                             ``patch_embed.proj``, ``norm`` and, per block, ``norm1``,
                                             ``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``attn.proj``
``feat.blocks.i.attn.qkv.{weight,bias}``     rows ``[0, d)``, ``[d, 2d)``, ``[2d, 3d)`` →
                                             ``backbone.vit.blocks.i.attn.{q,k,v}``
``prompt.e_k_l`` ``[M, d]``                  rows of group ``g`` → ``components.l.keys.g``
``prompt.e_a_l`` ``[M, d]``                  rows of group ``g`` → ``components.l.attention.g``
``prompt.e_p_l`` ``[M, L_p, d]``             rows of group ``g`` → ``components.l.prompts.g``
``last.{weight,bias}``                       ``head.{weight,bias}``
===========================================  ==============================================================

The number of tasks T of the run is not in the checkpoint (the reference's ``task_count`` is a plain
attribute, not saved), but it fixes the groups, so it must be given. The number of tasks started is read
from the rows in use: the checkpoint after task ``t`` has ``(t+1)·M/T`` non-zero rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
from timm.models.vision_transformer import VisionTransformer

from ...backbones import ViTBackbone, create_paper_vit
from ...compat.state_dict import check_state_dict
from ...errors import CheckpointMismatchError, ConfigError
from .config import CodaPromptConfig
from .model import CodaPromptModel

REFERENCE_VIT = "vit_base_patch16_224.augreg_in21k_ft_in1k"
"""The reference's backbone (timm 0.4.12's ``vit_base_patch16_224``; its ``requirements.txt`` pins timm 0.4.12)."""

_BLOCK = re.compile(r"feat\.blocks\.(\d+)\.")
_PROMPT = re.compile(r"prompt\.e_(?P<kind>[kap])_(?P<layer>\d+)")
_OUR_QKV = re.compile(r"backbone\.vit\.blocks\.(\d+)\.attn\.([qkv])\.(weight|bias)")
_OUR_COMPONENT = re.compile(r"components\.(?P<layer>\d+)\.(?P<kind>keys|attention|prompts)\.(?P<group>\d+)")
_KINDS = {"keys": "k", "attention": "a", "prompts": "p"}
_OUR_BACKBONE = "backbone.vit."


@dataclass(frozen=True)
class ReferenceLayout:
    """What a reference state dict holds, read from its keys and tensor shapes.

    Attributes:
        depth: blocks of the ViT.
        width: model width ``d``.
        n_components: M, rows of every ``e_k_l``.
        prompt_length: L_p, the second dimension of ``e_p_l``.
        layers: the prefixed layers ``l``.
        n_classes: rows of ``last.weight``.
        rows_in_use: the largest number of leading rows of any ``e_k_l``, ``e_a_l``, ``e_p_l`` after which
            every row is zero.
    """

    depth: int
    width: int
    n_components: int
    prompt_length: int
    layers: list[int]
    n_classes: int
    rows_in_use: int


def read_layout(state_dict: Mapping[str, torch.Tensor]) -> ReferenceLayout:
    """The :class:`ReferenceLayout` of a flat reference state dict."""
    prompts = {(match["kind"], int(match["layer"])): tensor
               for key, tensor in state_dict.items() if (match := _PROMPT.fullmatch(key))}
    layers = sorted({layer for _, layer in prompts})
    if not layers or ("p", layers[0]) not in prompts or "feat.cls_token" not in state_dict \
            or "last.weight" not in state_dict:
        raise CheckpointMismatchError(
            "not a state dict of the CODA-Prompt reference's ViTZoo: it needs feat.cls_token, last.weight and "
            "prompt.e_p_<l>, prompt.e_k_<l>, prompt.e_a_<l> keys"
        )
    components = prompts["p", layers[0]]
    rows_in_use = 0
    for tensor in prompts.values():
        nonzero = tensor.flatten(1).ne(0).any(1).nonzero()
        rows_in_use = max(rows_in_use, int(nonzero.max()) + 1 if len(nonzero) else 0)
    return ReferenceLayout(
        depth=max(int(match[1]) for key in state_dict if (match := _BLOCK.match(key))) + 1,
        width=state_dict["feat.cls_token"].shape[-1],
        n_components=components.shape[0],
        prompt_length=components.shape[1],
        layers=layers,
        n_classes=state_dict["last.weight"].shape[0],
        rows_in_use=rows_in_use,
    )


def reference_name(key: str) -> tuple[str, int | None]:
    """The reference's name of the :class:`CodaPromptModel` tensor ``key`` and the index of its slice there:
    the third of the fused ``qkv`` for the q/k/v projections, the task group for components, else ``None``."""
    if match := _OUR_QKV.fullmatch(key):
        block, projection, kind = match.groups()
        return f"feat.blocks.{block}.attn.qkv.{kind}", "qkv".index(projection)
    if match := _OUR_COMPONENT.fullmatch(key):
        return f"prompt.e_{_KINDS[match['kind']]}_{match['layer']}", int(match["group"])
    if key in ("head.weight", "head.bias"):
        return key.replace("head.", "last."), None
    if key.startswith(_OUR_BACKBONE):
        return "feat." + key.removeprefix(_OUR_BACKBONE), None
    raise KeyError(f"{key} has no counterpart in the CODA-Prompt reference")


def to_reference_state_dict(model: CodaPromptModel) -> dict[str, torch.Tensor]:
    """The model's tensors under the reference's names: q/k/v fused back into ``qkv``, the component groups
    stacked into ``[M, …]`` tensors whose rows of groups the model has not created yet are zero (new tensors;
    the others share the model's storage, as with ``state_dict()``)."""
    state, parts = {}, {}
    for key, tensor in model.state_dict().items():
        name, index = reference_name(key)
        if index is None:
            state[name] = tensor
        else:
            parts.setdefault(name, {})[index] = tensor
    for name, pieces in parts.items():
        if name.startswith("prompt."):
            stacked = torch.cat([pieces[group] for group in range(len(pieces))])
            full = stacked.new_zeros(model.config.n_components, *stacked.shape[1:])
            full[:len(stacked)] = stacked
            state[name] = full
        else:
            state[name] = torch.cat([pieces[third] for third in range(3)])
    return state


def from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    n_tasks: int | None = None,
    tasks_started: int | None = None,
    backbone: str | VisionTransformer = REFERENCE_VIT,
    eval_scope: str = "seen",
) -> CodaPromptModel:
    """A :class:`CodaPromptModel` computing the reference's evaluation-mode ``ViTZoo`` after ``tasks_started``
    of ``n_tasks`` equal tasks.

    The model is in eval mode with every parameter frozen; ``model(x)`` gives logits over every class of the
    checkpoint, those of the classes of no started task at −∞ with ``eval_scope="seen"`` (so its first
    ``tasks_started · C/T`` columns equal the reference's ``model(x)[:, :valid_out_dim]``), or the head's
    raw logits with ``eval_scope="all"``. M, L_p, the prefixed layers, the classes and the ViT's depth and
    width are read from the state dict.

    Args:
        state_dict: a flat ``ViTZoo`` state dict (``pecft_lib.compat.from_reference`` also unwraps wrapped
            checkpoints and the ``module.`` prefix of ``nn.DataParallel``).
        n_tasks: T of the run that wrote the checkpoint (10 in the reference's CIFAR-100 and ImageNet-R
            scripts); required, the checkpoint does not record it.
        tasks_started: tasks whose components are used. Default: the non-zero rows divided by M/T. A
            smaller value gives the model as it was after that task, since later tasks leave the earlier
            components unchanged (the head rows of later classes are then masked by ``eval_scope``).
        backbone: the ViT whose weights are replaced: a tag of
            :data:`~pecft_lib.backbones.PAPER_VIT_CHECKPOINTS` (built with random weights) or a timm
            ``VisionTransformer`` of the checkpoint's architecture (e.g. a small one for tests). The number
            of attention heads cannot be read from the weights: it must be the reference's.
        eval_scope: ``"seen"`` (the reference's protocol) or ``"all"``.

    Raises:
        ConfigError: ``n_tasks`` missing or inconsistent with the checkpoint's components and classes.
        CheckpointMismatchError: the state dict is not a reference checkpoint of this architecture; the
            message names every missing, unexpected and mis-shaped key.
    """
    layout = read_layout(state_dict)
    if n_tasks is None:
        raise ConfigError(
            f"a CODA-Prompt checkpoint does not record its number of tasks; pass n_tasks= (the run's T, e.g. 10; "
            f"its {layout.n_components} components hold {layout.rows_in_use} non-zero rows)"
        )
    if n_tasks < 1 or layout.n_components % n_tasks or layout.n_classes % n_tasks:
        raise ConfigError(f"n_tasks={n_tasks} must divide the checkpoint's {layout.n_components} components and "
                          f"{layout.n_classes} classes into equal tasks")
    per_task = layout.n_components // n_tasks
    if tasks_started is None:
        tasks_started = max(1, -(-layout.rows_in_use // per_task))
    if not 1 <= tasks_started <= n_tasks:
        raise ConfigError(f"tasks_started must be in 1..{n_tasks}, got {tasks_started}")

    name = backbone if isinstance(backbone, str) else "vit"
    vit = create_paper_vit(backbone, pretrained=False) if isinstance(backbone, str) else backbone
    vit_backbone = ViTBackbone(vit, name)
    if (vit_backbone.num_layers, vit_backbone.embed_dim) != (layout.depth, layout.width):
        raise CheckpointMismatchError(
            f"the state dict holds a ViT of depth {layout.depth} and width {layout.width}, but the backbone "
            f"{name} has depth {vit_backbone.num_layers} and width {vit_backbone.embed_dim}; pass backbone= "
            "a timm VisionTransformer of the checkpoint's architecture"
        )
    config = CodaPromptConfig(n_components=layout.n_components, prompt_length=layout.prompt_length,
                              layers=layout.layers, eval_scope=eval_scope)
    model = CodaPromptModel(vit_backbone, layout.n_classes, n_tasks, config)
    classes_per_task = layout.n_classes // n_tasks
    for task in range(tasks_started):
        model.begin_experience(range(task * classes_per_task, (task + 1) * classes_per_task))

    expected = {key: tensor.shape for key, tensor in to_reference_state_dict(model).items()}
    check_state_dict(
        state_dict, expected, "a CODA-Prompt reference (ViTZoo) checkpoint of this architecture",
        hint=f"Read from the state dict: {layout}",
    )
    ours = {}
    for key in model.state_dict():
        reference_key, index = reference_name(key)
        tensor = state_dict[reference_key]
        if reference_key.startswith("prompt."):
            tensor = tensor[index * per_task:(index + 1) * per_task]
        elif index is not None:
            tensor = tensor.chunk(3)[index]
        ours[key] = tensor
    model.load_state_dict(ours)
    return model.requires_grad_(False).eval()
