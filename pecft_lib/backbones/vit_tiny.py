"""``pecft-vit-tiny``: the small offline Vision Transformer of the quick profile.

Architecture: timm's :class:`~timm.models.vision_transformer.VisionTransformer` on 28×28 single-channel
inputs (Fashion-MNIST's own size, normalised as in :mod:`pecft_lib.benchmarks.split_fashion_mnist`),
patch 7 → 4×4 = 16 patch tokens + [CLS], width 192, depth 6, 3 heads, pre-norm blocks, final LayerNorm,
token pooling. Weights are pretrained by ``tools/pretrain_vit_tiny.py`` (recipe in the model card ``pecft_lib/data/pecft-vit-tiny/README.md``)
and ship with the package, sha256-checked on load.
"""

from __future__ import annotations

import json
from pathlib import Path

from timm.models.vision_transformer import VisionTransformer

from ..errors import CheckpointNotFoundError
from ..paths import package_data
from ..checksums import verify_sha256
from .checkpoints import load_state_dict_file

ARCHITECTURE = dict(
    img_size=28, patch_size=7, in_chans=1, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0,
    class_token=True, global_pool="token",
)
WEIGHTS_DIR = package_data("pecft-vit-tiny")
WEIGHTS_FILE = WEIGHTS_DIR / "model.safetensors"
REPORT_FILE = WEIGHTS_DIR / "pretraining.json"
PROBE_FILE = WEIGHTS_DIR / "probe.json"
SHA256 = "68b017e60acb0f52a4e20cac4b3e755edcb9bcdf378aa6437f3698290e8206ab"


def create_vit_tiny(num_classes: int = 0, **overrides) -> VisionTransformer:
    """The ``pecft-vit-tiny`` architecture with fresh (random) weights (``overrides`` change the architecture)."""
    return VisionTransformer(num_classes=num_classes, **{**ARCHITECTURE, **overrides})


def load_shipped_weights(
    model: VisionTransformer, name: str, weights_file: Path, sha256: str, remake: str, pretrained: bool = True,
    weights: str | Path | None = None,
) -> VisionTransformer:
    """``model`` with the weights ``name`` shipped in the package at ``weights_file`` (checked against ``sha256``),
    another weights file ``weights`` of the same architecture (loaded strictly, not checked), or as it is (random
    weights, ``pretrained=False``). ``remake`` says how to re-create the weights."""
    if not pretrained:
        return model
    path = Path(weights) if weights is not None else weights_file
    folder = f"pecft_lib/data/{name}"
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{path} does not exist. The {name} weights ship inside the package ({folder}/); reinstall pecft_lib "
            f"(`pip install --force-reinstall pecft_lib`, or in a checkout `git checkout -- {folder}`), or "
            f"re-create them with {remake} and pass weights=PATH."
        )
    if weights is None:
        verify_sha256(path, sha256, "reinstall pecft_lib (`pip install --force-reinstall pecft_lib`), or in a "
                      f"checkout restore the file with `git checkout -- {folder}` (a Git LFS pointer or a partial "
                      "download also ends here)")
    load_state_dict_file(model, path, name)
    return model


def load_vit_tiny(pretrained: bool = True, weights: str | Path | None = None) -> VisionTransformer:
    """``pecft-vit-tiny`` with its pretrained weights shipped in the package (sha256-verified), or random ones.

    Args:
        pretrained: ``False`` returns the architecture with random weights.
        weights: another weights file of the same architecture (e.g. a re-run of the pretraining
            script); it is loaded strictly but not checked against the committed sha256.
    """
    return load_shipped_weights(create_vit_tiny(), "pecft-vit-tiny", WEIGHTS_FILE, SHA256,
                            "`python tools/pretrain_vit_tiny.py` (about 45 minutes on 2 CPU cores)",
                            pretrained, weights)


def pretraining_report() -> dict:
    """What ``tools/pretrain_vit_tiny.py`` measured when it made the committed weights (recipe, time, probe)."""
    return json.loads(REPORT_FILE.read_text())


def probe_report() -> dict:
    """Linear-probe accuracies of the committed weights, random weights and raw pixels (``tools/probe_vit_tiny.py``)."""
    return json.loads(PROBE_FILE.read_text())
