"""Pretrained transformer backbones behind one interface, looked up by name.

=============================================  ==========  ===========================================
name                                           modality    weights
=============================================  ==========  ===========================================
``pecft-vit-tiny``                             vision      shipped in ``pecft_lib/data/``, pretrained offline
``pecft-vit-glyphs``                           vision      shipped in ``pecft_lib/data/``, pretrained offline
``pecft-hybrid-glyphs``                        vision      shipped in ``pecft_lib/data/``, ImageNet CNN stem + glyphs
``vit_base_patch16_224.orig_in21k``            vision      hub (L2P, DualPrompt)
``vit_base_patch16_224.augreg_in21k_ft_in1k``  vision      hub (CODA-Prompt)
``vit_base_patch16_224.augreg_in21k``          vision      hub (InfLoRA)
``all-MiniLM-L6-v2``                           text        extracted from its wheel into the cache
=============================================  ==========  ===========================================
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import ConfigError, UnknownNameError
from .attention import Prefix, SplitQKVAttention, split_timm_attention
from .base import Backbone, EncoderOutput
from .checkpoints import BARE_NAME_HINT, PAPER_VIT_CHECKPOINTS, create_paper_vit
from .text import TextEncoderBackbone
from .vit import ViTBackbone
from . import hybrid_glyphs, vit_glyphs
from .hybrid_glyphs import load_hybrid_glyphs
from .vit_glyphs import load_vit_glyphs
from .vit_tiny import load_vit_tiny

VIT_TINY = "pecft-vit-tiny"
VIT_GLYPHS = "pecft-vit-glyphs"
HYBRID_GLYPHS = "pecft-hybrid-glyphs"
MINILM = "all-MiniLM-L6-v2"
BACKBONES = (VIT_TINY, VIT_GLYPHS, HYBRID_GLYPHS, *PAPER_VIT_CHECKPOINTS, MINILM)
"""Every name :func:`load_backbone` accepts (the table above), in that order."""


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
    elif name == VIT_GLYPHS:
        backbone = ViTBackbone(load_vit_glyphs(pretrained, checkpoint_path), name)
    elif name == HYBRID_GLYPHS:
        backbone = ViTBackbone(load_hybrid_glyphs(pretrained, checkpoint_path), name)
    elif name in PAPER_VIT_CHECKPOINTS:
        backbone = ViTBackbone(create_paper_vit(name, pretrained, checkpoint_path, sha256), name)
    elif name == MINILM:
        from .minilm import load_minilm_model, load_minilm_tokenizer

        tokenizer = load_minilm_tokenizer()
        backbone = TextEncoderBackbone(load_minilm_model(pretrained), tokenizer.pad_token_id, "mean", name)
    else:
        raise UnknownNameError("backbone", name, BACKBONES, hint=BARE_NAME_HINT if name.startswith("vit_") else "")
    return backbone.freeze() if freeze else backbone


def as_backbone(model: nn.Module, name: str | None = None, pooling: str = "mean") -> Backbone:
    """``model`` behind the library's backbone interface, for models the library did not load itself.

    * a :class:`Backbone` is returned as it is, and so is any module that already behaves as one (it has
      ``freeze()`` and ``embed_dim``, e.g. a feature extractor for the prototype baseline);
    * a timm :class:`~timm.models.vision_transformer.VisionTransformer` (standard pre-norm blocks, [CLS] pooling)
      becomes a :class:`ViTBackbone`;
    * a Hugging Face BERT-family encoder (``embeddings`` + ``encoder.layer``, e.g. ``BertModel``,
      ``AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")``) becomes a
      :class:`TextEncoderBackbone` with ``pooling`` (``"mean"`` or ``"cls"``) and the padding id of its config.

    Every method model calls this on the backbone it is given, so a raw timm or Hugging Face model may be passed
    directly. Anything else raises a :class:`~pecft_lib.errors.ConfigError` naming what is supported.
    """
    if isinstance(model, Backbone) or (hasattr(model, "freeze") and hasattr(model, "embed_dim")):
        return model
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        return ViTBackbone(model, name or "vit")
    config = getattr(model, "config", None)
    if config is not None and hasattr(model, "embeddings") and hasattr(getattr(model, "encoder", None), "layer"):
        if config.pad_token_id is None:
            raise ConfigError(f"{type(model).__name__}'s config has no pad_token_id; wrap it yourself with "
                              "TextEncoderBackbone(model, pad_token_id=...)")
        return TextEncoderBackbone(model, config.pad_token_id, pooling, name or getattr(config, "model_type", "text"))
    raise ConfigError(
        f"a {type(model).__name__} is not a backbone the methods can use: pass a timm VisionTransformer, a Hugging "
        "Face BERT-family encoder (embeddings + encoder.layer, e.g. BertModel or all-MiniLM-L6-v2 loaded with "
        "AutoModel), or a pecft_lib.backbones.Backbone (ViTBackbone, TextEncoderBackbone, load_backbone(name))")


__all__ = [
    "BACKBONES", "Backbone", "as_backbone", "EncoderOutput", "PAPER_VIT_CHECKPOINTS", "Prefix", "SplitQKVAttention",
    "TextEncoderBackbone", "ViTBackbone", "create_paper_vit", "load_backbone", "split_timm_attention",
]
