"""Checkpoints of the methods' official implementations, loaded into this library's models.

:func:`from_reference` unwraps the checkpoint (:func:`~pecft_lib.compat.state_dict.unwrap_state_dict`) and
hands it to the loader that the method declares for the code base that wrote it (``references`` of its
:class:`~pecft_lib.methods.spec.MethodSpec`; :func:`reference_loaders` lists them):

* ``("inflora", "inflora")`` — the authors' InfLoRA code (``SiNet``) → ``InfLoRAModel``
  (:func:`pecft_lib.methods.inflora.reference.from_reference_state_dict`);
* ``("l2p", "l2p-pytorch")`` — PyTorch-L2P → ``L2PModel`` (:mod:`pecft_lib.methods.l2p.reference`);
* ``("dualprompt", "dualprompt-pytorch")`` — the PyTorch port of DualPrompt → ``DualPromptModel``
  (:mod:`pecft_lib.methods.dualprompt.reference`);
* ``("coda_prompt", "coda-prompt")`` — the authors' CODA-Prompt code (``ViTZoo``) → ``CodaPromptModel``
  (:mod:`pecft_lib.methods.coda_prompt.reference`).

Loaders are imported on first use, so this module stays light and the method packages may import its
helpers. A new source is one entry of the method's ``references`` and one loader function.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import CheckpointMismatchError, CheckpointNotFoundError, UnknownNameError
from .state_dict import check_state_dict, rename_fusing_qkv, unwrap_state_dict

def reference_loaders() -> dict[str, dict[str, str]]:
    """method → source (the official code base) → ``"module:function"`` taking a flat state dict and keyword
    arguments and returning the loaded model, as the methods declare them."""
    from ..methods.registry import method_specs

    return {name: dict(spec.references) for name, spec in method_specs().items() if spec.references}


def read_checkpoint(path: str | os.PathLike) -> Mapping[str, Any]:
    """The contents of a checkpoint file: ``.safetensors`` through safetensors, anything else through
    ``torch.load(..., weights_only=True)`` (tensors and plain containers only, never arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {path} does not exist; pass the path of the file the official "
                                      "code saved, or the state dict itself")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointMismatchError(
            f"{path} holds Python objects besides tensors ({str(error).splitlines()[0]}), which are not loaded "
            "from a path for safety; if you trust the file, load it yourself with "
            "torch.load(path, map_location='cpu', weights_only=False) and pass the result") from error


def from_reference(method: str, state_dict: Mapping[str, Any] | str | os.PathLike, source: str,
                   **config: Any) -> nn.Module:
    """The model of ``method`` holding the weights of a checkpoint written by the official code ``source``.

    Args:
        method: the library's method name, a key of :func:`reference_loaders`.
        state_dict: the checkpoint: a state dict, possibly wrapped as ``{"state_dict": …}``,
            ``{"model": …}`` or ``{"model_state_dict": …}`` and possibly with ``nn.DataParallel``'s
            ``module.`` prefix; or the path of such a file (:func:`read_checkpoint`).
        source: the code base that wrote it (for InfLoRA: ``"inflora"``, the authors' repository).
        **config: the loader's options (see the loader's docstring).

    Raises:
        UnknownNameError: no loader for ``method`` or ``source``.
        CheckpointMismatchError: the checkpoint does not fit (missing, unexpected or mis-shaped keys).
    """
    loaders = reference_loaders()
    if method not in loaders:
        raise UnknownNameError("method with reference checkpoints", method, loaders)
    sources = loaders[method]
    if source not in sources:
        raise UnknownNameError(f"reference source for {method}", source, sources)
    module_name, function_name = sources[source].split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = read_checkpoint(state_dict)
    return loader(unwrap_state_dict(state_dict), **config)


__all__ = ["check_state_dict", "from_reference", "read_checkpoint", "reference_loaders", "rename_fusing_qkv",
           "unwrap_state_dict"]
