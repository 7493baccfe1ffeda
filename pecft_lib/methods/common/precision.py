"""Numerical precision of training and evaluation: float32, or bfloat16 autocast around the forward pass.

``precision: fp32`` (the default) computes in float32, as the PyTorch reference implementations of L2P,
DualPrompt, CODA-Prompt and InfLoRA train their ViTs.
``precision: bf16`` runs the forward pass of every training and evaluation step under
``torch.autocast(device_type, dtype=torch.bfloat16)`` (:class:`MixedPrecisionPlugin`, an Avalanche plugin on the
public forward hooks). Autocast leaves everything else in float32, and that is where it matters:

* **trainable parameters and optimizer state** stay float32 tensors: autocast casts copies of the weights for
  the matrix products and never changes a parameter, so Adam's moments and the updates are float32 (small
  updates of prompts and LoRA factors would vanish in bf16's 8-bit mantissa);
* **backward** runs outside the autocast region, as PyTorch prescribes; each op's gradient has the dtype its
  forward had, and gradients reach the float32 parameters in float32;
* **the logits are cast back to float32** after the forward (:meth:`MixedPrecisionPlugin.after_forward`), so
  the cross-entropy, its reduction over the batch and the methods' extra loss terms (O-LoRA's orthogonality
  and L2 penalties, computed in the strategy's ``criterion``) are float32;
* **the prompt methods' query–key matching** (L2P's and DualPrompt's cosine similarity and top-k selection,
  CODA-Prompt's component weights and orthogonality penalty, their auxiliary losses) runs with autocast off on
  a float32 query (:meth:`~pecft_lib.methods.prompting.PromptClassifier.forward`): a bfloat16 cosine
  keeps about 3 significant digits, enough to reorder keys whose similarities are close and so change which
  prompts a sample gets;
* **InfLoRA's covariance passes and SVDs** and the prototype baseline's class means run outside the forward
  hooks, hence in float32 (the prototype classifier's cosine is computed in float32 as well).

``fp16`` is refused: it needs a gradient scaler that skips the optimizer steps whose gradients overflow, which
Avalanche's hooks cannot express without rewriting the training loop; bfloat16 has float32's exponent range
and needs none.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from avalanche.core import SupervisedPlugin

from ...errors import ConfigError

PRECISIONS = ("fp32", "bf16")
"""The values of a loop config's ``precision``: float32 throughout, or bfloat16 autocast around the forward."""

_AUTOCAST_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
T = TypeVar("T")


def check_precision(precision: str, key: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; ``key`` names the config key in the error.

    Raises:
        ConfigError: any other value (``fp16`` with the reason it is not offered).
    """
    if precision == "fp16":
        raise ConfigError(f"{key}=fp16 is not offered: float16 needs a gradient scaler that skips overflowing "
                          "steps; use bf16 (same exponent range as float32, no scaler) or fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"{key} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_device_precision(precision: str, device: torch.device, key: str) -> None:
    """Refuse bf16 on a CUDA device without bfloat16 support (GPUs before Ampere)."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{key}=bf16, but {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                          "use fp32 on this GPU")


def autocast(precision: str, device_type: str) -> torch.autocast:
    """The autocast region of ``precision`` on ``device_type`` (``"cpu"``, ``"cuda"``): bfloat16 for ``bf16``,
    a disabled region (float32 computation) for ``fp32``."""
    return torch.autocast(device_type, dtype=_AUTOCAST_DTYPES[precision], enabled=precision != "fp32")


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is in a 16-bit float type, else unchanged (float64 stays float64)."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor


def in_float32(function: Callable[[torch.Tensor], T], tensor: torch.Tensor) -> T:
    """``function(tensor)`` with autocast off and ``tensor`` in at least float32: what must not run in bfloat16
    under a bf16 run (the prompt methods' query–key matching, see the module docstring)."""
    with torch.autocast(tensor.device.type, enabled=False):
        return function(upcast(tensor))


class MixedPrecisionPlugin(SupervisedPlugin):
    """Runs the strategy's forward passes (training and evaluation) under ``torch.autocast`` in ``precision``
    and hands float32 logits to the criterion (see the module docstring for what stays float32).

    The autocast region is entered in ``before_forward`` and left in ``after_forward`` (and their evaluation
    twins), so it covers ``strategy.forward()`` only: plugins' ``after_forward`` hooks that run before this
    one (the training-time class mask) still see the bfloat16 logits, which they only mask.
    """

    def __init__(self, precision: str):
        super().__init__()
        if precision not in PRECISIONS or precision == "fp32":
            raise ValueError(f"MixedPrecisionPlugin runs a 16-bit precision of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self._region: torch.autocast | None = None

    def _enter(self, strategy: Any) -> None:
        self._leave()  # a forward that raised never reached after_forward
        self._region = autocast(self.precision, strategy.device.type)
        self._region.__enter__()

    def _leave(self) -> None:
        if self._region is not None:
            region, self._region = self._region, None
            region.__exit__(None, None, None)

    def _to_float32(self, strategy: Any) -> None:
        self._leave()
        strategy.mb_output = upcast(strategy.mb_output)

    def before_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._enter(strategy)

    def after_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._to_float32(strategy)

    def before_eval_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._enter(strategy)

    def after_eval_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._to_float32(strategy)


def precision_plugins(precision: str) -> list[MixedPrecisionPlugin]:
    """The plugins a strategy needs for ``precision``: none for fp32, :class:`MixedPrecisionPlugin` otherwise."""
    return [] if precision == "fp32" else [MixedPrecisionPlugin(precision)]


def strategy_precision(strategy: Any) -> str:
    """The precision an Avalanche strategy runs in: its :class:`MixedPrecisionPlugin`'s, else ``fp32``."""
    for plugin in strategy.plugins:
        if isinstance(plugin, MixedPrecisionPlugin):
            return plugin.precision
    return "fp32"
