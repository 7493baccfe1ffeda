"""Runs that survive being killed: checkpoints during training and an exact resume.

:func:`run_resumable` runs a strategy over a benchmark as :func:`~pecft_lib.evaluation.run_strategy` does
(same calls, same order, same random draws: an uninterrupted run gives the same record) and keeps in
``out_dir`` (:class:`RunFiles`):

* ``checkpoint.pt`` — the latest checkpoint, written atomically at the end of every experience and every
  ``checkpoint_every`` training iterations;
* ``progress.json`` — the :class:`~pecft_lib.evaluation.RunRecord` so far, after every experience;
* ``record.json`` and then ``finished`` — the final record, and a marker written last.

A checkpoint holds everything the rest of the run depends on: the model's ``state_dict`` (including the
pieces grown so far: prompt components, LoRA branches, adapters, heads) without its frozen weights, which
``build()`` re-creates (:mod:`.frozen`: the pretrained backbone, fingerprinted), the optimizer's state (its
learning rates include the epoch's schedule factor), the strategy's own state (:mod:`.state`: InfLoRA's
memories, O-LoRA's penalty log, the prompt methods' query cache), Avalanche's clock, the accuracy matrix
so far, the timings, and the state of every global random generator (:mod:`.rng`) — twice in the middle of
an epoch: now, and when the epoch's data order was drawn. It also names the run's precision (``fp32`` or
``bf16``, :mod:`pecft_lib.methods.common.precision`), and a run in another precision refuses to resume from it.

Resuming (``resume=True``) builds a fresh strategy with ``build()`` and

1. re-grows the model to the checkpoint's experiences by replaying ``model.begin_experience`` for the
   finished ones (the experience in progress grows as usual when its training restarts); every value
   these calls draw is overwritten by the checkpoint, and the frozen weights ``build()`` re-created are
   checked against the fingerprints of the run's;
2. at an experience boundary, loads the model, the strategy state and the random state and goes on with
   the next experience (the methods build a fresh optimizer per experience; other strategies get their
   optimizer state back when the next experience starts);
3. in the middle of an experience, restarts its training and, once the model has grown and the
   optimizer is built, loads model, optimizer and strategy state; the epochs finished before the
   checkpoint run over no batch, and the interrupted one re-draws its data order from the saved random
   state, skips (loads without training on) the batches done before the checkpoint, then puts back the
   random state of the checkpoint and trains on the rest.

Random draws inside a batch (augmentation, dropout) therefore continue from where they stopped, and on the
same device the resumed run produces the same accuracy matrix and final weights, bit for bit, as an
uninterrupted one (tested on CPU).

Only strategies whose state is all known can be checkpointed (:func:`check_resumable`): the PEFT methods
(:class:`~pecft_lib.methods.common.ContinualPEFTStrategy`) and Avalanche strategies without stateful
plugins (Naive, JointTraining: the baselines). Replay, EWC and LwF keep plugin state (a buffer, importances,
the previous model) that is not saved; run them with :func:`~pecft_lib.evaluation.run_strategy`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import JointTraining
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.plugins.clock import Clock
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base_sgd import PeriodicEval
from tqdm.auto import tqdm

from ..benchmarks import ContinualBenchmark
from ..errors import ConfigError
from ..evaluation import RunRecord
from ..evaluation.resources import PeakMemory, count_trainable_parameters, hardware, package_versions
from ..evaluation.runner import accuracy_matrix_metric, without_avalanche_deprecations
from ..methods.common import ContinualPEFTModel, ContinualPEFTStrategy, MixedPrecisionPlugin, StatelessPlugin, strategy_precision
from ..methods.train_mask import TrainClassMaskPlugin
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, remove_stale_temporaries
from .frozen import FrozenWeights
from .rng import capture_rng, restore_rng
from .state import load_strategy_state, strategy_state

__all__ = ["FORMAT_VERSION", "Position", "RunFiles", "check_resumable", "run_resumable"]

FORMAT_VERSION = 1
"""Version of the checkpoint layout; a checkpoint of another version is refused."""

_CLOCK_COUNTERS = ("train_iterations", "train_exp_counter", "train_exp_epochs", "train_exp_iterations",
                   "train_epoch_iterations", "total_iterations")
_STATELESS_PLUGINS = (TrainClassMaskPlugin, MixedPrecisionPlugin, StatelessPlugin, EvaluationPlugin, Clock, PeriodicEval)

Build = Callable[[], tuple[Any, ContinualBenchmark, dict[str, Any]]]
"""Builds a fresh ``(strategy, benchmark, record config)``: same config and seed at every call."""


@dataclass(frozen=True)
class RunFiles:
    """The files of a resumable run in ``out_dir``."""

    out_dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def progress(self) -> Path:
        return self.out_dir / "progress.json"

    @property
    def record(self) -> Path:
        return self.out_dir / "record.json"

    @property
    def finished(self) -> Path:
        return self.out_dir / "finished"


@dataclass(frozen=True)
class Position:
    """Where a checkpoint was taken.

    Attributes:
        stage: training stages (experiences) finished, or the index of the one in progress.
        epoch: the epoch in progress (0-based); ``None`` at the end of a stage.
        iteration: iterations of that epoch done; ``None`` at the end of a stage.
    """

    stage: int
    epoch: int | None = None
    iteration: int | None = None

    @property
    def mid_experience(self) -> bool:
        return self.epoch is not None


def check_resumable(strategy: Any) -> None:
    """Refuse a strategy whose state a checkpoint would not hold.

    Raises:
        ConfigError: not an Avalanche supervised strategy, or it has a plugin outside the stateless ones
            (train-time class mask, evaluator, clock, periodic evaluation switched off).
    """
    if not isinstance(strategy, SupervisedTemplate):
        raise ConfigError(f"resumable runs need an Avalanche SupervisedTemplate strategy, "
                          f"got {type(strategy).__name__}")
    stateful = [type(plugin).__name__ for plugin in strategy.plugins
                if not isinstance(plugin, _STATELESS_PLUGINS)
                or (isinstance(plugin, PeriodicEval) and plugin.eval_every >= 0)]
    if stateful:
        raise ConfigError(
            f"{type(strategy).__name__} has plugins whose state checkpoints do not hold: {', '.join(stateful)} "
            "(replay buffers, EWC importances, LwF's previous model, periodic evaluation); run it with "
            "pecft_lib.evaluation.run_strategy, without checkpoints"
        )


def _config_json(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


class _Remaining:
    """The rest of an epoch: an iterator over its batches, advanced past those trained before the checkpoint."""

    def __init__(self, batches: Iterator[Any]):
        self._batches = batches

    def __iter__(self) -> Iterator[Any]:
        return self._batches


class _ResumableRun(SupervisedPlugin):
    """The loop of :func:`run_resumable` and the plugin that checkpoints and restores inside ``strategy.train``.

    It is the last plugin, after Avalanche's clock, so it reads the clock after an iteration is counted.
    """

    def __init__(self, strategy: Any, benchmark: ContinualBenchmark, files: RunFiles, *, name: str,
                 config: dict[str, Any], checkpoint_every: int | None, evaluate_untrained: bool,
                 extra: Callable[[Any], dict[str, Any]] | None):
        super().__init__()
        self.strategy, self.benchmark, self.files = strategy, benchmark, files
        self.name, self.config, self.checkpoint_every = name, config, checkpoint_every
        self.evaluate_untrained, self.extra = evaluate_untrained, extra
        self.metric = accuracy_matrix_metric(strategy)
        self.frozen = FrozenWeights(strategy.model)
        self.joint = isinstance(strategy, JointTraining)
        self.stages: list[Any] = [benchmark.train_stream] if self.joint else list(benchmark.train_stream)
        self.timings: dict[str, list] = {"train_seconds": [], "eval_seconds": [], "peak_memory_mib": [],
                                         "trainable_parameters": []}
        self.peak_memory_kind = ""
        self.checkpoints = {"written": 0, "seconds": 0.0, "bytes": 0}
        self.environment = {"versions": package_versions(), "hardware": hardware()}
        self.precision = strategy_precision(strategy)
        self.stage = 0
        self.stage_start = 0.0
        self.stage_seconds = 0.0  # training seconds of the current stage spent before the resume
        self.epoch_rng: dict[str, Any] | None = None  # random state the current epoch's data order was drawn from
        self.pending: dict[str, Any] | None = None  # mid-experience checkpoint to restore while training
        self.pending_optimizer: dict[str, Any] | None = None  # optimizer state for the next experience
        self.loader: Any = None  # the training loader while an epoch runs on a replacement
        strategy.plugins.append(self)

    # ------------------------------------------------------------------------------------------ the loop

    def run(self, checkpoint: dict[str, Any] | None) -> RunRecord:
        self.metric.reset()
        if checkpoint is not None:
            self._restore(checkpoint)
        elif self.evaluate_untrained:
            self.strategy.eval(self.benchmark.test_stream)
        device = str(self.strategy.device)
        stages = range(self.stage, len(self.stages))
        for self.stage in tqdm(stages, desc=self.name, unit="exp", initial=self.stage, total=len(self.stages)):
            with PeakMemory(device) as memory, without_avalanche_deprecations():
                self.stage_start = time.perf_counter()
                self.strategy.train(self.stages[self.stage])
                self.timings["train_seconds"].append(self.stage_seconds + time.perf_counter() - self.stage_start)
            self.stage_seconds = 0.0
            self.peak_memory_kind = memory.kind
            self.timings["peak_memory_mib"].append(memory.mib)
            self.timings["trainable_parameters"].append(count_trainable_parameters(self.strategy.model))
            start = time.perf_counter()
            self.strategy.eval(self.benchmark.test_stream)
            self.timings["eval_seconds"].append(time.perf_counter() - start)
            self._save(Position(self.stage + 1))
            last = self.stage == len(self.stages) - 1
            self._record("finished" if last else "running").save(self.files.progress)
        record = self._record("finished")
        record.save(self.files.record)
        self.files.finished.write_text(datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n")
        return record

    def _record(self, status: str) -> RunRecord:
        matrix = self.metric.result()[:, :1] if self.joint else self.metric.result()
        extra = self.extra(self.strategy) if self.extra is not None else {}
        return RunRecord.from_arrays(
            self.name,
            matrix,
            self.metric.initial.copy() if self.evaluate_untrained else None,
            config=dict(self.config),
            benchmark=self.benchmark.describe(),
            peak_memory_kind=self.peak_memory_kind,
            status=status,
            extra={**extra, "checkpoints": dict(self.checkpoints)},
            **self.environment,
            **{key: list(values) for key, values in self.timings.items()},
        )

    # ---------------------------------------------------------------------------------------- checkpoints

    def _save(self, position: Position) -> None:
        start = time.perf_counter()
        model, clock = self.strategy.model, self.strategy.clock
        self.frozen.update(model, self.strategy.optimizer)
        frozen = self.frozen.of(model)
        checkpoint = {
            "format_version": FORMAT_VERSION,
            "config_json": _config_json(self.config),
            "precision": self.precision,
            "position": asdict(position),
            "model": {key: value for key, value in model.state_dict().items() if key not in frozen},
            "frozen": frozen,
            "optimizer": self.strategy.optimizer.state_dict(),
            "strategy": strategy_state(self.strategy),
            "clock": {counter: getattr(clock, counter) for counter in _CLOCK_COUNTERS},
            "accuracy": {"matrix": torch.from_numpy(self.metric.matrix.copy()),
                         "initial": torch.from_numpy(self.metric.initial.copy()), "stage": self.metric.stage},
            "timings": self.timings,
            "peak_memory_kind": self.peak_memory_kind,
            "stage_seconds": (self.stage_seconds + time.perf_counter() - self.stage_start
                              if position.mid_experience else 0.0),
            "checkpoints": self.checkpoints,
            "rng": capture_rng(),
            "epoch_rng": self.epoch_rng if position.mid_experience else None,
        }
        atomic_save(checkpoint, self.files.checkpoint)
        self.checkpoints["written"] += 1
        self.checkpoints["seconds"] += time.perf_counter() - start
        self.checkpoints["bytes"] = self.files.checkpoint.stat().st_size

    def _check(self, checkpoint: dict[str, Any]) -> Position:
        path = self.files.checkpoint
        if checkpoint.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path} has checkpoint format {checkpoint.get('format_version')}, this library "
                                  f"reads {FORMAT_VERSION}; finish the run with the library version that started it")
        precision = checkpoint.get("precision", "fp32")  # checkpoints written before the option ran in float32
        if precision != self.precision:
            raise CheckpointError(f"{path} was written by a {precision} run, this run is {self.precision}; resume it "
                                  f"with precision: {precision} in the run's config, or choose another output folder")
        if checkpoint["config_json"] != _config_json(self.config):
            raise CheckpointError(f"{path} was written by a run with another configuration; resume with the same "
                                  "configuration and seed, or choose another output folder")
        position = Position(**checkpoint["position"])
        if position.stage > len(self.stages):
            raise CheckpointError(f"{path} is at stage {position.stage}, but the benchmark has {len(self.stages)}")
        return position

    def _load_model(self, checkpoint: dict[str, Any]) -> None:
        model = self.strategy.model
        self.frozen.restrict(model, checkpoint["frozen"])
        keys = model.load_state_dict(checkpoint["model"], strict=False)
        if set(keys.missing_keys) != set(checkpoint["frozen"]) or keys.unexpected_keys:
            raise CheckpointError(
                f"the checkpoint's model does not fit this model (missing: {sorted(keys.missing_keys)[:3]}, "
                f"unexpected: {keys.unexpected_keys[:3]}); resume with the same method and configuration")

    def _set_clock(self, counters: dict[str, int]) -> None:
        for counter, value in counters.items():
            setattr(self.strategy.clock, counter, value)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        position = self._check(checkpoint)
        accuracy = checkpoint["accuracy"]
        self.metric.matrix = accuracy["matrix"].numpy().copy()
        self.metric.initial = accuracy["initial"].numpy().copy()
        self.metric.stage = accuracy["stage"]
        self.timings = {key: list(values) for key, values in checkpoint["timings"].items()}
        self.peak_memory_kind = checkpoint["peak_memory_kind"]
        self.checkpoints = dict(checkpoint["checkpoints"])
        self._set_clock(checkpoint["clock"])
        self.stage = position.stage
        model = self.strategy.model
        if isinstance(model, ContinualPEFTModel) and not self.joint:
            for experience in self.stages[: position.stage]:
                model.begin_experience(sorted(experience.classes_in_this_experience))
        if position.mid_experience:
            self.pending = checkpoint
            self.stage_seconds = checkpoint["stage_seconds"]
            return
        self._load_model(checkpoint)
        load_strategy_state(self.strategy, checkpoint["strategy"])
        if not isinstance(self.strategy, ContinualPEFTStrategy):  # the methods build a fresh one per experience
            self.pending_optimizer = checkpoint["optimizer"]
        restore_rng(checkpoint["rng"])

    # ------------------------------------------------------------------------------- plugin callbacks

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        """The model has grown and the optimizer is built: load a mid-experience checkpoint into them."""
        self.frozen.update(strategy.model, strategy.optimizer)
        if self.pending is not None:
            self._load_model(self.pending)
            strategy.optimizer.load_state_dict(self.pending["optimizer"])
            load_strategy_state(strategy, self.pending["strategy"])
        elif self.pending_optimizer is not None:
            strategy.optimizer.load_state_dict(self.pending_optimizer)
            self.pending_optimizer = None

    def before_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        """Remember the random state the epoch's data order is drawn from; when resuming, skip what is done."""
        if self.pending is None:
            self.epoch_rng = capture_rng()
            return
        position = Position(**self.pending["position"])
        self.loader = strategy.dataloader
        if strategy.clock.train_exp_epochs < position.epoch:
            strategy.dataloader = []  # trained before the checkpoint
            return
        self.epoch_rng = self.pending["epoch_rng"]
        restore_rng(self.epoch_rng)
        batches = iter(self.loader)
        for done in range(position.iteration):
            if next(batches, None) is None:
                raise CheckpointError(
                    f"epoch {position.epoch} of stage {position.stage} has {done} batches, but the checkpoint was "
                    f"taken after {position.iteration}: the training data or batch size changed")
        restore_rng(self.pending["rng"])
        self._set_clock(self.pending["clock"])
        strategy.dataloader = _Remaining(batches)
        self.pending = None

    def after_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self.loader is not None:
            strategy.dataloader, self.loader = self.loader, None

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        clock = strategy.clock
        if self.checkpoint_every and clock.train_iterations % self.checkpoint_every == 0:
            self._save(Position(self.stage, clock.train_exp_epochs, clock.train_epoch_iterations))


def run_resumable(
    build: Build,
    out_dir: str | Path,
    *,
    name: str,
    checkpoint_every: int | None = None,
    resume: bool = False,
    evaluate_untrained: bool = False,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> RunRecord:
    """Run ``build()``'s strategy over its benchmark with checkpoints in ``out_dir``, or resume it there.

    Args:
        build: returns a fresh ``(strategy, benchmark, record config)`` — the same at every call (same
            config, same seed); called once, after ``out_dir`` has been checked.
        out_dir: the run's folder (:class:`RunFiles`).
        name: label of the run in its record.
        checkpoint_every: also checkpoint every this many training iterations (counted over the whole
            run); ``None``: only at the end of every experience.
        resume: continue the run in ``out_dir`` from its checkpoint; a finished run returns its record, a
            folder without checkpoint starts the run.
        evaluate_untrained: evaluate before training (forward transfer), as ``run_strategy``.
        extra: ``strategy -> dict`` of method diagnostics stored in the record's ``extra`` (e.g. InfLoRA's
            ``{"subspace": strategy.history}``); ``extra["checkpoints"]`` reports how many checkpoints were
            written, their total seconds and the size of the last one in bytes.

    Returns:
        The run's record, also written to ``out_dir/record.json``.

    Raises:
        CheckpointError: ``out_dir`` holds a run and ``resume`` is false, or its checkpoint is unreadable or
            was written by another configuration.
        ConfigError: the strategy keeps state that checkpoints do not hold (:func:`check_resumable`), or
            ``checkpoint_every`` is not positive.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be a positive number of iterations or None, got {checkpoint_every}")
    files = RunFiles(Path(out_dir))
    if files.finished.exists():
        if resume:
            return RunRecord.load(files.record)
        raise CheckpointError(f"{files.out_dir} holds a finished run ({files.record}); choose another output folder")
    remove_stale_temporaries(files.checkpoint)
    checkpoint = None
    if files.checkpoint.exists():
        if not resume:
            raise CheckpointError(f"{files.out_dir} holds an unfinished run ({files.checkpoint}); resume it or "
                                  "choose another output folder")
        checkpoint = load_checkpoint(files.checkpoint)
    strategy, benchmark, config = build()
    check_resumable(strategy)
    run = _ResumableRun(strategy, benchmark, files, name=name, config=config, checkpoint_every=checkpoint_every,
                        evaluate_untrained=evaluate_untrained, extra=extra)
    return run.run(checkpoint)
