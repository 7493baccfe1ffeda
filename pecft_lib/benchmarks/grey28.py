"""What the 28×28 grey-image streams share (Split Fashion-MNIST, Split MNIST, the five domains): one input
normalisation, so that a backbone pretrained on one of them, or on glyphs, sees every stream on the same scale.

The mean and standard deviation are those of Fashion-MNIST's 60,000 training images scaled to [0, 1], the
normalisation ``pecft-vit-tiny`` was pretrained with; ``pecft-vit-glyphs`` was pretrained with it too,
and ``pecft-hybrid-glyphs`` maps it back to [0, 1] before its ImageNet stem.
"""

from __future__ import annotations

import numpy as np
import torch

MEAN, STD = 0.2860, 0.3530


def normalise(images: np.ndarray) -> torch.Tensor:
    """``uint8 [N, 28, 28]`` images (white on black) as the ``float32 [N, 1, 28, 28]`` tensor every model here sees."""
    return ((torch.from_numpy(np.asarray(images).astype("float32")) / 255.0 - MEAN) / STD).unsqueeze(1)
