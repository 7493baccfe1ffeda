"""Classic continual-learning strategies on a small network trained from scratch (the primer chapter).

These are Avalanche's own strategies, configured from a validated config; nothing is re-implemented:

* ``naive`` — sequential fine-tuning, the lower bound (:class:`avalanche.training.Naive`);
* ``joint`` — one model trained on all experiences at once, the upper bound (:class:`~avalanche.training.JointTraining`);
* ``ewc`` — Elastic Weight Consolidation, Kirkpatrick et al. 2017 (:class:`~avalanche.training.EWC`);
* ``lwf`` — Learning without Forgetting, Li & Hoiem 2017 (:class:`~avalanche.training.LwF`);
* ``replay`` — experience replay with a class-balanced buffer (:class:`~avalanche.training.Replay`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from avalanche.models import SimpleMLP
from avalanche.training import EWC, JointTraining, LwF, Naive, Replay

from ...benchmarks import BenchmarkConfig, ContinualBenchmark
from ...errors import UnknownNameError
from ...repro import seed_everything
from ..common import loop_arguments
from ..common.precision import check_precision
from ..spec import RunResult, default_seed, resolve_benchmark, run_prepared

CLASSIC_STRATEGIES = {"naive": Naive, "joint": JointTraining, "ewc": EWC, "lwf": LwF, "replay": Replay}
"""Name → Avalanche strategy class: ``naive`` (sequential fine-tuning), ``joint`` (all experiences at once),
``ewc``, ``lwf`` and ``replay``, the names :func:`~pecft_lib.methods.baselines.run_classic` accepts."""


@dataclass
class MLPConfig:
    """Avalanche's :class:`~avalanche.models.SimpleMLP` on flattened 28x28 images."""

    hidden_size: int = 256
    hidden_layers: int = 1
    drop_rate: float = 0.0


@dataclass
class TrainConfig:
    """SGD with momentum, the same for every classic strategy."""

    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    eval_batch_size: int = 1000
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "train.precision")


@dataclass
class ClassicConfig:
    """Config of the primer's experiment, ``configs/classic_cl.yaml``."""

    benchmark: BenchmarkConfig
    model: MLPConfig = field(default_factory=MLPConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # keyword arguments of each Avalanche strategy, e.g. {"replay": {"mem_size": 500}}
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.strategies:
            if name not in CLASSIC_STRATEGIES:
                raise UnknownNameError("strategy in config.strategies", name, CLASSIC_STRATEGIES)


def make_mlp(cfg: MLPConfig, n_classes: int, input_size: int = 28 * 28) -> SimpleMLP:
    """Avalanche's :class:`~avalanche.models.SimpleMLP` with the layers of ``cfg`` and ``n_classes`` outputs, on
    flattened 28x28 images unless ``input_size`` says otherwise."""
    return SimpleMLP(num_classes=n_classes, input_size=input_size, **asdict(cfg))


def build_classic_strategy(
    name: str, model: torch.nn.Module, cfg: ClassicConfig, n_experiences: int, plugins: Sequence[Any] = ()
):
    """The Avalanche strategy ``name`` with SGD, cross-entropy, the evaluator that records the accuracy
    matrix, and any extra Avalanche ``plugins``."""
    if name not in CLASSIC_STRATEGIES:
        raise UnknownNameError("strategy", name, CLASSIC_STRATEGIES)
    train = cfg.train
    return CLASSIC_STRATEGIES[name](
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum),
        criterion=torch.nn.CrossEntropyLoss(),
        **loop_arguments(train, n_experiences, "train.device", plugins=plugins),
        **cfg.strategies.get(name, {}),
    )


def prepare_classic(
    cfg: ClassicConfig, benchmark: ContinualBenchmark | None = None, *, seed: int | None = None, name: str
) -> tuple[Any, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_classic` runs, built but not run: strategy ``name`` on a freshly seeded network,
    the benchmark and the configuration stored in the record (arguments as :func:`run_classic`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    model = make_mlp(cfg.model, benchmark.n_classes)
    strategy = build_classic_strategy(name, model, cfg, benchmark.n_experiences)
    return strategy, benchmark, {"strategy": name, "seed": seed, **asdict(cfg)}


def run_classic(
    cfg: ClassicConfig, benchmark: ContinualBenchmark | None = None, *, seed: int | None = None, name: str
) -> RunResult:
    """Seed, build a fresh network and the Avalanche strategy ``name`` (a key of :data:`CLASSIC_STRATEGIES`), run
    it over ``benchmark`` (default ``cfg.benchmark.build()``) and return the record and the trained strategy;
    ``seed`` defaults to the benchmark config's (:func:`~pecft_lib.methods.spec.default_seed`)."""
    return run_prepared(prepare_classic(cfg, benchmark, seed=seed, name=name), name=name, evaluate_untrained=True)
