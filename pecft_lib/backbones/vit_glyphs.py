"""``pecft-vit-glyphs``: the ``pecft-vit-tiny`` architecture pretrained on 1,919 glyphs of non-Latin scripts.

The vision backbone whose pretraining data is disjoint from every continual stream of the library: no Latin
letter, no digit, no symbol, no clothing (recipe, probe table and limits in the model card
``pecft_lib/data/pecft-vit-glyphs/README.md``; made by ``tools/pretrain_vit_glyphs.py``). Inputs are 28×28 grey
images normalised as in :mod:`pecft_lib.benchmarks.grey28`.
"""

from __future__ import annotations

import json
from pathlib import Path

from timm.models.vision_transformer import VisionTransformer

from ..paths import package_data
from .vit_tiny import create_vit_tiny, load_shipped_weights

NAME = "pecft-vit-glyphs"
WEIGHTS_DIR = package_data(NAME)
WEIGHTS_FILE = WEIGHTS_DIR / "model.safetensors"
SHA256 = "95686204aa734e8a0dc130672452efb409233b9e8b89ee1bafdbd9a448ac9fe9"


def load_vit_glyphs(pretrained: bool = True, weights: str | Path | None = None) -> VisionTransformer:
    """``pecft-vit-glyphs`` with the weights shipped in the package (sha256-verified), another weights file of
    the same architecture (``weights``, loaded strictly but not checked), or random weights (``pretrained=False``)."""
    return load_shipped_weights(
        create_vit_tiny(), NAME, WEIGHTS_FILE, SHA256, "`python tools/pretrain_vit_glyphs.py` (about 45 minutes on 2 CPU "
        "cores, needs Debian's fonts-noto-core and fonts-noto-cjk)", pretrained, weights)


def pretraining_report() -> dict:
    """What ``tools/pretrain_vit_glyphs.py`` recorded when it made the shipped weights (recipe, classes, time)."""
    return json.loads((WEIGHTS_DIR / "pretraining.json").read_text())


def probe_report(full: bool = False) -> dict:
    """Linear-probe accuracies on every 28×28 stream, ``{stream: {"frozen", "raw_pixels", "random_init"}}``
    (``tools/probe_backbones.py``): fitted on 100 training examples per class (the medium budget), or on the whole
    training split (``full=True``)."""
    return json.loads((WEIGHTS_DIR / ("probe_full.json" if full else "probe.json")).read_text())
