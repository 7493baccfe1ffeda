"""Train or load: the committed records of the ``medium`` profile.

A medium comparison run takes minutes to tens of minutes on two CPU cores — too long for a chapter that CI
re-executes, short enough to be re-made by anyone. Each (benchmark, run, seed) is therefore run once by
:func:`produce` (``pecft comparison --profile medium``), its :class:`~pecft_lib.evaluation.RunRecord` written to
``data/records/<profile>/comparison/<benchmark>/<run>/seed<seed>.json`` with its provenance (command, commit,
package versions, CPU, wall time), and committed; chapters call :func:`load_stored`. :func:`produce` skips
what is already stored, so the grid can be made in parts and an interrupted grid goes on where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .benchmarks import data_identity
from .comparison import ComparisonBenchmark, ComparisonConfig, run_one, select_runs
from .errors import ConfigError, DatasetNotFoundError
from .evaluation import RunRecord
from .evaluation.resources import cpu_model
from .paths import REPO_ROOT


def records_root(profile: str, kind: str = "comparison") -> Path:
    """``data/records/<profile>/<kind>`` of the checkout (``kind``: ``comparison`` or ``lr_selection``; stored
    records are not part of the wheel)."""
    if REPO_ROOT is None:
        raise DatasetNotFoundError("stored records live in a checkout of the repository (data/records/); clone it, "
                                   "or produce them with `pecft comparison --profile medium --out FOLDER`")
    return REPO_ROOT / "data" / "records" / profile / kind


def safe_name(run: str) -> str:
    """``run`` as a file or folder name (characters other than letters, digits, ``_.-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run)


def record_path(root: Path, benchmark: str, run: str, seed: int) -> Path:
    """Where the record of ``run`` with ``seed`` on ``benchmark`` is stored under ``root``."""
    return root / benchmark / safe_name(run) / f"seed{seed}.json"


def _commit() -> str | None:
    if REPO_ROOT is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("+uncommitted changes" if dirty else "") if out.returncode == 0 else None


def grid_settings(setup: ComparisonBenchmark, run: str) -> dict[str, Any]:
    """What decides ``run``'s result (backbone, benchmark and the sha256 of its data files, schedule, the run's
    overrides or baseline config, the presets' profile): stored with every record and compared when a stored record is used,
    so that a record made under other settings is never taken for a current one. A baseline's ``precision`` is
    among them only when it is not ``fp32``, so records made before the option existed (all float32) still match."""
    settings = {"backbone": setup.backbone, "benchmark": dataclasses.asdict(setup.benchmark),
                "data": data_identity(setup.benchmark.name), "epochs": setup.epochs, "batch_size": setup.batch_size,
                "presets": setup.presets}
    if run in setup.baselines:
        settings["baseline"] = dataclasses.asdict(setup.baselines[run])
        if settings["baseline"]["precision"] == "fp32":
            del settings["baseline"]["precision"]
    else:
        settings["method"], settings["overrides"] = setup.method_of(run)
    settings["benchmark"].pop("seed")  # each record's seed is checked on its own
    return json.loads(json.dumps(settings))  # as it reads back from a record (tuples become lists)


def check_settings(record: RunRecord, setup: ComparisonBenchmark, run: str, path: Path) -> None:
    """Raise :class:`~pecft_lib.errors.ConfigError` if the record at ``path`` was made under other settings."""
    stored, current = record.extra.get("grid_settings"), grid_settings(setup, run)
    if stored != current:
        changed = sorted(k for k in set(current) | set(stored or {}) if (stored or {}).get(k) != current.get(k))
        raise ConfigError(f"{path} was made with other settings of {run} ({', '.join(changed)} differ from "
                          "configs/comparison.yaml); delete it to re-run it with the current settings, or restore "
                          "the settings it was made with")


def provenance(wall_seconds: float) -> dict[str, Any]:
    """How a stored record was made: the ``pecft`` command line (``None`` when not run from it), the commit
    (with ``+uncommitted changes`` if the checkout differed from it), the CPU and the wall time."""
    return {
        "command": " ".join(["pecft", *sys.argv[1:]]) if Path(sys.argv[0]).name == "pecft" else None,
        "commit": _commit(),
        "cpu": cpu_model(),
        "wall_seconds": round(wall_seconds, 1),
    }


def produce(config: ComparisonConfig, benchmark: str, root: Path, profile: str,
            runs: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> list[Path]:
    """Run every (run, seed) of ``config.benchmarks[benchmark]`` whose record is not stored under ``root`` yet,
    and store it; returns the paths written. Each record's ``extra["provenance"]`` holds the command line, the
    commit, the CPU and the wall time (package versions and hardware are fields of every record)."""
    setup, runs = select_runs(config, benchmark, runs)
    written = []
    for seed in (seeds if seeds is not None else config.seeds):
        todo = []
        for run in runs:
            path = record_path(root, benchmark, run, seed)
            if path.is_file():
                check_settings(RunRecord.load(path), setup, run, path)  # a stale record is refused, not skipped
            else:
                todo.append(run)
        if not todo:
            continue
        data = dataclasses.replace(setup.benchmark, seed=seed).build()
        for run in todo:
            start = time.perf_counter()
            record = run_one(setup, run, seed, profile, benchmark=data)
            record.extra["provenance"] = provenance(time.perf_counter() - start)
            record.extra["grid_settings"] = grid_settings(setup, run)
            written.append(record.save(record_path(root, benchmark, run, seed)))
    return written


def provenance_summary(records: Sequence[RunRecord]) -> str:
    """One line on how stored records were made: how many, on which CPUs, their total wall time, their commits."""
    made = [record.extra["provenance"] for record in records]
    cpus = sorted({entry["cpu"] for entry in made})
    commits = sorted({(entry["commit"] or "unknown")[:7] for entry in made})
    hours = sum(entry["wall_seconds"] for entry in made) / 3600
    return (f"{len(records)} stored records; CPU: {', '.join(cpus)}; {hours:.1f} hours of training and evaluation "
            f"in all; commits: {', '.join(commits)}")


def load_stored(config: ComparisonConfig, benchmark: str, root: Path, runs: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None) -> list[RunRecord]:
    """The stored records of ``benchmark`` (every run and seed of ``config`` unless narrowed), in config order.

    Raises :class:`~pecft_lib.errors.DatasetNotFoundError` naming the command that produces what is missing, and
    :class:`~pecft_lib.errors.ConfigError` when a stored record was made with another configuration."""
    setup = config.benchmarks[benchmark]
    records, missing = [], []
    for seed in (seeds if seeds is not None else config.seeds):
        for run in (runs if runs is not None else setup.runs):
            path = record_path(root, benchmark, run, seed)
            if not path.is_file():
                missing.append(f"{run} (seed {seed})")
                continue
            record = RunRecord.load(path)
            check_settings(record, setup, run, path)
            if record.benchmark.get("name") != setup.benchmark.name or int(record.config["seed"]) != seed:
                raise ConfigError(f"{path} holds a run of {record.benchmark.get('name')} with seed "
                                  f"{record.config['seed']}, not {setup.benchmark.name} with seed {seed}")
            records.append(record)
    if missing:
        raise DatasetNotFoundError(
            f"no stored record for {', '.join(missing)} of {benchmark} under {root}; produce them with "
            f"`pecft comparison --profile medium --benchmark {benchmark}` (resumable, skips what is stored)")
    return records
