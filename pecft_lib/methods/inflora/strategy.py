"""InfLoRA as an Avalanche strategy: design before each task, train ``up`` and the head, update the memory.

Per training experience ``t`` (reference ``methods/inflora.py`` of liangyanshuo/InfLoRA, commit e08b00e):

1. the model adds a branch (``down = up = 0``) to the key and value projections of every branched block
   and a head for the new classes; earlier branches and heads are frozen;
2. one pass over the task's training data (with its training augmentation) gathers each block's input
   covariance ``C``; ``down`` ← top-``r`` directions of ``(I − P_M) C`` (:func:`design_down_projection`);
3. a fresh optimizer trains the new ``up`` matrices and head with the cross-entropy over the new classes;
4. a second pass (now with the trained branch) gathers ``C`` again and grows the memory ``M`` with threshold
   ``ε_t`` (:class:`SubspaceMemory`).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader

from ...benchmarks import ContinualBenchmark
from ...repro import seed_everything
from ..common import ContinualPEFTStrategy, StatelessPlugin, loop_arguments, reference_cosine_lr
from ..spec import (BackboneSource, RunResult, StrategyState, backbone_label, default_seed, make_backbone,
                    resolve_benchmark, run_prepared)
from .config import InfLoRAExperimentConfig, InfLoRAOptimConfig
from .model import InfLoRAModel
from .subspace import SubspaceMemory, design_down_projection, threshold_at


def make_optimizer_factory(optim: InfLoRAOptimConfig) -> Callable:
    """Adam (the reference's InfLoRA and InfLoRA-b5) or SGD with momentum (its DomainNet configs)."""
    if optim.optimizer == "adam":
        return lambda params: torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay,
                                               betas=(0.9, 0.999))
    return lambda params: torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum,
                                          weight_decay=optim.weight_decay)


class _MemoryUpdate(StatelessPlugin):
    """Calls :meth:`InfLoRA.update_memories` after every training experience (the memories are the strategy's
    checkpoint state)."""

    def after_training_exp(self, strategy: "InfLoRA", *args: Any, **kwargs: Any) -> None:
        strategy.update_memories()


class InfLoRA(ContinualPEFTStrategy):
    """The InfLoRA strategy over an :class:`InfLoRAModel` (see the module docstring for the protocol).

    Args:
        n_experiences: length of the training stream, ``T`` of the threshold schedule.
        **kwargs: :class:`~pecft_lib.methods.common.ContinualPEFTStrategy` arguments.

    Attributes:
        memories: the :class:`SubspaceMemory` of every branched block (empty before the first task ends).
        history: per task, the memory dimension of each block and the seconds spent on statistics and SVDs.
        memory_history: copies of :attr:`memories` after every task (``memory_history[t - 1]`` is what task
            ``t``'s down-projections were designed against).
    """

    def __init__(self, *, model: InfLoRAModel, optimizer_factory: Callable, n_experiences: int,
                 plugins: Sequence[Any] = (), **kwargs: Any):
        super().__init__(model=model, optimizer_factory=optimizer_factory, plugins=[*plugins, _MemoryUpdate()],
                         **kwargs)
        self.n_experiences = n_experiences
        self.memories: list[SubspaceMemory] = []
        self.history: list[dict[str, Any]] = []
        self.memory_history: list[list[SubspaceMemory]] = []
        self._subspace_seconds = 0.0

    def _statistics_batches(self) -> Iterator[torch.Tensor]:
        loader = DataLoader(self.adapted_dataset, batch_size=self.eval_mb_size, shuffle=False)
        for batch in loader:
            yield batch[0]

    def _random_rows(self, rank: int, width: int) -> torch.Tensor:
        rows, _ = torch.linalg.qr(torch.randn(width, rank, dtype=torch.float64))
        return rows.T * self.model.config.scale

    def model_adaptation(self, model=None):
        model = super().model_adaptation(model)
        if self.is_training:
            start = time.perf_counter()
            config = model.config
            if config.design == "random":
                downs = [self._random_rows(config.rank, model.backbone.embed_dim) for _ in model.layers]
            else:
                covariances = model.input_covariances(self._statistics_batches())
                memories = self.memories if config.design == "inflora" and self.memories else [None] * len(covariances)
                downs = [design_down_projection(c, m, config.rank, config.scale)
                         for c, m in zip(covariances, memories)]
            dtype = next(model.parameters()).dtype
            model.set_down_projections([down.to(dtype) for down in downs])
            self._subspace_seconds = time.perf_counter() - start
        return model

    def update_memories(self) -> None:
        """Grow every block's memory with the finished task's input subspace (step 4 of the module docstring)."""
        start = time.perf_counter()
        task = self.model.n_tasks - 1
        config = self.model.config
        threshold = threshold_at(task, self.n_experiences, config.threshold, config.threshold_end)
        covariances = self.model.input_covariances(self._statistics_batches())
        if not self.memories:
            dual = config.memory == "dual_gpm"
            self.memories = [SubspaceMemory.from_first_task(c, threshold, dual) for c in covariances]
        else:
            for memory, covariance in zip(self.memories, covariances):
                memory.update(covariance, threshold)
        self._subspace_seconds += time.perf_counter() - start
        self.memory_history.append([memory.copy() for memory in self.memories])
        self.history.append({
            "task": task,
            "threshold": threshold,
            "memory_dims": [memory.dim for memory in self.memories],
            "memory_kinds": [memory.kind for memory in self.memories],
            "subspace_seconds": self._subspace_seconds,
        })


def build_inflora(
    model: InfLoRAModel, optim: InfLoRAOptimConfig, n_experiences: int, plugins: tuple = ()
) -> InfLoRA:
    """The strategy with the reference's optimizer and schedule and the accuracy-matrix evaluator."""
    return InfLoRA(
        model=model,
        optimizer_factory=make_optimizer_factory(optim),
        n_experiences=n_experiences,
        lr_schedule=reference_cosine_lr if optim.schedule == "reference_cosine" else None,
        **loop_arguments(optim, n_experiences, plugins=plugins),
    )


def prepare_inflora(
    cfg: InfLoRAExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> tuple[InfLoRA, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_inflora` runs, built but not run: the strategy on a freshly seeded model, the benchmark
    and the configuration stored in the record (arguments as :func:`run_inflora`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone, cfg.backbone)
    model = InfLoRAModel(pretrained, benchmark.n_classes, cfg.method)
    strategy = build_inflora(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "inflora", "seed": seed, "backbone": backbone_label(backbone, pretrained, cfg.backbone),
              "inflora": asdict(cfg.method), "optim": asdict(cfg.optim)}
    return strategy, benchmark, config


def run_inflora(
    cfg: InfLoRAExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    name: str = "InfLoRA",
) -> RunResult:
    """Seed, build the model on a fresh backbone, run InfLoRA over ``benchmark`` and return the record and the
    trained strategy.

    Args:
        cfg: one experiment (``InfLoRAExperimentConfig``; a preset of ``configs/inflora.yaml`` or built in code).
        benchmark: default ``cfg.benchmark.build()``; any class-incremental Avalanche benchmark through
            :meth:`~pecft_lib.benchmarks.ContinualBenchmark.from_avalanche`.
        backbone: default ``cfg.backbone``; a name, a model or a function returning one
            (:data:`~pecft_lib.methods.spec.BackboneSource`).
        seed: default the ``pecft`` command's (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record.
    """
    return run_prepared(prepare_inflora(cfg, benchmark, backbone=backbone, seed=seed), name=name,
                        extra=subspace_history)


def subspace_history(strategy: InfLoRA) -> dict[str, Any]:
    """What an InfLoRA run adds to its record after every experience: the memory's dimension and energy per block
    and task (:attr:`InfLoRA.history`)."""
    return {"subspace": list(strategy.history)}


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


INFLORA_STATE = StrategyState(InfLoRA, _save_inflora, _load_inflora)
"""InfLoRA's checkpoint state: the subspace memories, their per-task copies and the per-task history."""
