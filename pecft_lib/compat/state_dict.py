"""Reading state dicts written by other code bases: unwrapping them, checking their keys strictly, and writing
ours under their names."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch

from ..errors import CheckpointMismatchError

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
"""Keys under which training scripts commonly nest the state dict (the InfLoRA reference's
``save_checkpoint`` writes ``{"tasks": …, "model_state_dict": …}``)."""

DATA_PARALLEL_PREFIX = "module."
SHOWN_KEYS = 5


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The flat ``name → tensor`` mapping inside ``checkpoint``.

    ``checkpoint`` is a state dict, or a dict holding one under one of :data:`WRAPPER_KEYS`; the
    ``module.`` prefix that ``nn.DataParallel`` puts on every key is removed.
    """
    for key in WRAPPER_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    not_tensors = sorted(key for key, value in checkpoint.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise CheckpointMismatchError(
            f"expected a state dict (name → tensor), but the values of {_listing(not_tensors)} are not tensors; "
            f"pass the state dict itself or a dict holding it under one of {', '.join(WRAPPER_KEYS)}"
        )
    if checkpoint and all(key.startswith(DATA_PARALLEL_PREFIX) for key in checkpoint):
        return {key[len(DATA_PARALLEL_PREFIX):]: value for key, value in checkpoint.items()}
    return dict(checkpoint)


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    description: str,
    hint: str = "",
) -> None:
    """Raise one :class:`CheckpointMismatchError` naming every missing, unexpected and mis-shaped key.

    Args:
        state: the tensors to load.
        expected: the name and shape of every tensor the target model needs.
        description: what ``state`` should hold, e.g. ``"an InfLoRA reference checkpoint"``.
        hint: appended to the message (what was inferred, how to fix it).
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{key} {tuple(state[key].shape)} instead of {tuple(expected[key])}"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key]
    )
    if missing or unexpected or misshaped:
        details = "; ".join(
            f"{label}: {_listing(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped))
            if keys
        )
        message = f"the state dict does not hold {description}: {details}"
        raise CheckpointMismatchError(f"{message}. {hint}" if hint else message)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return f"{shown}{' …' if len(keys) > SHOWN_KEYS else ''} ({len(keys)})"


def rename_fusing_qkv(
    tensors: Iterable[tuple[str, torch.Tensor]], reference_name: Callable[[str], tuple[str, int | None]]
) -> dict[str, torch.Tensor]:
    """Our tensors under a reference's names, with our split q/k/v projections fused back into its ``qkv``.

    ``reference_name(key)`` gives the reference's name of our tensor ``key`` and, for a q, k or v projection,
    its third (0, 1, 2) of the fused tensor; the three thirds are concatenated in that order.
    """
    state, thirds = {}, {}
    for key, tensor in tensors:
        name, third = reference_name(key)
        if third is None:
            state[name] = tensor
        else:
            thirds.setdefault(name, {})[third] = tensor
    state.update({name: torch.cat([parts[index] for index in range(3)]) for name, parts in thirds.items()})
    return state
