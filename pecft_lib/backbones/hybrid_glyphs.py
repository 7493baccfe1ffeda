"""``pecft-hybrid-glyphs``: a frozen ImageNet CNN stem under a transformer pretrained on non-Latin glyphs.

A hybrid Vision Transformer in the sense of Dosovitskiy et al. (ICLR 2021, Sec. 3.1 "Hybrid Architecture"): the
input sequence is a CNN feature map instead of raw patches. Here the CNN is the first 14 blocks of torchvision's
ImageNet MobileNetV2 (``mobilenet_v2-b0353104.pth``, Sandler et al., CVPR 2018), and the transformer is the
``pecft-vit-tiny`` architecture (width 192, depth 6, 3 heads) pretrained on glyphs of non-Latin scripts
(recipe, probe table and limits in the model card ``pecft_lib/data/pecft-hybrid-glyphs/README.md``; made by
``tools/pretrain_hybrid_glyphs.py``). Inputs are the library's 28×28 grey images normalised as in
:mod:`pecft_lib.benchmarks.grey28`; :class:`MobileNetStemEmbed` turns them into the stem's input (bilinear 64 px,
three equal channels, ImageNet mean/std) and its 4×4×96 output into 16 tokens.

The stem is a fixed part of the input pipeline, never trained: its batch norms are folded into the convolutions
(eval-mode statistics, an exact rewrite) and its weights are buffers, so "full" fine-tuning and every method adapt
the transformer only. The token projection (96 → 192) belongs to the transformer and is trained with it.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import mobilenet_v2

from ..benchmarks.grey28 import MEAN, STD
from ..paths import package_data
from .vit_tiny import ARCHITECTURE, load_shipped_weights

NAME = "pecft-hybrid-glyphs"
WEIGHTS_DIR = package_data(NAME)
WEIGHTS_FILE = WEIGHTS_DIR / "model.safetensors"
SHA256 = "3822b65298a7c3cdb335133b98451aad3778f1e151bcabceb1b55d4650f03eeb"

STEM_BLOCKS = 14
"""MobileNetV2 ``features[:14]``: output stride 16, 96 channels (the last block before the stride-32 stage)."""
STEM_CHANNELS = 96
STEM_INPUT_SIZE = 64
"""Inputs are upsampled to 64 px, so the stem's stride 16 leaves a 4×4 grid: 16 tokens, as ``pecft-vit-tiny``."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """``module`` with every ``Conv2d`` directly followed by a ``BatchNorm2d`` (in a ``Sequential``) replaced by
    one convolution computing the same eval-mode function, and the norm by ``Identity``; in place."""
    for child in module.children():
        fold_batch_norms(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                module._modules[second] = nn.Identity()
    return module


def freeze_as_buffers(module: nn.Module) -> nn.Module:
    """``module`` with each parameter turned into a (saved) buffer of the same name: no optimiser or
    ``requires_grad_(True)`` can train it; in place."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is not None:
                del sub._parameters[name]
                sub.register_buffer(name, param.detach())
    return module


def mobilenet_stem() -> nn.Sequential:
    """MobileNetV2 ``features[:14]`` with folded batch norms and buffer weights (random until loaded)."""
    return freeze_as_buffers(fold_batch_norms(mobilenet_v2().features[:STEM_BLOCKS].eval()))


class MobileNetStemEmbed(nn.Module):
    """timm's ``embed_layer`` for :class:`VisionTransformer`: 28×28 grey image → frozen MobileNetV2 stem → 16 tokens.

    The arguments timm passes (``img_size``, ``patch_size``, ``in_chans``, ``embed_dim``, ``bias``, ...) describe
    the image the model takes; ``patch_size`` is nominal (the stem's 4×4 grid covers 7×7-pixel cells of the
    28-px input, as the plain model's patches do).
    """

    def __init__(self, img_size: int = 28, patch_size: int = 7, in_chans: int = 1, embed_dim: int = 192,
                 bias: bool = True, **_: object):
        super().__init__()
        if in_chans != 1:
            raise ValueError(f"{NAME} takes grey images (in_chans=1), got in_chans={in_chans}")
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.stem = mobilenet_stem()
        self.proj = nn.Linear(STEM_CHANNELS, embed_dim, bias=bias)
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        return self.patch_size[0] if as_scalar else self.patch_size

    def stem_input(self, images: torch.Tensor) -> torch.Tensor:
        """Grey-28 normalised ``[B, 1, 28, 28]`` → ImageNet-normalised ``[B, 3, 64, 64]`` (bilinear, channels equal)."""
        unit = images * STD + MEAN
        unit = nn.functional.interpolate(unit, size=(STEM_INPUT_SIZE, STEM_INPUT_SIZE), mode="bilinear",
                                         align_corners=False)
        return (unit.expand(-1, 3, -1, -1) - self.imagenet_mean) / self.imagenet_std

    def stem_features(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen stem's feature map ``[B, 96, 4, 4]`` (channels-last inside: three times faster on CPU)."""
        inputs = self.stem_input(images).contiguous(memory_format=torch.channels_last)
        return self.stem(inputs).contiguous()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != self.img_size:
            raise ValueError(f"{NAME} takes {self.img_size[0]}×{self.img_size[1]} images, got {tuple(images.shape)}")
        features = self.stem_features(images)
        return self.proj(features.flatten(2).transpose(1, 2))


def create_hybrid_glyphs(num_classes: int = 0) -> VisionTransformer:
    """The ``pecft-hybrid-glyphs`` architecture with random weights (stem included)."""
    return VisionTransformer(num_classes=num_classes, embed_layer=partial(MobileNetStemEmbed), **ARCHITECTURE)


def load_imagenet_stem(model: VisionTransformer, checkpoint: str | Path) -> None:
    """Put torchvision's ImageNet MobileNetV2 weights (``mobilenet_v2-b0353104.pth``) into ``model``'s stem."""
    network = mobilenet_v2()
    network.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    stem = fold_batch_norms(network.features[:STEM_BLOCKS].eval())
    model.patch_embed.stem.load_state_dict({k: v.detach() for k, v in stem.state_dict().items()})


def load_hybrid_glyphs(pretrained: bool = True, weights: str | Path | None = None) -> VisionTransformer:
    """``pecft-hybrid-glyphs`` with the weights shipped in the package (sha256-verified), another weights file
    of the same architecture (``weights``, loaded strictly but not checked), or random weights
    (``pretrained=False``: stem and transformer both random)."""
    return load_shipped_weights(
        create_hybrid_glyphs(), NAME, WEIGHTS_FILE, SHA256,
        "`python tools/pretrain_hybrid_glyphs.py --imagenet-stem mobilenet_v2-b0353104.pth` (about 20 minutes on "
        "2 CPU cores, needs Debian's fonts-noto-core and fonts-noto-cjk)", pretrained, weights)


def pretraining_report() -> dict:
    """What ``tools/pretrain_hybrid_glyphs.py`` recorded when it made the shipped weights (recipe, sources, time)."""
    return json.loads((WEIGHTS_DIR / "pretraining.json").read_text())


def probe_report() -> dict:
    """Linear-probe accuracies on every 28×28 stream, ``{stream: {"frozen", "raw_pixels", "random_init"}}``
    (``tools/probe_backbones.py``), fitted on 100 training examples per class (the medium budget)."""
    return json.loads((WEIGHTS_DIR / "probe.json").read_text())
