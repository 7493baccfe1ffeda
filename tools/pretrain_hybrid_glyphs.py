"""Pretrain ``pecft-hybrid-glyphs``: torchvision's frozen ImageNet MobileNetV2 stem under a transformer trained to
name the glyphs of non-Latin scripts — the ImageNet part sees no stream's data, the glyph part no stream's classes.

The model is :func:`pecft_lib.backbones.hybrid_glyphs.create_hybrid_glyphs`. Its stem gets the ImageNet weights of
``--imagenet-stem`` (torchvision's ``mobilenet_v2-b0353104.pth``, sha256-checked) and stays frozen; its transformer
starts from the shipped ``pecft-vit-glyphs`` weights (every block, [CLS], position embedding, norms; the token
projection 96 → 192 is new), and all of it but the stem is then trained on the glyph task of
``tools/pretrain_vit_glyphs.py`` (same classes, rendering, augmentation, loss and optimiser; fewer steps, since
only the new input has to be learnt). The state is saved every 250 steps and a re-run resumes from it.

The ImageNet checkpoint is not shipped with this repository's sources; it is torchvision's file (torchvision code
BSD-3-Clause; the weights were trained on ImageNet, whose terms restrict use to non-commercial research).

    python tools/pretrain_hybrid_glyphs.py --imagenet-stem PATH/mobilenet_v2-b0353104.pth
    python tools/probe_backbones.py pecft-hybrid-glyphs     # then the probe table of the model card
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_vit_glyphs import add_arguments, glyph_data, pretrain  # noqa: E402

from pecft_lib.backbones.hybrid_glyphs import (  # noqa: E402
    STEM_BLOCKS, STEM_INPUT_SIZE, create_hybrid_glyphs, load_imagenet_stem,
)
from pecft_lib.backbones.vit_glyphs import load_vit_glyphs  # noqa: E402
from pecft_lib.backbones.vit_tiny import ARCHITECTURE  # noqa: E402
from pecft_lib.checksums import verify_sha256  # noqa: E402

IMAGENET_STEM_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
"""torchvision's ``mobilenet_v2-b0353104.pth`` (ImageNet-1k, top-1 71.9 % as torchvision reports it)."""


class StemDistillation(nn.Module):
    """Keeps what the ImageNet stem sees linearly readable from the final [CLS]: a linear map of [CLS] regresses
    the stem's feature map averaged over positions (96 values, standardised over the batch), mean squared error
    times ``weight``. Without it, naming glyphs is all [CLS] is trained for, and it drops what glyphs do not need
    (the probe of Fashion-MNIST falls below that of the stem's own mean features)."""

    def __init__(self, model: nn.Module, weight: float):
        super().__init__()
        self.weight = weight
        self.head = nn.Linear(model.embed_dim, model.patch_embed.proj.in_features)
        self.seen: dict[str, torch.Tensor] = {}
        model.patch_embed.stem.register_forward_hook(lambda _m, _i, out: self.seen.__setitem__("stem", out))
        model.norm.register_forward_hook(lambda _m, _i, out: self.seen.__setitem__("cls", out[:, 0]))

    def loss(self) -> torch.Tensor:
        target = self.seen["stem"].mean((2, 3))
        target = (target - target.mean(0)) / (target.std(0) + 1e-6)
        return self.weight * nn.functional.mse_loss(self.head(self.seen["cls"]), target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, "pecft_lib/data/pecft-hybrid-glyphs", steps=1500, lr=5e-4)
    parser.add_argument("--distill", type=float, default=1.0, help="weight of the stem-feature regression from "
                        "[CLS] (StemDistillation; 0: glyph names only)")
    parser.add_argument("--imagenet-stem", type=Path, required=True,
                        help="torchvision's ImageNet MobileNetV2 weights, mobilenet_v2-b0353104.pth")
    args = parser.parse_args()
    if not args.imagenet_stem.is_file():
        parser.error(f"{args.imagenet_stem} does not exist: pass torchvision's mobilenet_v2-b0353104.pth "
                     "(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1 downloads it)")
    verify_sha256(args.imagenet_stem, IMAGENET_STEM_SHA256, "pass torchvision's mobilenet_v2-b0353104.pth")
    classes, images, per_script, render_seconds = glyph_data(args)

    model = create_hybrid_glyphs(num_classes=len(classes))
    load_imagenet_stem(model, args.imagenet_stem)
    transformer = {k: v for k, v in load_vit_glyphs().state_dict().items() if not k.startswith("patch_embed.")}
    missing, unexpected = model.load_state_dict(transformer, strict=False)
    new = sorted(k for k in missing if not k.startswith("patch_embed.stem."))
    if unexpected or new != ["head.bias", "head.weight", "patch_embed.proj.bias", "patch_embed.proj.weight"]:
        raise SystemExit(f"pecft-vit-glyphs does not fit the hybrid: unexpected {unexpected}, new {new}")
    report = {
        "architecture": {**ARCHITECTURE, "stem": f"MobileNetV2 features[:{STEM_BLOCKS}] (ImageNet, frozen, "
                         f"batch norms folded) on {STEM_INPUT_SIZE}-px inputs, tokens projected 96 -> 192"},
        "sources": {"stem": f"torchvision mobilenet_v2-b0353104.pth (sha256 {IMAGENET_STEM_SHA256})",
                    "transformer_init": "pecft-vit-glyphs (shipped weights)"},
        "classes_per_script": per_script,
        "render_minutes": round(render_seconds / 60, 2),
    }
    pretrain(model, classes, images, args, report,
             StemDistillation(model, args.distill) if args.distill > 0 else None)


if __name__ == "__main__":
    main()
