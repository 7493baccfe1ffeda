"""Pretrained transformer backbones behind one interface, looked up by name.

=============================================  ==========  ===========================================
name                                           modality    weights
=============================================  ==========  ===========================================
``pecft-vit-tiny``                             vision      committed in ``data/``, pretrained offline
``vit_base_patch16_224.orig_in21k``            vision      hub (L2P, DualPrompt)
``vit_base_patch16_224.augreg_in21k_ft_in1k``  vision      hub (CODA-Prompt)
``vit_base_patch16_224.augreg_in21k``          vision      hub (InfLoRA)
``all-MiniLM-L6-v2``                           text        extracted from its wheel into ``data/cache``
=============================================  ==========  ===========================================
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UnknownNameError
from .attention import Prefix, SplitQKVAttention, split_timm_attention
from .base import Backbone, EncoderOutput
from .checkpoints import BARE_NAME_HINT, PAPER_VIT_CHECKPOINTS, create_paper_vit
from .text import TextEncoderBackbone
from .vit import ViTBackbone
from .vit_tiny import load_vit_tiny

VIT_TINY = "pecft-vit-tiny"
MINILM = "all-MiniLM-L6-v2"
BACKBONES = (VIT_TINY, *PAPER_VIT_CHECKPOINTS, MINILM)


def load_backbone(
    name: str,
    pretrained: bool = True,
    checkpoint_path: str | Path | None = None,
    sha256: str | None = None,
    freeze: bool = True,
) -> Backbone:
    """The backbone called ``name`` (see :data:`BACKBONES`), frozen unless ``freeze=False``.

    ``pretrained=False`` gives the exact architecture with random weights; ``checkpoint_path`` (and its
    optional ``sha256``) loads a local weights file instead of the default source.
    """
    if name == VIT_TINY:
        backbone: Backbone = ViTBackbone(load_vit_tiny(pretrained, checkpoint_path), name)
    elif name in PAPER_VIT_CHECKPOINTS:
        backbone = ViTBackbone(create_paper_vit(name, pretrained, checkpoint_path, sha256), name)
    elif name == MINILM:
        from .minilm import load_minilm_model, load_minilm_tokenizer

        tokenizer = load_minilm_tokenizer()
        backbone = TextEncoderBackbone(load_minilm_model(pretrained), tokenizer.pad_token_id, "mean", name)
    else:
        raise UnknownNameError("backbone", name, BACKBONES, hint=BARE_NAME_HINT if name.startswith("vit_") else "")
    return backbone.freeze() if freeze else backbone


__all__ = [
    "BACKBONES", "Backbone", "EncoderOutput", "PAPER_VIT_CHECKPOINTS", "Prefix", "SplitQKVAttention",
    "TextEncoderBackbone", "ViTBackbone", "create_paper_vit", "load_backbone", "split_timm_attention",
]
