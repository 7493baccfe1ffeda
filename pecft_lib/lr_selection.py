"""One rule for every run of a comparison: the learning rate is chosen on a validation stream carved from the
training data, never on the test stream.

For each run (method or baseline; the prototype classifier has no learning rate) and each candidate rate, the run
is trained on the benchmark with ``validation_per_class`` examples per class held out of every training
experience, and scored by its final average accuracy on them (``A_last``). The best rate wins (the smaller one
on a tie). Every trial is stored as a :class:`~pecft_lib.evaluation.RunRecord` under
``<root>/<benchmark>/<run>/lr<rate>.json`` — the search is resumable trial by trial — and the choice with all
scores in ``<root>/<benchmark>/selection.json``. The chosen rates are then written into the comparison's
config (``configs/comparison.yaml``), where a test checks that they are the stored choices.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from .comparison import ComparisonBenchmark, ComparisonConfig, run_one
from .errors import ConfigError, DatasetNotFoundError, UnknownNameError
from .evaluation import RunRecord
from .stored_records import check_settings, grid_settings, provenance, safe_name


def with_learning_rate(setup: ComparisonBenchmark, run: str, lr: float) -> ComparisonBenchmark:
    """``setup`` with ``run`` trained at learning rate ``lr`` (``optim.lr`` of a method, ``lr`` of a baseline)."""
    if run in setup.baselines:
        return dataclasses.replace(setup, baselines={**setup.baselines, run: dataclasses.replace(setup.baselines[run], lr=lr)})
    return dataclasses.replace(setup, overrides={**setup.overrides, run: {**setup.overrides.get(run, {}), "optim.lr": lr}})


def on_validation(setup: ComparisonBenchmark, validation_per_class: int) -> ComparisonBenchmark:
    """``setup`` evaluated on ``validation_per_class`` examples per class carved from the training data (the
    benchmark must accept ``validation_per_class``, as ``five_domains``, ``split_mnist`` and ``text_domains`` do)."""
    options = {**setup.benchmark.options, "validation_per_class": validation_per_class}
    return dataclasses.replace(setup, benchmark=dataclasses.replace(setup.benchmark, options=options))


def tunable_runs(setup: ComparisonBenchmark) -> list[str]:
    """The runs with a learning rate of their own: every method and every baseline but the prototype classifier
    (a control runs at the rate of the method it controls)."""
    return [run for run in setup.runs
            if run not in setup.controls and (run not in setup.baselines or setup.baselines[run].kind != "prototype")]


def select_learning_rates(config: ComparisonConfig, benchmark: str, lrs: Sequence[float], root: Path, profile: str,
                          validation_per_class: int, runs: Sequence[str] | None = None, seed: int = 0) -> dict:
    """Choose each run's learning rate among ``lrs`` on the validation stream (module docstring); returns and
    stores ``{run: {"scores": {lr: A_last}, "chosen": lr}}`` (scores in [0, 1])."""
    if benchmark not in config.benchmarks:
        raise UnknownNameError("comparison benchmark", benchmark, list(config.benchmarks))
    if not lrs:
        raise ConfigError("give at least one candidate learning rate")
    setup = on_validation(config.benchmarks[benchmark], validation_per_class)
    candidates = tunable_runs(setup)
    runs = list(runs) if runs is not None else candidates
    for run in runs:
        if run not in candidates:
            raise UnknownNameError("run with a learning rate", run, candidates)
    data = dataclasses.replace(setup.benchmark, seed=seed).build()
    selection_file = selection_path(root, benchmark)
    selection = json.loads(selection_file.read_text()) if selection_file.is_file() else {}
    for run in runs:
        scores = {}
        for lr in sorted(lrs):
            path = root / benchmark / safe_name(run) / f"lr{lr:g}.json"
            trial_setup = with_learning_rate(setup, run, lr)
            if path.is_file():
                record = RunRecord.load(path)
                check_settings(record, trial_setup, run, path)
            else:
                start = time.perf_counter()
                record = run_one(trial_setup, run, seed, profile, benchmark=data, diagnose=False)  # scored by A_last only
                record.extra["provenance"] = provenance(time.perf_counter() - start)
                record.extra["grid_settings"] = grid_settings(trial_setup, run)
                record.save(path)
            scores[f"{lr:g}"] = record.metrics["A_last"]
        best = max(scores.values())
        chosen = min(float(lr) for lr, score in scores.items() if score == best)
        selection[run] = {"scores": scores, "chosen": chosen, "validation_per_class": validation_per_class,
                          "seed": seed}
        selection = {name: selection[name] for name in sorted(selection, key=_config_order(candidates))}
        selection_file.parent.mkdir(parents=True, exist_ok=True)
        selection_file.write_text(json.dumps(selection, indent=2) + "\n")
    return selection


def _config_order(runs: Sequence[str]):
    """Sort key: the runs in the comparison's order, any other name after them by name."""
    return lambda name: (runs.index(name), "") if name in runs else (len(runs), name)


def selection_path(root: Path, benchmark: str) -> Path:
    """Where the choice for ``benchmark`` is stored under ``root``."""
    return root / benchmark / "selection.json"


def load_selection(root: Path, benchmark: str) -> dict:
    """The stored choice for ``benchmark``, as :func:`select_learning_rates` returned it."""
    path = selection_path(root, benchmark)
    if not path.is_file():
        raise DatasetNotFoundError(f"no learning-rate selection stored at {path}; make it with "
                                   f"`pecft select-lr --benchmark {benchmark} --lrs ...`")
    return json.loads(path.read_text())


def selection_table(root: Path, benchmark: str) -> pd.DataFrame:
    """The stored choice for ``benchmark`` (:func:`load_selection`): one row per run, its validation ``A_last``
    (%) at each candidate rate, and the chosen rate."""
    selection = load_selection(root, benchmark)
    rows = {run: {**{f"lr {lr}": round(100 * score, 1) for lr, score in choice["scores"].items()},
                  "chosen": choice["chosen"]}
            for run, choice in selection.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")
