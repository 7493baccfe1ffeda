"""The methods of the library: one line per method package, each declaring itself as ``METHOD``
(:class:`~pecft_lib.methods.spec.MethodSpec`).

Adding a method is a package ``pecft_lib/methods/<name>/`` (config, model, strategy, ``METHOD``), its presets
``pecft_lib/configs/<name>.yaml``, and one line here. The experiment registry (:mod:`pecft_lib.experiments`),
the ``pecft`` command, run checkpoints (:mod:`pecft_lib.training.state`) and the loaders of official
checkpoints (:func:`pecft_lib.compat.from_reference`) read :func:`method_specs`.
"""

from __future__ import annotations

import importlib
from functools import cache

from .spec import MethodSpec

METHOD_PACKAGES = (
    "pecft_lib.methods.l2p",
    "pecft_lib.methods.dualprompt",
    "pecft_lib.methods.coda_prompt",
    "pecft_lib.methods.inflora",
    "pecft_lib.methods.olora",
    "pecft_lib.methods.baselines",  # the classic strategies of the primer chapter (classic_cl)
    "pecft_lib.methods.finetuning",  # the single-task tuning methods of the PEFT primer (peft_primer)
)
"""The packages whose ``METHOD`` is registered, in the order ``pecft list`` shows them."""


@cache
def method_specs() -> dict[str, MethodSpec]:
    """``{name: spec}`` of every registered method (imported on first call)."""
    specs = [importlib.import_module(package).METHOD for package in METHOD_PACKAGES]
    return {spec.name: spec for spec in specs}


__all__ = ["METHOD_PACKAGES", "method_specs"]
