"""The exact ViT-B/16 checkpoints the papers used, pinned by timm tag, and loading of local weight files.

timm ≥ 0.9 resolves the bare name ``vit_base_patch16_224`` to its current default weights
(``augreg2_in21k_ft_in1k``), which none of the papers used; it is therefore refused here. Which
reference loads which weights:

* L2P and DualPrompt (JAX: google-research/l2p, commit dd8836e; PyTorch ports: JH-LEE-KR/l2p-pytorch,
  commit f7bc994, and JH-LEE-KR/dualprompt-pytorch, commit 7eb457d): the original Google ImageNet-21k
  ViT-B/16 → ``vit_base_patch16_224.orig_in21k``;
* CODA-Prompt (GT-RIPL/CODA-Prompt, commit 6417d4f, with timm 0.4.12–0.6.x): AugReg ImageNet-21k fine-tuned
  on ImageNet-1k → ``vit_base_patch16_224.augreg_in21k_ft_in1k``;
* InfLoRA (liangyanshuo/InfLoRA, commit e08b00e, with timm 0.6.7): AugReg ImageNet-21k →
  ``vit_base_patch16_224.augreg_in21k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer

from ..checksums import verify_sha256
from ..errors import CheckpointMismatchError, CheckpointNotFoundError, UnknownNameError


@dataclass(frozen=True)
class PaperCheckpoint:
    tag: str
    used_by: tuple[str, ...]
    pretraining: str


PAPER_VIT_CHECKPOINTS: dict[str, PaperCheckpoint] = {
    checkpoint.tag: checkpoint
    for checkpoint in (
        PaperCheckpoint("vit_base_patch16_224.orig_in21k", ("L2P", "DualPrompt"),
                        "ImageNet-21k, original ViT release (Dosovitskiy et al. 2021)"),
        PaperCheckpoint("vit_base_patch16_224.augreg_in21k_ft_in1k", ("CODA-Prompt",),
                        "AugReg ImageNet-21k, fine-tuned on ImageNet-1k (Steiner et al. 2022)"),
        PaperCheckpoint("vit_base_patch16_224.augreg_in21k", ("InfLoRA",),
                        "AugReg ImageNet-21k (Steiner et al. 2022)"),
    )
}
"""The ViT-B/16 checkpoints the papers start from, by timm tag: which methods use each and what it was pretrained
on. ``load_backbone`` takes these tags; the bare ``vit_base_patch16_224`` is refused (see ``BARE_NAME_HINT``)."""

BARE_NAME_HINT = (
    "Give the pretrained tag explicitly: timm maps the bare name 'vit_base_patch16_224' to weights "
    "(augreg2_in21k_ft_in1k) that none of the papers used."
)


def load_state_dict_file(model: torch.nn.Module, path: Path, source: str) -> None:
    """Load a ``.safetensors`` / ``.pth`` / ``.bin`` state dict into ``model`` strictly, ignoring a
    classification head; any missing, unexpected or mis-shaped tensor is a :class:`CheckpointMismatchError`."""
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state))
    state = {key: value for key, value in state.items() if not key.startswith("head.")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or misshaped:
        details = "; ".join(
            f"{label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''} ({len(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped))
            if keys
        )
        raise CheckpointMismatchError(f"{path} does not hold weights of {source}: {details}")
    model.load_state_dict(state)


def create_paper_vit(
    tag: str,
    pretrained: bool = True,
    checkpoint_path: str | Path | None = None,
    sha256: str | None = None,
) -> VisionTransformer:
    """One of :data:`PAPER_VIT_CHECKPOINTS` as a timm model without classification head.

    Args:
        tag: the full timm tag, e.g. ``"vit_base_patch16_224.orig_in21k"``.
        pretrained: ``False`` builds the exact architecture with random weights (dry runs, tests).
        checkpoint_path: load the weights from this local file instead of the hub — a state dict
            (``.safetensors``/``.pth``/``.bin``, timm key names) or the original JAX ``.npz``.
        sha256: optional expected sha256 of ``checkpoint_path``.
    """
    if tag not in PAPER_VIT_CHECKPOINTS:
        raise UnknownNameError("ViT checkpoint", tag, PAPER_VIT_CHECKPOINTS,
                               hint=BARE_NAME_HINT if "." not in tag else "")
    if checkpoint_path is None and pretrained:
        try:
            return timm.create_model(tag, pretrained=True, num_classes=0)
        except Exception as err:  # offline hub, missing cache entry, HTTP error: all end here
            raise CheckpointNotFoundError(
                f"could not download the weights of {tag} ({type(err).__name__}: {err}). Fix: run with internet "
                f"access (the weights are on the Hugging Face hub as timm/{tag}), or download them once and pass "
                "checkpoint_path= (a timm .safetensors/.pth state dict or the original .npz)."
            ) from err
    model = timm.create_model(tag, pretrained=False, num_classes=0)
    if checkpoint_path is not None:
        path = Path(checkpoint_path)
        if not path.is_file():
            raise CheckpointNotFoundError(f"checkpoint_path {path} does not exist (weights for {tag})")
        if sha256 is not None:
            verify_sha256(path, sha256, f"download the weights of {tag} again")
        if path.suffix == ".npz":
            model.load_pretrained(str(path))
        else:
            load_state_dict_file(model, path, tag)
    return model
