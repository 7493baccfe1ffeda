"""The frozen weights of a run — parameters no training step changes — which checkpoints leave out.

A pretrained backbone is almost all of a PEFT model (ViT-B/16: 86 M values, 330 MiB in float32) and never
changes during a run, and ``build()`` re-creates it. :class:`FrozenWeights` holds the parameters that are
frozen when the model is built, forgets every one that later becomes trainable or enters an optimizer
(CODA-Prompt's components of later tasks, for instance), and fingerprints their values (SHA-256 of the
bytes), so that a resume checks that ``build()`` re-created exactly the weights the run started from.
Parameters added while training (LoRA branches, adapters, heads, components) are never frozen weights.

The one assumption: no method writes into a parameter that was frozen when the model was built and has
never been trainable since (the methods here write only into the pieces they add, or into trainable ones).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .checkpoint import CheckpointError

__all__ = ["FrozenWeights", "fingerprint"]


def fingerprint(tensor: torch.Tensor) -> str:
    """SHA-256 of the tensor's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class FrozenWeights:
    """The frozen weights of ``model`` as it is built (before any training)."""

    def __init__(self, model: nn.Module):
        self._parameters = {id(p): p for p in model.parameters() if not p.requires_grad}
        self._fingerprints = {key: fingerprint(p) for key, p in self._parameters.items()}

    def update(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Forget the parameters that are trainable now or held by ``optimizer``."""
        live = [p for p in model.parameters() if p.requires_grad]
        live += [p for group in optimizer.param_groups for p in group["params"]]
        for parameter in live:
            self._parameters.pop(id(parameter), None)

    def of(self, model: nn.Module) -> dict[str, str]:
        """``{state_dict key: fingerprint}`` of the frozen weights in ``model``."""
        return {name: self._fingerprints[id(p)] for name, p in model.named_parameters(remove_duplicate=False)
                if id(p) in self._parameters}

    def restrict(self, model: nn.Module, saved: dict[str, str]) -> None:
        """Keep only the frozen weights a checkpoint left out (``saved``, from :meth:`of`), after checking that
        ``model`` has each of them, still frozen, with the value the checkpointed run started from.

        Raises:
            CheckpointError: one is missing, trainable, or has another value.
        """
        current = self.of(model)
        absent = sorted(set(saved) - set(current))
        if absent:
            raise CheckpointError(f"the checkpoint left out {len(absent)} frozen weights that this model lacks or "
                                  f"trains (first: {absent[0]}); resume with the same method and configuration")
        changed = sorted(name for name, value in saved.items() if current[name] != value)
        if changed:
            raise CheckpointError(
                f"build() created {len(changed)} frozen weights (first: {changed[0]}) with other values than the "
                "checkpointed run started from: it must load the same pretrained weights, with the same seed")
        kept = {id(p) for name, p in model.named_parameters(remove_duplicate=False) if name in saved}
        self._parameters = {key: p for key, p in self._parameters.items() if key in kept}
