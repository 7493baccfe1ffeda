"""Drive an Avalanche strategy over a benchmark and return a :class:`RunRecord`.

The strategy does all training and evaluation (``strategy.train`` / ``strategy.eval``); this module only
orders the calls, times them and reads the :class:`AccuracyMatrix` metric from the strategy's evaluator.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from avalanche.training import JointTraining
from avalanche.training.plugins import EvaluationPlugin
from tqdm.auto import tqdm

from ..benchmarks import ContinualBenchmark
from ..errors import ConfigError
from .accuracy_matrix import AccuracyMatrix
from .record import RunRecord
from .resources import PeakMemory, count_trainable_parameters, hardware, package_versions

__all__ = ["accuracy_matrix_metric", "make_evaluator", "run_strategy", "without_avalanche_deprecations"]


def make_evaluator(n_experiences: int, loggers: Sequence[Any] = ()) -> EvaluationPlugin:
    """An evaluation plugin that records the accuracy matrix; pass Avalanche loggers to see values live."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(AccuracyMatrix(n_experiences), loggers=list(loggers))


@contextmanager
def without_avalanche_deprecations():
    """Drop the DeprecationWarnings Avalanche 0.6 raises against its own API (its replay buffer calls a
    deprecated method on every experience) and re-emit every other warning.

    A plain filter does not work: Avalanche's ``deprecated`` decorator installs its own
    ``simplefilter("once", DeprecationWarning)`` right before warning, so the warnings are recorded here
    and sorted afterwards.
    """
    with warnings.catch_warnings(record=True) as caught:
        yield
    for warning in caught:
        if not (issubclass(warning.category, DeprecationWarning) and
                "avalanche" in warning.filename and str(warning.message).startswith("Call to deprecated")):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def accuracy_matrix_metric(strategy) -> AccuracyMatrix:
    for metric in getattr(strategy.evaluator, "metrics", []):
        if isinstance(metric, AccuracyMatrix):
            return metric
    raise ValueError(
        "the strategy's evaluator has no AccuracyMatrix metric; build the strategy with "
        "evaluator=make_evaluator(benchmark.n_experiences)"
    )


def run_strategy(
    strategy,
    benchmark: ContinualBenchmark,
    *,
    name: str,
    config: dict[str, Any] | None = None,
    evaluate_untrained: bool = True,
    evaluate_future: bool = True,
    save_to: str | Path | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
    stop_after: int | None = None,
) -> RunRecord:
    """Train ``strategy`` on ``benchmark`` experience by experience, evaluating the whole test stream after
    each one, and return the run's record.

    A :class:`~avalanche.training.JointTraining` strategy is trained once on the whole stream (the upper
    bound); its accuracy matrix has a single column.

    Args:
        name: label of the run (e.g. ``"naive"``), used in plots and tables.
        config: the configuration to store in the record.
        evaluate_untrained: also evaluate before training, which gives forward transfer.
        evaluate_future: after stage ``t`` evaluate every experience (default), or only the experiences trained
            so far; then the entries of experiences not trained yet (``R[i, t]``, ``i > t``) stay unmeasured
            (``None``): every metric but forward transfer is unchanged, and evaluation costs ``(T + 1) / 2T`` of the full one.
        save_to: if given, the record is (atomically) written there after every experience, with
            ``status="running"`` until the last one, so an interrupted run keeps its results.
        stop_after: train only the first ``stop_after`` experiences (e.g. to re-check the start of a stored
            run); the record then keeps ``status="running"``.
    """
    metric = accuracy_matrix_metric(strategy)
    metric.reset()
    joint = isinstance(strategy, JointTraining)
    stages: list[Any] = [benchmark.train_stream] if joint else list(benchmark.train_stream)
    n_stages = len(stages)
    if stop_after is not None:
        if not 1 <= stop_after <= n_stages:
            raise ConfigError(f"stop_after must be between 1 and {n_stages} (the stages of this run), got {stop_after}")
        stages = stages[:stop_after]
    device = str(strategy.device)
    if evaluate_untrained:
        strategy.eval(benchmark.test_stream)
    timings: dict[str, list] = {"train_seconds": [], "eval_seconds": [], "peak_memory_mib": [],
                                "trainable_parameters": []}
    environment = {"versions": package_versions(), "hardware": hardware()}  # read once per run
    record = None
    for stage, training_data in enumerate(tqdm(stages, desc=name, unit="exp")):
        with PeakMemory(device) as memory, without_avalanche_deprecations():
            start = time.perf_counter()
            strategy.train(training_data)
            timings["train_seconds"].append(time.perf_counter() - start)
        timings["peak_memory_mib"].append(memory.mib)
        timings["trainable_parameters"].append(count_trainable_parameters(strategy.model))
        start = time.perf_counter()
        strategy.eval(benchmark.test_stream if evaluate_future or joint else benchmark.test_stream[: stage + 1])
        timings["eval_seconds"].append(time.perf_counter() - start)
        finished = stage == n_stages - 1
        matrix = metric.result()[:, :1] if joint else metric.result()
        record = RunRecord.from_arrays(
            name,
            matrix,
            metric.initial.copy() if evaluate_untrained else None,
            config=dict(config or {}),
            benchmark=benchmark.describe(),
            peak_memory_kind=memory.kind,
            status="finished" if finished else "running",
            extra=extra() if extra is not None else {},
            **environment,
            **{key: list(values) for key, values in timings.items()},
        )
        if save_to is not None:
            record.save(save_to)
    if record.status == "finished" and np.isnan(record.matrix[:, -1]).any():
        raise RuntimeError(f"{name}: the final evaluation is incomplete (an experience of the test stream was "
                           "not evaluated); this is a bug of the strategy's evaluation, please report it")
    return record
