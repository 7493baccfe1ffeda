"""Frozen-feature linear probe: how linearly separable a backbone's pooled features are."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .modes import eval_mode


@torch.no_grad()
def extract_features(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``model(x)`` (pooled features) for every row of ``inputs``, in eval mode, batch by batch."""
    with eval_mode(model):
        chunks = [model(inputs[i:i + batch_size]) for i in tqdm(range(0, len(inputs), batch_size), desc="features")]
    return torch.cat(chunks)


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    weight_decay: float = 1e-4,
    max_iter: int = 300,
) -> dict[str, float]:
    """Multinomial logistic regression on standardised features, fitted by full-batch L-BFGS.

    The features are standardised with the *training* mean and standard deviation; the L2 penalty is
    ``weight_decay · ‖W‖²``. Returns train and test top-1 accuracy (fractions).
    """
    mean, std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    x_train, x_test = (train_features - mean) / std, (test_features - mean) / std
    n_classes = int(train_labels.max()) + 1
    head = nn.Linear(x_train.shape[1], n_classes, dtype=x_train.dtype)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(head(x_train), train_labels) + weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_acc = (head(x_train).argmax(1) == train_labels).float().mean().item()
        test_acc = (head(x_test).argmax(1) == test_labels).float().mean().item()
    return {"train_accuracy": train_acc, "test_accuracy": test_acc}
