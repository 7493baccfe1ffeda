"""The training-time class mask of the L2P, DualPrompt and CODA-Prompt reference code.

While training experience ``t``, the logits of every class that is not in experience ``t`` are set to
``-inf`` before the cross-entropy (``train_continual.py`` of google-research/l2p, commit dd8836e;
``engine.py`` of JH-LEE-KR/l2p-pytorch, commit f7bc994; ``learners/prompt.py`` of GT-RIPL/CODA-Prompt,
commit 6417d4f). The softmax then runs over the current classes only, so the output-layer rows of old
classes receive no gradient and are not pushed down by the new data. It uses the task *boundary* at training
time only, which class-incremental learning allows; evaluation is unchanged (argmax over all classes).
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin


class TrainClassMaskPlugin(SupervisedPlugin):
    """Mask the logits of classes outside the current training experience (training only)."""

    def after_forward(self, strategy, **kwargs) -> None:
        classes = torch.as_tensor(sorted(strategy.experience.classes_in_this_experience),
                                  device=strategy.mb_output.device)
        outside = torch.ones(strategy.mb_output.shape[1], dtype=torch.bool, device=strategy.mb_output.device)
        outside[classes] = False
        strategy.mb_output = strategy.mb_output.masked_fill(outside, float("-inf"))
