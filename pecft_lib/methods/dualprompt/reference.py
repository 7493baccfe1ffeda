"""State dicts of PyTorch DualPrompt (``JH-LEE-KR/dualprompt-pytorch``) ↔ :class:`DualPromptModel`.

The reference's ``main.py`` saves ``{"model": model.state_dict(), …}`` of its own timm-0.6.7-style
``VisionTransformer`` (``vision_transformer.py``), which holds the backbone under timm's names, the head and,
with the default prefix-tuning (``use_prefix_tune_for_{g,e}_prompt=True``, ``prompt.py``), the prompts per
head (``H`` heads of ``d = D / H`` dimensions):

==========================  =====================================  ==========================================
reference                   shape                                  :class:`DualPromptModel`
==========================  =====================================  ==========================================
``g_prompt``                ``(n_g, 2, L_g, H, d)``                ``g_prompt`` ``(n_g, 2, L_g, D)``
``e_prompt.prompt``         ``(n_e, 2, M, L_e, H, d)``             ``e_prompts`` ``(M, n_e, 2, L_e, D)``
``e_prompt.prompt_key``     ``(M, D)``                             ``keys``
``head.{weight,bias}``      ``(C, D)``, ``(C,)``                   ``head.{weight,bias}``
``blocks.i.attn.qkv.*``     ``(3D, D)``, ``(3D,)``                 ``backbone.vit.blocks.i.attn.{q,k,v}.*``
other ``<name>``            timm's                                 ``backbone.vit.<name>``
==========================  =====================================  ==========================================

Slot 0 of the second axis is the key prefix, slot 1 the value prefix; ``(H, d)`` flattens to ``D`` head by
head, as the attention splits its keys. The reference applies the G-prompt (``n_g`` blocks, default
``g_prompt_layer_idx=[0, 1]``) and the E-prompts (``n_e`` blocks, default ``[2, 3, 4]``); the block indices
are not in the state dict. Its test-time prediction (``train=False``, per-sample selection) is what the
loaded model computes with ``prefix_layout="pytorch_reshape"`` for any batch, and with the default ``"jax"``
layout for single images: the reference's reshape mixes the prefixes of the samples of a batch
(JH-LEE-KR/dualprompt-pytorch#8, see :class:`~.config.DualPromptConfig`). The loaded model is for
prediction: every parameter is frozen, and the task being trained (:attr:`DualPromptModel.task`) is not in
the state dict.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import torch
from timm.models.vision_transformer import VisionTransformer

from ...backbones import ViTBackbone, create_paper_vit
from ...compat.state_dict import check_state_dict, rename_fusing_qkv
from ...errors import CheckpointMismatchError, ConfigError
from .config import DualPromptConfig
from .model import DualPromptModel

G_PROMPT, E_PROMPT, E_KEYS = "g_prompt", "e_prompt.prompt", "e_prompt.prompt_key"
_OUR_QKV = re.compile(r"backbone\.vit\.blocks\.(\d+)\.attn\.([qkv])\.(weight|bias)")
_OUR_BACKBONE = "backbone.vit."
_BLOCK = re.compile(r"blocks\.(\d+)\.")
_OUR_PROMPTS = {"g_prompt": G_PROMPT, "e_prompts": E_PROMPT, "keys": E_KEYS}


def reference_name(key: str) -> tuple[str, int | None]:
    """The reference's name of the :class:`DualPromptModel` tensor ``key`` and, for the q/k/v projections,
    which third of the fused ``qkv`` it is (``None`` otherwise)."""
    if key in _OUR_PROMPTS:
        return _OUR_PROMPTS[key], None
    if match := _OUR_QKV.fullmatch(key):
        block, projection, kind = match.groups()
        return f"blocks.{block}.attn.qkv.{kind}", "qkv".index(projection)
    if key.startswith(_OUR_BACKBONE):
        return key.removeprefix(_OUR_BACKBONE), None
    if key.startswith("head."):
        return key, None
    raise KeyError(f"{key} has no counterpart in PyTorch DualPrompt")


def to_reference_state_dict(model: DualPromptModel) -> dict[str, torch.Tensor]:
    """The model's tensors under the reference's names and shapes, q/k/v fused back into ``qkv``.

    Without G-layers there is no ``g_prompt`` (the reference then has ``g_prompt = None``).
    """
    heads = model.backbone.num_heads
    tensors = []
    for key, tensor in model.state_dict().items():
        if key == "g_prompt":
            if not model.config.g_layers:
                continue
            tensor = tensor.unflatten(-1, (heads, -1))
        elif key == "e_prompts":
            tensor = tensor.permute(1, 2, 0, 3, 4).unflatten(-1, (heads, -1))
        tensors.append((key, tensor))
    return rename_fusing_qkv(tensors, reference_name)


def from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    g_layers: Sequence[int] | None = None,
    e_layers: Sequence[int] | None = None,
    backbone: str | VisionTransformer | None = None,
    **options: Any,
) -> DualPromptModel:
    """A :class:`DualPromptModel` in eval mode, every parameter frozen, computing the reference's prediction.

    Read from the state dict: the pool size, the E- and G-prompt lengths, the number of E- and G-layers,
    the number of classes and, unless ``backbone`` is given, the ViT's architecture (depth, width, heads,
    patch size, input channels, image size, MLP width, qkv bias).

    Args:
        state_dict: a flat state dict of the reference's ``VisionTransformer``
            (:func:`pecft_lib.compat.from_reference` also unwraps ``{"model": …}`` and ``module.``).
        g_layers, e_layers: blocks of the G- and E-prompts; default: the first ``n_g`` blocks and the ``n_e``
            after them, i.e. the reference's ``[0, 1]`` and ``[2, 3, 4]``.
        backbone: ``None`` (a timm ``VisionTransformer`` built from the shapes), a tag of
            :data:`~pecft_lib.backbones.PAPER_VIT_CHECKPOINTS` or a timm ``VisionTransformer`` of the
            checkpoint's architecture; its weights are replaced.
        **options: further :class:`DualPromptConfig` fields (e.g. ``prefix_layout``,
            ``batchwise_selection``); given sizes must agree with the state dict.

    Raises:
        CheckpointMismatchError: not a prefix-tuning PyTorch DualPrompt checkpoint of this architecture; the
            message names every missing, unexpected and mis-shaped key.
        ConfigError: ``eval_scope="seen"`` (the checkpoint does not record which classes were trained), or
            ``g_layers`` and ``e_layers`` that share a block.
    """
    if options.get("eval_scope", "all") != "all":
        raise ConfigError("a PyTorch DualPrompt checkpoint does not record the classes trained so far; "
                          "load it with eval_scope='all' (the reference's protocol)")
    for name in (E_PROMPT, E_KEYS, "head.weight", "cls_token", "patch_embed.proj.weight", "pos_embed"):
        if name not in state_dict:
            raise CheckpointMismatchError(f"not a PyTorch DualPrompt state dict: {name} is missing")
    e_shape = state_dict[E_PROMPT].shape
    if len(e_shape) != 6:
        raise CheckpointMismatchError(
            f"{E_PROMPT} has shape {tuple(e_shape)}; only prefix-tuning checkpoints "
            "(use_prefix_tune_for_e_prompt=True, shape (layers, 2, pool, length, heads, head_dim)) are supported")
    n_e, _, pool_size, e_length, heads, _ = e_shape
    g_shape = state_dict[G_PROMPT].shape if G_PROMPT in state_dict else None  # None: use_g_prompt=False
    n_g = 0 if g_shape is None else g_shape[0]
    overlap = sorted(set(g_layers or ()) & set(e_layers or ()))
    if overlap:
        raise ConfigError(
            f"g_layers and e_layers share blocks {overlap}: PyTorch DualPrompt applies only the G-prompt where both "
            "are set, while DualPromptModel concatenates [G, E] (the JAX code), so the loaded model would compute a "
            "different function from the checkpoint's; give disjoint layers (the reference's are [0, 1] and [2, 3, 4])")
    config = DualPromptConfig(**{
        "pool_size": pool_size, "e_length": e_length,
        **({} if g_shape is None else {"g_length": g_shape[2]}),
        "g_layers": list(range(n_g)) if g_layers is None else list(g_layers),
        "e_layers": list(range(n_g, n_g + n_e)) if e_layers is None else list(e_layers),
        **options,
    })
    if backbone is None:
        vit = _vit_from_state_dict(state_dict, heads)
    else:
        vit = create_paper_vit(backbone, pretrained=False) if isinstance(backbone, str) else backbone
    model = DualPromptModel(ViTBackbone(vit, backbone if isinstance(backbone, str) else "vit"),
                            state_dict["head.weight"].shape[0], config)
    expected = {key: tensor.shape for key, tensor in to_reference_state_dict(model).items()}
    check_state_dict(
        state_dict, expected, "a PyTorch DualPrompt checkpoint of this architecture",
        hint=f"Read from the state dict: pool_size={pool_size}, e_length={e_length}, {n_e} E-layers, "
             f"{n_g} G-layers, {heads} heads; loading {config}",
    )
    ours = {}
    for key, tensor in model.state_dict().items():
        if key == "g_prompt" and not config.g_layers:
            ours[key] = tensor
            continue
        name, third = reference_name(key)
        value = state_dict[name] if third is None else state_dict[name].chunk(3)[third]
        if key == "g_prompt":
            value = value.flatten(-2)
        elif key == "e_prompts":
            value = value.flatten(-2).permute(2, 0, 1, 3, 4)
        ours[key] = value
    model.load_state_dict(ours)
    return model.requires_grad_(False).eval()


def _vit_from_state_dict(state_dict: Mapping[str, torch.Tensor], num_heads: int) -> VisionTransformer:
    """A timm ViT (random weights, no head) of the architecture the state dict's shapes describe."""
    width, channels, patch, _ = state_dict["patch_embed.proj.weight"].shape
    patches = state_dict["pos_embed"].shape[1] - 1  # [CLS] has a position embedding in the reference
    side = math.isqrt(patches)
    if side * side != patches:
        raise CheckpointMismatchError(f"pos_embed holds {patches} patch positions, not a square grid; pass backbone=")
    depth = 1 + max(int(match[1]) for key in state_dict if (match := _BLOCK.match(key)))
    hidden = state_dict["blocks.0.mlp.fc1.weight"].shape[0]
    return VisionTransformer(
        img_size=side * patch, patch_size=patch, in_chans=channels, embed_dim=width, depth=depth,
        num_heads=num_heads, mlp_ratio=hidden / width, qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        num_classes=0,
    )
