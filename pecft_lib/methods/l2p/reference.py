"""State dicts of the PyTorch port of L2P (``JH-LEE-KR/l2p-pytorch``, "PT-L2P") ↔ :class:`L2PModel`.

PT-L2P's ``engine.py`` saves ``{"model": model.state_dict(), "optimizer": …, "epoch": …, "args": …}`` after
every task (``checkpoint/task<t>_checkpoint.pth``); ``model`` is its own timm-0.6-style
``VisionTransformer`` built with ``prompt_pool=True`` (``vision_transformer.py`` at commit f7bc994):

* ``prompt.prompt`` ``[M, L_p, D]`` and ``prompt.prompt_key`` ``[M, D]`` — the pool and its keys;
* ``pos_embed`` ``[1, 1 + N·L_p + P, D]`` — the table is **enlarged** by ``N·L_p`` rows for the prompt
  tokens, sequence ``[CLS, prompts, patches]``; loading the pretrained ViT fills those rows with copies of
  the [CLS] row (``resize_pos_embed``) and the row stays frozen, which is our ``position_embedding="cls_copy"``;
* ``head.{weight,bias}`` ``[n_classes, D]`` — read by the mean of the outputs at the prompt positions
  (``head_type="prompt"``, the reference's default and the only head this loader maps);
* the frozen timm ViT keys (``cls_token``, ``patch_embed.proj``, ``blocks.i.{norm1, attn.qkv, attn.proj,
  norm2, mlp.fc1, mlp.fc2}``, ``norm``).

The query network ``original_model`` is not saved: it is the same pretrained ViT without prompts, so its
weights are the frozen backbone's, with the 1 + P rows of the position table that are not prompt rows.

Settings the weights do not show, assumed to be PT-L2P's defaults (other values give a model that loads but
computes something else): ``head_type="prompt"``, ``embedding_key="cls"`` (the query is
``original_model``'s final-norm [CLS]), ``use_prompt_mask=False``, a frozen backbone (``--freeze`` list), and
the architecture's number of attention heads and image size (given by ``backbone=``).

Batch-wise selection and ties: PT-L2P breaks tied vote counts with ``torch.topk``, whose order for equal
values is unspecified (on CPU, ten ids with one vote each came out as ``[8, 6, 7, 5, 9]``);
:class:`L2PModel` gives tied counts to the lower id (JAX ``lax.top_k``). Without ties the selected *sets*
agree; their order may differ, which does not change the logits (every prompt position has the same
position embedding and the head averages them).

Key mapping (``i`` = block, ``d`` = width, ``N·L_p`` = prompt tokens):

==============================================  ===========================================================
reference                                       :class:`L2PModel`
==============================================  ===========================================================
``prompt.prompt``                               ``prompts``
``prompt.prompt_key``                           ``keys``
``head.{weight,bias}``                          ``head.{weight,bias}``
``pos_embed`` rows ``0`` and ``1+N·L_p …``      ``backbone.vit.pos_embed`` (rows ``1 … N·L_p`` must be copies
                                                of row 0: they become ``backbone.cls_position_embedding``)
``blocks.i.attn.qkv.{weight,bias}``             rows ``[0, d)``, ``[d, 2d)``, ``[2d, 3d)`` →
                                                ``backbone.vit.blocks.i.attn.{q,k,v}``
every other ``<name>``                          ``backbone.vit.<name>``
==============================================  ===========================================================

Checked parity (a throwaway harness against PT-L2P's own modules, not part of this repository): cosine
matrix, per-sample and batch-wise ids, ``reduce_sim`` and logits agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
from timm.models.vision_transformer import VisionTransformer

from ...backbones import ViTBackbone, create_paper_vit
from ...compat.state_dict import check_state_dict, rename_fusing_qkv
from ...errors import CheckpointMismatchError, ConfigError
from .config import L2PConfig
from .model import L2PModel

REFERENCE_VIT = "vit_base_patch16_224.orig_in21k"
"""PT-L2P's backbone: ViT-B/16, 224 px, 12 heads, the original ImageNet-21k weights (``imagenet21k/ViT-B_16.npz``)."""

PROMPT, KEY, POS_EMBED = "prompt.prompt", "prompt.prompt_key", "pos_embed"
_QKV = re.compile(r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)")
_OUR_QKV = re.compile(r"backbone\.vit\.blocks\.(\d+)\.attn\.([qkv])\.(weight|bias)")
_OUR_BACKBONE = "backbone.vit."
_OWN = {"prompts": PROMPT, "keys": KEY, "head.weight": "head.weight", "head.bias": "head.bias"}


@dataclass(frozen=True)
class ReferenceLayout:
    """What a PT-L2P state dict holds, read from tensor shapes.

    Attributes:
        pool_size: M, rows of ``prompt.prompt``.
        prompt_length: L_p.
        width: D.
        depth: blocks of the ViT.
        n_classes: rows of ``head.weight``.
        positions: rows of the (enlarged) position table, ``1 + N·L_p + P``.
    """

    pool_size: int
    prompt_length: int
    width: int
    depth: int
    n_classes: int
    positions: int

    def top_k(self, num_patches: int) -> int:
        """N, from the rows the reference added to the position table for ``num_patches`` patches."""
        added = self.positions - 1 - num_patches
        if added <= 0 or added % self.prompt_length:
            raise CheckpointMismatchError(
                f"pos_embed has {self.positions} rows; with 1 [CLS] and {num_patches} patches this leaves {added} "
                f"rows for the prompts, not a positive multiple of the prompt length {self.prompt_length}. "
                "Pass backbone= a ViT of the checkpoint's image and patch size"
            )
        return added // self.prompt_length


def read_layout(state_dict: Mapping[str, torch.Tensor]) -> ReferenceLayout:
    """The :class:`ReferenceLayout` of a flat PT-L2P state dict."""
    needed = (PROMPT, KEY, POS_EMBED, "head.weight", "cls_token")
    absent = [key for key in needed if key not in state_dict]
    if absent:
        hint = (" (the reference without learnable keys, prompt_key=False, uses the mean of each prompt as its "
                "key; this loader needs prompt_key=True, the reference default)" if absent == [KEY] else "")
        raise CheckpointMismatchError(
            f"not a state dict of PyTorch-L2P's prompted VisionTransformer: it lacks {', '.join(absent)}{hint}"
        )
    prompt = state_dict[PROMPT]
    if prompt.dim() != 3:
        raise CheckpointMismatchError(f"{PROMPT} has shape {tuple(prompt.shape)}, expected [pool, length, width] "
                                      "(a prompt pool, prompt_pool=True)")
    blocks = {int(match[1]) for key in state_dict if (match := re.match(r"blocks\.(\d+)\.", key))}
    return ReferenceLayout(
        pool_size=prompt.shape[0],
        prompt_length=prompt.shape[1],
        width=prompt.shape[2],
        depth=max(blocks, default=-1) + 1,
        n_classes=state_dict["head.weight"].shape[0],
        positions=state_dict[POS_EMBED].shape[1],
    )


def reference_name(key: str) -> tuple[str, int | None]:
    """The reference's name of the :class:`L2PModel` tensor ``key`` and, for the q/k/v projections, which
    third of the fused ``qkv`` it is (``None`` otherwise)."""
    if key in _OWN:
        return _OWN[key], None
    if match := _OUR_QKV.fullmatch(key):
        block, projection, kind = match.groups()
        return f"blocks.{block}.attn.qkv.{kind}", "qkv".index(projection)
    if key.startswith(_OUR_BACKBONE):
        return key.removeprefix(_OUR_BACKBONE), None
    raise KeyError(f"{key} has no counterpart in PyTorch-L2P")


def to_reference_state_dict(model: L2PModel) -> dict[str, torch.Tensor]:
    """The model's tensors under PT-L2P's names: q/k/v fused into ``qkv`` and the position table enlarged
    with ``top_k · prompt_length`` copies of the [CLS] row after row 0, as the reference stores it.

    PT-L2P's ``VisionTransformer(prompt_pool=True, prompt_key=True, head_type="prompt", …)`` of the same
    sizes loads it with ``strict=True``. Only ``position_embedding="cls_copy"`` models have a reference form.
    """
    config = model.config
    if config.position_embedding != "cls_copy":
        raise ConfigError("PyTorch-L2P gives the prompts the [CLS] position embedding; a model with "
                          f"position_embedding={config.position_embedding!r} has no PyTorch-L2P state dict")
    state = rename_fusing_qkv(model.state_dict().items(), reference_name)
    table = state[POS_EMBED]
    prompt_rows = table[:, :1].expand(-1, config.top_k * config.prompt_length, -1)
    state[POS_EMBED] = torch.cat([table[:, :1], prompt_rows, table[:, 1:]], dim=1)
    return state


def from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    top_k: int | None = None,
    batchwise_selection: bool = False,
    pull_coefficient: float = 0.1,
    backbone: str | VisionTransformer = REFERENCE_VIT,
) -> L2PModel:
    """An :class:`L2PModel` computing PT-L2P's forward (``original_model`` query + prompted model) for a
    checkpoint written by its ``engine.py``.

    Pool size, prompt length, width, depth and number of classes are read from the shapes
    (:func:`read_layout`); N (``top_k``) from the rows the reference added to the position table. The
    model is in eval mode; its backbone is frozen, prompts, keys and head stay trainable as in a fresh
    :class:`L2PModel` (a reference run can be continued; the optimizer state is not loaded).

    Args:
        state_dict: the flat state dict of PT-L2P's prompted model (:func:`pecft_lib.compat.from_reference`
            also unwraps the checkpoint's ``{"model": …}`` and the ``module.`` prefix). PT-L2P pickles its
            ``argparse.Namespace`` next to it, so ``torch.load(path, weights_only=False)`` (trusted files
            only) or ``torch.serialization.add_safe_globals([argparse.Namespace])`` is needed to read the file.
        top_k: N, prompts selected per sample. Default: inferred; a given value must agree with the
            position table.
        batchwise_selection: the reference's majority vote over the batch. PT-L2P's CIFAR-100 default is
            ``batchwise_prompt=True``, but at test time, where a batch holds one task, that leaks task identity
            (google-research/l2p#28); off by default, turn it on to reproduce the
            reference's reported numbers. With it on, tied vote counts go to the lower prompt id.
        pull_coefficient: λ of the key pull (``--pull_constraint_coeff``, 0.1 in PT-L2P); training only.
        backbone: the ViT whose weights are replaced: a tag of
            :data:`~pecft_lib.backbones.PAPER_VIT_CHECKPOINTS` (built with random weights; default the L2P
            checkpoint, ViT-B/16 with 12 heads), or a timm ``VisionTransformer`` of the checkpoint's
            architecture (e.g. a small one for tests). Image size, patch count and the number of attention
            heads cannot be read from the weights: they must be the reference's.

    Raises:
        CheckpointMismatchError: the state dict is not a PT-L2P checkpoint of this architecture (the message
            names every missing, unexpected and mis-shaped key), or its prompt rows of ``pos_embed`` are not
            copies of the [CLS] row (a run from random weights, ``--pretrained False``: no
            ``position_embedding`` of :class:`L2PConfig` reproduces it).
    """
    layout = read_layout(state_dict)
    name = backbone if isinstance(backbone, str) else "vit"
    vit = create_paper_vit(backbone, pretrained=False) if isinstance(backbone, str) else backbone
    vit_backbone = ViTBackbone(vit, name)
    inferred = layout.top_k(vit.patch_embed.num_patches)
    if top_k is not None and top_k != inferred:
        raise CheckpointMismatchError(
            f"top_k={top_k}, but pos_embed has {layout.positions} rows = 1 + {inferred}·{layout.prompt_length} "
            f"+ {vit.patch_embed.num_patches}: the checkpoint was trained with top_k={inferred}"
        )
    config = L2PConfig(pool_size=layout.pool_size, prompt_length=layout.prompt_length, top_k=inferred,
                       pull_coefficient=pull_coefficient, batchwise_selection=batchwise_selection)
    model = L2PModel(vit_backbone, layout.n_classes, config)

    expected = {key: tensor.shape for key, tensor in to_reference_state_dict(model).items()}
    check_state_dict(
        state_dict, expected, f"a PyTorch-L2P checkpoint of the architecture of {name}",
        hint=f"Read from the state dict: {layout}, top_k={inferred}",
    )
    table = state_dict[POS_EMBED]
    prompt_count = inferred * layout.prompt_length
    prompt_rows = table[:, 1:1 + prompt_count]
    if not torch.equal(prompt_rows, table[:, :1].expand_as(prompt_rows)):
        deviation = (prompt_rows - table[:, :1]).abs().max().item()
        raise CheckpointMismatchError(
            f"rows 1…{prompt_count} of pos_embed (the prompt positions) are not copies of the [CLS] row (max abs "
            f"difference {deviation:.3g}); PT-L2P makes them copies when it loads the pretrained ViT, so this "
            "checkpoint was trained from random weights, which L2PModel cannot represent"
        )
    ours = {}
    for key in model.state_dict():
        reference_key, third = reference_name(key)
        tensor = state_dict[reference_key]
        if third is not None:
            tensor = tensor.chunk(3)[third]
        elif key == _OUR_BACKBONE + POS_EMBED:
            tensor = torch.cat([tensor[:, :1], tensor[:, 1 + prompt_count:]], dim=1)
        ours[key] = tensor
    model.load_state_dict(ours)
    return model.eval()
