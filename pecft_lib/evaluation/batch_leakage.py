"""Accuracy per experience under a chosen composition of the test batches.

The references (google-research/l2p, commit dd8836e; JH-LEE-KR/l2p-pytorch, commit f7bc994;
GT-RIPL/CODA-Prompt, commit 6417d4f) evaluate each experience on its own, unshuffled test loader, so every
test batch holds a single task. A model whose prediction for one sample depends on the rest of its batch —
L2P's and DualPrompt's batch-wise majority vote of prompts — then learns the task identity from its
batch-mates (google-research/l2p#28). :func:`accuracy_per_experience` measures the same model with
single-experience batches and with batches that mix all experiences, which exposes that leakage: a model
without it scores the same both ways.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from ..benchmarks import ContinualBenchmark
from .modes import eval_mode


@torch.no_grad()
def accuracy_per_experience(
    model: torch.nn.Module, benchmark: ContinualBenchmark, batch_size: int, mixed: bool = False, seed: int = 0
) -> np.ndarray:
    """Class-incremental accuracy (argmax over every logit) on each test experience.

    Args:
        model: maps a batch of inputs to logits over all classes.
        benchmark: its test stream is evaluated.
        batch_size: test batch size.
        mixed: ``False`` — batches of one experience at a time, as the references' test loaders;
            ``True`` — the test sets of all experiences shuffled together (seeded), then batched.
        seed: the shuffle of ``mixed`` batches.
    """
    device = next(model.parameters()).device
    datasets = [experience.dataset.eval() for experience in benchmark.test_stream]
    owner = torch.cat([torch.full((len(d),), index) for index, d in enumerate(datasets)])
    correct = torch.zeros(len(datasets))
    if mixed:
        order = torch.randperm(len(owner), generator=torch.Generator().manual_seed(seed))
        loaders = [(DataLoader(torch.utils.data.Subset(ConcatDataset(datasets), order.tolist()),
                               batch_size=batch_size), owner[order])]
    else:
        loaders = [(DataLoader(d, batch_size=batch_size), owner[owner == i]) for i, d in enumerate(datasets)]
    with eval_mode(model):
        for loader, owners in loaders:
            start = 0
            for x, y, *_ in loader:
                hits = (model(x.to(device)).argmax(dim=1).cpu() == y).float()
                correct.index_add_(0, owners[start:start + len(y)], hits)
                start += len(y)
    return (correct / torch.tensor([len(d) for d in datasets], dtype=torch.float)).numpy()
