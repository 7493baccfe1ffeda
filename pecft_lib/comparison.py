"""All methods side by side: every method and baseline on one benchmark, over several seeds.

The grid is described by ``configs/comparison.yaml``. A **method** is a registry address
(:mod:`pecft_lib.experiments`, e.g. ``"l2p:vision"``): it runs its own preset — method settings, optimizer,
learning rate — with the comparison's benchmark, backbone, epochs and batch size written over it, so that
every run sees the same data for the same number of epochs. A **baseline** is a
:class:`~pecft_lib.methods.baselines.BaselineConfig` (sequential fine-tuning, sequential LoRA, the SimpleCIL
prototype classifier, joint training). Seed ``s`` sets both the benchmark (class order, drawn samples) and
the run.

:func:`run_comparison` returns one :class:`~pecft_lib.evaluation.RunRecord` per (run, seed);
:func:`summary_table` turns them into mean ± standard deviation over seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .benchmarks import BenchmarkConfig, ContinualBenchmark
from .config import load_config
from .errors import ConfigError, UnknownNameError
from .evaluation import RunRecord, run_strategy
from .evaluation.aggregate import group_by_run, mean_train_seconds, trainable_parameters
from .experiments import Sources, resolve
from .mechanisms import mechanism_diagnostics
from .methods.baselines import BaselineConfig, prepare_baseline
from .repro import current_profile


@dataclass
class Control:
    """A method run with one mechanism changed — the ablation its diagnostic is read against (DualPrompt with
    the JAX init, InfLoRA with a random ``down``, O-LoRA without its orthogonality, i.e. IncLoRA).

    Attributes:
        of: the method it controls; the control runs that method's experiment with its overrides (learning
            rate included, so that a control is never tuned on its own).
        set: the dotted overrides that change the mechanism.
    """

    of: str
    set: dict[str, Any]


@dataclass
class ComparisonBenchmark:
    """One benchmark of the comparison and the runs on it.

    Attributes:
        backbone: the backbone of every run.
        benchmark: the benchmark; its ``seed`` is replaced by each comparison seed.
        methods: display name → registry address of the method's experiment (``"l2p:vision"``).
        baselines: display name → baseline config.
        epochs, batch_size: written over every method's ``optim`` section; ``None`` keeps each preset's own
            (the paper recipes differ in both).
        overrides: display name → further dotted overrides of that method's experiment.
        controls: display name → a :class:`Control` of one of the methods.
        presets: the profile whose method presets the runs start from (``None``: the comparison's own profile).
            The ``medium`` comparison starts from the ``quick`` presets and writes a longer schedule over them.
    """

    backbone: str
    benchmark: BenchmarkConfig
    methods: dict[str, str]
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    controls: dict[str, Control] = field(default_factory=dict)
    presets: str | None = None

    def __post_init__(self) -> None:
        for first, second in ((self.methods, self.baselines), (self.methods, self.controls),
                              (self.controls, self.baselines)):
            clash = set(first) & set(second)
            if clash:
                raise ConfigError(f"run names must be unique; {sorted(clash)} names two runs")
        stray = set(self.overrides) - set(self.methods)
        if stray:
            raise UnknownNameError("method to override", sorted(stray)[0], list(self.methods))
        for control in self.controls.values():
            if control.of not in self.methods:
                raise UnknownNameError("method to control", control.of, list(self.methods))

    @property
    def runs(self) -> list[str]:
        """Every run in config order: methods, their controls, baselines."""
        return [*self.methods, *self.controls, *self.baselines]

    def method_of(self, run: str) -> tuple[str, dict[str, Any]]:
        """The experiment address and the dotted overrides of a method or control ``run``."""
        if run in self.controls:
            control = self.controls[run]
            return self.methods[control.of], {**self.overrides.get(control.of, {}), **control.set}
        return self.methods[run], self.overrides.get(run, {})


@dataclass
class ComparisonConfig:
    """The ``quick``, ``medium`` or ``paper`` section of ``configs/comparison.yaml``."""

    seeds: list[int]
    benchmarks: dict[str, ComparisonBenchmark]

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("comparison seeds is empty; give at least one seed, e.g. seeds: [0, 1, 2]")


def load_comparison(profile: str | None = None) -> ComparisonConfig:
    """``configs/comparison.yaml`` in ``profile`` (default: ``$PECFT_PROFILE``, else quick)."""
    return load_config("comparison", ComparisonConfig, profile)


def method_overrides(setup: ComparisonBenchmark, run: str, seed: int) -> dict[str, Any]:
    """The dotted overrides that put method ``run`` on the comparison's benchmark, backbone and schedule."""
    overrides: dict[str, Any] = {
        "backbone": setup.backbone,
        "benchmark": dataclasses.asdict(dataclasses.replace(setup.benchmark, seed=seed)),
    }
    if setup.epochs is not None:
        overrides["optim.epochs"] = setup.epochs
    if setup.batch_size is not None:
        overrides["optim.batch_size"] = setup.batch_size
    return {**overrides, **setup.method_of(run)[1]}


EVALUATION = {"evaluate_untrained": False, "evaluate_future": False}
"""After each stage only the experiences trained so far are evaluated: every metric the comparison reports is
unchanged, forward transfer (which needs the untrained and the not-yet-trained accuracies) is not measured."""


def run_one(setup: ComparisonBenchmark, run: str, seed: int, profile: str | None = None,
            benchmark: ContinualBenchmark | None = None, stop_after: int | None = None,
            diagnose: bool = True) -> RunRecord:
    """Run ``run`` (a method or a baseline of ``setup``) with ``seed`` and return its record; the record's
    config holds the seed and, for a method, its resolved address. ``benchmark`` is the seed's benchmark if
    already built (it is the same for every run of a seed; built here otherwise); ``stop_after`` trains only
    the first experiences (see :func:`~pecft_lib.evaluation.run_strategy`). With ``diagnose``, a finished method
    run stores the measurement of its mechanism on the test stream in ``record.extra["diagnostics"]``
    (:func:`~pecft_lib.mechanisms.mechanism_diagnostics`)."""
    if run not in setup.runs:
        raise UnknownNameError("run", run, setup.runs)
    if benchmark is None:
        benchmark = dataclasses.replace(setup.benchmark, seed=seed).build()
    if run in setup.baselines:
        strategy, benchmark, config = prepare_baseline(setup.baselines[run], benchmark, name=run,
                                                       backbone=setup.backbone, seed=seed)
    else:
        experiment = resolve(setup.method_of(run)[0], setup.presets or profile or current_profile(),
                             method_overrides(setup, run, seed), seed)
        strategy, benchmark, config = experiment.prepare(Sources(benchmark=benchmark))
        config = {**config, "address": experiment.address, "seed": seed}
    record = run_strategy(strategy, benchmark, name=run, config=config, stop_after=stop_after, **EVALUATION)
    if diagnose and record.status == "finished":
        diagnostics = mechanism_diagnostics(strategy.model, benchmark)
        if diagnostics is not None:
            record.extra["diagnostics"] = diagnostics
    return record


def select_runs(config: ComparisonConfig, benchmark: str,
                runs: Sequence[str] | None = None) -> tuple[ComparisonBenchmark, list[str]]:
    """The setup of ``benchmark`` and the runs asked for (default: all), each checked to exist."""
    if benchmark not in config.benchmarks:
        raise UnknownNameError("comparison benchmark", benchmark, list(config.benchmarks))
    setup = config.benchmarks[benchmark]
    runs = list(runs) if runs is not None else setup.runs
    for run in runs:
        if run not in setup.runs:
            raise UnknownNameError("run", run, setup.runs)
    return setup, runs


def run_comparison(
    config: ComparisonConfig,
    benchmark: str,
    runs: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    profile: str | None = None,
) -> list[RunRecord]:
    """Every (run, seed) of ``config.benchmarks[benchmark]`` (default: all runs, the config's seeds), seed
    by seed, with a progress bar over the grid."""
    setup, runs = select_runs(config, benchmark, runs)
    seeds = list(seeds if seeds is not None else config.seeds)
    records = []
    with tqdm(total=len(runs) * len(seeds), desc=f"comparison ({benchmark})") as bar:
        for seed in seeds:
            data = dataclasses.replace(setup.benchmark, seed=seed).build()  # one build per seed, shared by its runs
            for run in runs:
                records.append(run_one(setup, run, seed, profile, benchmark=data))
                bar.update()
    return records


SUMMARY_METRICS = {"A_last": "A_last (%)", "A_mean": "Ā (%)", "forgetting_max": "forgetting, max def. (%)"}


def _seed(record: RunRecord) -> int:
    return int(record.config["seed"])


def summary_table(records: Sequence[RunRecord], costs: bool = False) -> pd.DataFrame:
    """One row per run: each metric as ``mean ± std`` over seeds in percent (population std, 1 decimal),
    the number of seeds and the trainable parameters per stage.

    ``costs=True`` adds the mean training time over seeds (seconds, all stages); it varies from run to run
    and machine to machine, so keep it out of outputs that must be reproduced exactly.
    """
    rows = {}
    train_seconds = mean_train_seconds(records)
    for name, group in group_by_run(records).items():
        seeds = sorted(_seed(r) for r in group)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"run {name!r} has two records for one seed: {seeds}")
        row: dict[str, Any] = {}
        for key, label in SUMMARY_METRICS.items():
            values = [r.metrics.get(key) for r in group]
            if any(v is None for v in values):
                row[label] = "–"
            else:
                row[label] = f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"
        row["seeds"] = len(group)
        row["trainable params"] = trainable_parameters(group[0])
        if costs:
            row["train time (s)"] = round(train_seconds[name], 1)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


def grid_table(config: ComparisonConfig, benchmark: str, profile: str | None = None) -> pd.DataFrame:
    """What each run of ``benchmark`` is: its source (a method's experiment address or a baseline's kind and
    tuning), learning rate, epochs and batch size, as they will run (overrides applied)."""
    setup = config.benchmarks[benchmark]
    rows = {}
    for run in [*setup.methods, *setup.controls]:
        experiment = resolve(setup.method_of(run)[0], setup.presets or profile or current_profile(),
                             method_overrides(setup, run, config.seeds[0]))
        optim = experiment.config.optim
        rows[run] = {"what": f"method {experiment.address}", "lr": optim.lr, "epochs": optim.epochs,
                     "batch": optim.batch_size}
    for run, baseline in setup.baselines.items():
        trained = {"full": "whole backbone", "lora": f"LoRA r={baseline.tuning.lora_rank}",
                   "linear_probe": "nothing (frozen backbone)"}[baseline.tuning.method]
        prototype = baseline.kind == "prototype"
        rows[run] = {"what": f"baseline, {baseline.kind}: {trained}" + (", class means" if prototype else " + head"),
                     "lr": None if prototype else baseline.lr, "epochs": baseline.epochs,
                     "batch": baseline.batch_size}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")
