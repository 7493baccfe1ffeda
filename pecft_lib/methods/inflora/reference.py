"""State dicts of the official InfLoRA code (``liangyanshuo/InfLoRA``) ↔ :class:`InfLoRAModel`.

The reference model ``SiNet`` (``models/sinet_inflora.py``, commit e08b00e) holds ``image_encoder``, a
timm-0.6.7 ``VisionTransformer`` whose attentions keep the fused ``qkv`` and own ``lora_A_k[t]``,
``lora_B_k[t]``, ``lora_A_v[t]``, ``lora_B_v[t]`` for **every** one of the ``total_sessions`` tasks from the
start (``lora_B = 0`` until the task is trained), and ``classifier_pool[t]``, one ``Linear(d, init_cls)``
per task, also pre-allocated. Its class-incremental prediction ``SiNet.interface`` takes the [CLS] token
after the final norm, with the branches of tasks ``0 … numtask−1`` summed into the keys and values, and
concatenates the logits of heads ``0 … numtask−1``: what an :class:`InfLoRAModel` with ``numtask`` tasks
computes.

Key mapping (``i`` = block, ``t`` = task, ``d`` = width, ``r`` = rank):

==================================================  ======================================================
reference                                           :class:`InfLoRAModel`
==================================================  ======================================================
``image_encoder.<name>``                            ``backbone.vit.<name>``: ``cls_token``, ``pos_embed``,
                                                    ``patch_embed.proj``, ``norm`` and, per block,
                                                    ``norm1``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``,
                                                    ``attn.proj``
``image_encoder.blocks.i.attn.qkv.{weight,bias}``   rows ``[0, d)``, ``[d, 2d)``, ``[2d, 3d)`` →
                                                    ``backbone.vit.blocks.i.attn.{q,k,v}`` (``k.base``,
                                                    ``v.base`` in branched blocks)
``image_encoder.blocks.i.attn.lora_A_k.t.weight``   ``backbone.vit.blocks.i.attn.k.down.t`` (``r × d``)
``image_encoder.blocks.i.attn.lora_B_k.t.weight``   ``backbone.vit.blocks.i.attn.k.up.t`` (``d × r``)
``image_encoder.blocks.i.attn.lora_{A,B}_v.t.…``    ``backbone.vit.blocks.i.attn.v.{down,up}.t``
``classifier_pool.t.{weight,bias}``                 ``heads.heads.t.{weight,bias}``
==================================================  ======================================================

Not loaded: the keys of :data:`IGNORED_PREFIXES` and the branches and heads of tasks ``t ≥ n_tasks``.
Neither is the subspace memory (DualGPM/GPM): the reference keeps it outside the network, so a loaded
model predicts exactly as the reference does but cannot continue InfLoRA's training faithfully.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from timm.models.vision_transformer import VisionTransformer

from ...backbones import ViTBackbone, create_paper_vit
from ...compat.state_dict import check_state_dict, rename_fusing_qkv
from ...errors import CheckpointMismatchError, ConfigError
from .config import InfLoRAConfig
from .model import InfLoRAModel

REFERENCE_VIT = "vit_base_patch16_224.augreg_in21k"
"""The reference's backbone (timm 0.6.7's ``vit_base_patch16_224_in21k``, ``models/sinet_inflora.py``)."""

IGNORED_PREFIXES: dict[str, str] = {
    "image_encoder.head.": "the pretrained ViT's ImageNet-21k classifier, never applied",
    "image_encoder.pre_logits.": "the representation layer of some timm ViTs, never applied",
    "image_encoder.cls_token_grow": "a parameter of the unused `forward_features_grow`",
    "image_encoder.pos_embed_grow": "a parameter of the unused `forward_features_grow`",
    "classifier_pool_backup.": "copies of the heads, read only by the task-aware `interface1`",
}
"""Reference keys that do not take part in ``SiNet.interface``, with the reason."""

_BLOCK = re.compile(r"image_encoder\.blocks\.(?P<block>\d+)\.")
_BRANCH = re.compile(
    r"image_encoder\.blocks\.(?P<block>\d+)\.attn\.lora_(?P<matrix>[AB])_(?P<projection>[kv])\.(?P<task>\d+)\.weight"
)
_HEAD = re.compile(r"classifier_pool\.(?P<task>\d+)\.(weight|bias)")
_OUR_QKV = re.compile(r"backbone\.vit\.blocks\.(\d+)\.attn\.([qkv])(?:\.base)?\.(weight|bias)")
_OUR_BRANCH = re.compile(r"backbone\.vit\.blocks\.(\d+)\.attn\.([kv])\.(down|up)\.(\d+)")
_OUR_HEAD = re.compile(r"heads\.heads\.(\d+)\.(weight|bias)")
_OUR_BACKBONE = "backbone.vit."


@dataclass(frozen=True)
class ReferenceLayout:
    """What a reference state dict holds, read from its keys and tensor shapes.

    Attributes:
        depth: blocks of the ViT.
        width: model width ``d``.
        rank: rows of ``lora_A`` (our ``down``).
        layers: blocks whose keys and values have branches (every block for InfLoRA, ``0 … 4`` for InfLoRA-b5).
        classes_per_task: rows of ``classifier_pool.0`` (the reference gives every head ``init_cls`` rows).
        n_tasks: tasks learned, 1 + the last task whose ``lora_B`` is non-zero in some block (the reference
            pre-allocates every task with ``lora_B = 0``); 0 when every ``lora_B`` is zero.
    """

    depth: int
    width: int
    rank: int
    layers: list[int]
    classes_per_task: int
    n_tasks: int


def read_layout(state_dict: Mapping[str, torch.Tensor]) -> ReferenceLayout:
    """The :class:`ReferenceLayout` of a flat reference state dict."""
    branches = [(match, tensor) for key, tensor in state_dict.items() if (match := _BRANCH.fullmatch(key))]
    downs = sorted((int(match["block"]), int(match["task"]), tensor.shape[0])
                   for match, tensor in branches if match["matrix"] == "A")
    if not downs or "image_encoder.cls_token" not in state_dict or "classifier_pool.0.weight" not in state_dict:
        raise CheckpointMismatchError(
            "not a state dict of the InfLoRA reference's SiNet: it needs image_encoder.cls_token, "
            "classifier_pool.0.weight and image_encoder.blocks.<i>.attn.lora_A_k.<t>.weight keys"
        )
    blocks = {int(match["block"]) for key in state_dict if (match := _BLOCK.match(key))}
    trained = [int(match["task"]) for match, tensor in branches if match["matrix"] == "B" and bool(tensor.any())]
    return ReferenceLayout(
        depth=max(blocks) + 1,
        width=state_dict["image_encoder.cls_token"].shape[-1],
        rank=downs[0][2],
        layers=sorted({block for block, _, _ in downs}),
        classes_per_task=state_dict["classifier_pool.0.weight"].shape[0],
        n_tasks=max(trained, default=-1) + 1,
    )


def reference_name(key: str) -> tuple[str, int | None]:
    """The reference's name of the :class:`InfLoRAModel` tensor ``key`` and, for the q/k/v projections,
    which third of the fused ``qkv`` it is (``None`` otherwise)."""
    if match := _OUR_QKV.fullmatch(key):
        block, projection, kind = match.groups()
        return f"image_encoder.blocks.{block}.attn.qkv.{kind}", "qkv".index(projection)
    if match := _OUR_BRANCH.fullmatch(key):
        block, projection, factor, task = match.groups()
        matrix = "A" if factor == "down" else "B"
        return f"image_encoder.blocks.{block}.attn.lora_{matrix}_{projection}.{task}.weight", None
    if match := _OUR_HEAD.fullmatch(key):
        return f"classifier_pool.{match[1]}.{match[2]}", None
    if key.startswith(_OUR_BACKBONE):
        return "image_encoder." + key.removeprefix(_OUR_BACKBONE), None
    raise KeyError(f"{key} has no counterpart in the InfLoRA reference")


def to_reference_state_dict(model: InfLoRAModel) -> dict[str, torch.Tensor]:
    """The model's tensors under the reference's names, q/k/v fused back into ``qkv`` (the other tensors share
    the model's storage, as with ``state_dict()``).

    It holds the model's ``n_tasks`` tasks only, so the reference's ``SiNet`` (which pre-allocates
    ``total_sessions`` tasks and has the keys of :data:`IGNORED_PREFIXES`) loads it with ``strict=False``.
    """
    # the heads' class lists are extra state, not tensors
    tensors = ((key, tensor) for key, tensor in model.state_dict().items() if isinstance(tensor, torch.Tensor))
    return rename_fusing_qkv(tensors, reference_name)


def from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    n_tasks: int | None = None,
    classes_per_task: int | None = None,
    layers: Sequence[int] | None = None,
    backbone: str | VisionTransformer = REFERENCE_VIT,
) -> InfLoRAModel:
    """An :class:`InfLoRAModel` computing the reference's ``SiNet.interface`` with ``numtask = n_tasks``.

    The model is in eval mode with every parameter frozen. It has ``n_tasks · classes_per_task`` classes;
    head ``t`` scores classes ``t·c … (t+1)·c − 1`` (``c`` = ``classes_per_task``), the reference's
    column order, so ``model(x)`` equals ``interface(x)`` column for column. The options left at ``None``
    are read from the state dict (:func:`read_layout`); a given value replaces the inferred one and the
    state dict is then checked against it.

    Args:
        state_dict: a flat ``SiNet`` state dict (:func:`pecft_lib.compat.from_reference` also unwraps
            ``{"model_state_dict": …}`` and the ``module.`` prefix).
        n_tasks: tasks to load. Default: the tasks learned (:attr:`ReferenceLayout.n_tasks`). A smaller
            value gives the model as it was after task ``n_tasks``, since training a task leaves the
            earlier branches and heads untouched.
        classes_per_task: rows of every head.
        layers: blocks with branches.
        backbone: the ViT whose weights are replaced: a tag of
            :data:`~pecft_lib.backbones.PAPER_VIT_CHECKPOINTS` (built with random weights), or a timm
            ``VisionTransformer`` of the checkpoint's architecture (e.g. a small one for tests). The
            number of attention heads cannot be read from the weights: it must be the reference's.

    Raises:
        CheckpointMismatchError: the state dict is not a reference checkpoint of this architecture and
            these options; the message names every missing, unexpected and mis-shaped key.
    """
    layout = read_layout(state_dict)
    if n_tasks is None:
        if layout.n_tasks == 0:
            raise CheckpointMismatchError(
                "every lora_B of the state dict is zero: it was saved before any task was trained. "
                "Pass n_tasks= to load its first tasks anyway"
            )
        n_tasks = layout.n_tasks
    elif n_tasks < 1:
        raise ConfigError(f"n_tasks must be at least 1, got {n_tasks}")
    classes_per_task = layout.classes_per_task if classes_per_task is None else classes_per_task
    layers = layout.layers if layers is None else sorted(layers)

    name = backbone if isinstance(backbone, str) else "vit"
    vit = create_paper_vit(backbone, pretrained=False) if isinstance(backbone, str) else backbone
    vit_backbone = ViTBackbone(vit, name)
    if (vit_backbone.num_layers, vit_backbone.embed_dim) != (layout.depth, layout.width):
        raise CheckpointMismatchError(
            f"the state dict holds a ViT of depth {layout.depth} and width {layout.width}, but the backbone "
            f"{name} has depth {vit_backbone.num_layers} and width {vit_backbone.embed_dim}; pass backbone= "
            "a timm VisionTransformer of the checkpoint's architecture"
        )
    config = InfLoRAConfig(rank=layout.rank, layers=None if layers == list(range(layout.depth)) else layers)
    model = InfLoRAModel(vit_backbone, n_tasks * classes_per_task, config)
    for task in range(n_tasks):
        model.begin_experience(range(task * classes_per_task, (task + 1) * classes_per_task))

    loaded = {key: tensor for key, tensor in state_dict.items() if not _is_ignored(key, n_tasks)}
    expected = {key: tensor.shape for key, tensor in to_reference_state_dict(model).items()}
    check_state_dict(
        loaded, expected, "an InfLoRA reference (SiNet) checkpoint of this architecture",
        hint=f"Read from the state dict: {layout}; loading n_tasks={n_tasks}, "
             f"classes_per_task={classes_per_task}, layers={layers}",
    )
    ours = {}
    for key, tensor in model.state_dict().items():
        if isinstance(tensor, torch.Tensor):
            reference_key, third = reference_name(key)
            tensor = loaded[reference_key] if third is None else loaded[reference_key].chunk(3)[third]
        ours[key] = tensor
    model.load_state_dict(ours)
    return model.requires_grad_(False).eval()


def _is_ignored(key: str, n_tasks: int) -> bool:
    """Whether ``key`` is in :data:`IGNORED_PREFIXES` or belongs to a task that is not loaded."""
    if key.startswith(tuple(IGNORED_PREFIXES)):
        return True
    match = _BRANCH.fullmatch(key) or _HEAD.fullmatch(key)
    return match is not None and int(match["task"]) >= n_tasks
