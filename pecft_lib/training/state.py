"""What a strategy holds beyond its model's ``state_dict``, as plain data for a checkpoint.

Each method declares the state of its strategy classes in its :class:`~pecft_lib.methods.spec.MethodSpec`
(``strategy_state``: InfLoRA's subspace memories, O-LoRA's penalty log, the prompt methods' query cache);
other code registers more with :func:`register_strategy_state`. A checkpoint stores the state of every
registered class the strategy is an instance of.
"""

from __future__ import annotations

from typing import Any, Callable

from ..methods.registry import method_specs
from ..methods.spec import StrategyState
from .checkpoint import CheckpointError

__all__ = ["load_strategy_state", "register_strategy_state", "strategy_state"]

_REGISTERED: dict[type, StrategyState] = {}


def register_strategy_state(cls: type, save: Callable[[Any], dict[str, Any]],
                            load: Callable[[Any, dict[str, Any]], None]) -> None:
    """Checkpoint instances of ``cls`` with ``save(strategy) -> dict`` and ``load(strategy, dict)``.

    ``save`` must return tensors and plain Python data only (checkpoints are read with
    ``weights_only=True``). ``load`` is called on a freshly built strategy whose model has already been
    grown to the checkpoint's experiences.
    """
    _REGISTERED[cls] = StrategyState(cls, save, load)


def _handlers() -> dict[type, StrategyState]:
    """The methods' declared strategy states and the registered ones (a registration wins)."""
    declared = {state.cls: state for spec in method_specs().values() for state in spec.strategy_state}
    return {**declared, **_REGISTERED}


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def strategy_state(strategy: Any) -> dict[str, dict[str, Any]]:
    """The registered state of ``strategy``, by class."""
    return {_key(cls): entry.save(strategy) for cls, entry in _handlers().items() if isinstance(strategy, cls)}


def load_strategy_state(strategy: Any, state: dict[str, dict[str, Any]]) -> None:
    """Restore what :func:`strategy_state` returned into a freshly built ``strategy`` of the same classes."""
    handlers = {_key(cls): entry for cls, entry in _handlers().items() if isinstance(strategy, cls)}
    if set(handlers) != set(state):
        raise CheckpointError(f"the checkpoint holds strategy state for {sorted(state)}, but a "
                              f"{type(strategy).__name__} has state for {sorted(handlers)}: it was written by "
                              "a different method")
    for key, entry in handlers.items():
        entry.load(strategy, state[key])
