"""What a strategy holds beyond its model's ``state_dict``, as plain data for a checkpoint.

Each strategy class with such state registers a pair of functions (:func:`register_strategy_state`); a
checkpoint stores the state of every registered class the strategy is an instance of. Registered here:

* :class:`~pecft_lib.methods.inflora.InfLoRA` — the subspace memories, their per-task copies and the
  per-task history;
* :class:`~pecft_lib.methods.olora.OLoRA` — the per-step penalty log;
* :class:`~pecft_lib.methods.prompting.PromptStrategy` — the query cache of the current experience (the
  cached features come from batches of a different composition than a recomputation would use, so
  recomputing them could change the last bits of a result).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..methods.inflora import InfLoRA, SubspaceMemory
from ..methods.olora import OLoRA
from ..methods.olora.loss import PenaltyRecord
from ..methods.prompting import PromptStrategy
from .checkpoint import CheckpointError

__all__ = ["load_strategy_state", "register_strategy_state", "strategy_state"]


@dataclass(frozen=True)
class _Handlers:
    save: Callable[[Any], dict[str, Any]]
    load: Callable[[Any, dict[str, Any]], None]


_REGISTRY: dict[type, _Handlers] = {}


def register_strategy_state(cls: type, save: Callable[[Any], dict[str, Any]],
                            load: Callable[[Any, dict[str, Any]], None]) -> None:
    """Checkpoint instances of ``cls`` with ``save(strategy) -> dict`` and ``load(strategy, dict)``.

    ``save`` must return tensors and plain Python data only (checkpoints are read with
    ``weights_only=True``). ``load`` is called on a freshly built strategy whose model has already been
    grown to the checkpoint's experiences.
    """
    _REGISTRY[cls] = _Handlers(save, load)


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def strategy_state(strategy: Any) -> dict[str, dict[str, Any]]:
    """The registered state of ``strategy``, by class."""
    return {_key(cls): handlers.save(strategy) for cls, handlers in _REGISTRY.items() if isinstance(strategy, cls)}


def load_strategy_state(strategy: Any, state: dict[str, dict[str, Any]]) -> None:
    """Restore what :func:`strategy_state` returned into a freshly built ``strategy`` of the same classes."""
    handlers = {_key(cls): entry for cls, entry in _REGISTRY.items() if isinstance(strategy, cls)}
    if set(handlers) != set(state):
        raise CheckpointError(f"the checkpoint holds strategy state for {sorted(state)}, but a "
                              f"{type(strategy).__name__} has state for {sorted(handlers)}: it was written by "
                              "a different method")
    for key, entry in handlers.items():
        entry.load(strategy, state[key])


def _memory_data(memory: SubspaceMemory) -> dict[str, Any]:
    return {"basis": memory.basis, "kind": memory.kind, "dual": memory.dual}


def _save_inflora(strategy: InfLoRA) -> dict[str, Any]:
    return {
        "memories": [_memory_data(memory) for memory in strategy.memories],
        "memory_history": [[_memory_data(memory) for memory in memories] for memories in strategy.memory_history],
        "history": list(strategy.history),
    }


def _load_inflora(strategy: InfLoRA, state: dict[str, Any]) -> None:
    strategy.memories = [SubspaceMemory(**data) for data in state["memories"]]
    strategy.memory_history = [[SubspaceMemory(**data) for data in memories] for memories in state["memory_history"]]
    strategy.history = list(state["history"])


def _save_olora(strategy: OLoRA) -> dict[str, Any]:
    return {"penalty_log": [asdict(record) for record in strategy.penalty_log]}


def _load_olora(strategy: OLoRA, state: dict[str, Any]) -> None:
    strategy.penalty_log[:] = [PenaltyRecord(**record) for record in state["penalty_log"]]  # the caller's list


def _save_prompt(strategy: PromptStrategy) -> dict[str, Any]:
    # QueryCache has no public state accessors; its one field is the {sample index: q(x)} dictionary
    return {"query_cache": strategy.query_cache.state_dict()}


def _load_prompt(strategy: PromptStrategy, state: dict[str, Any]) -> None:
    strategy.query_cache.clear()
    strategy.query_cache.load_state_dict(state["query_cache"])


register_strategy_state(InfLoRA, _save_inflora, _load_inflora)
register_strategy_state(OLoRA, _save_olora, _load_olora)
register_strategy_state(PromptStrategy, _save_prompt, _load_prompt)
