"""The ``pecft`` command: list, run and resume the library's experiments.

Usage::

    pecft list [--profile quick|paper]
    pecft run METHOD[:EXPERIMENT][/RUN] [--profile quick|paper] [--set KEY=VALUE ...] [--seed N] [--out DIR]
              [--force] [--dry-run [--dry-run-experiences K]] [--checkpoint-every N]
    pecft resume DIR [--checkpoint-every N]
    pecft comparison [--profile medium] [--benchmark NAME ...] [--runs NAME ...] [--seeds N ...] [--out DIR]
    pecft select-lr --benchmark NAME --lrs LR ... [--profile medium] [--validation-per-class N] [--runs NAME ...]

Examples: ``pecft run l2p:vision`` (quick profile), ``pecft run inflora:cifar100 --profile paper``,
``pecft run l2p:vision/SeqFT --set baselines.SeqFT.lr=1e-4`` (keys are relative to the experiment; see
:mod:`pecft_lib.experiments` for the addresses).

A run writes into its output folder (default ``runs/<profile>/<method>/<experiment>/<run>``) the resolved
experiment (``experiment.yaml``, all that ``pecft resume`` needs), the result record with the accuracy matrix,
rewritten after every experience (``record.json``, a :class:`~pecft_lib.evaluation.RunRecord`), and, through
:func:`~pecft_lib.training.run_resumable`, the progress and checkpoints from which an interrupted run
continues exactly where it stopped.

``pecft comparison`` produces the stored records of the comparison grid (``configs/comparison.yaml``), by
default the ``medium`` profile into ``data/records/medium/comparison/``: one record per (benchmark, run, seed),
skipping those already stored, so that the grid can be made in parts (:mod:`pecft_lib.stored_records`).
``pecft select-lr`` chooses each run's learning rate on a validation stream carved from the training data
(:mod:`pecft_lib.lr_selection`), resumable trial by trial, into ``data/records/medium/lr_selection/``.

Several GPUs (data parallel, one process per GPU)::

    accelerate launch --num_processes 4 -m pecft_lib.cli run inflora:cifar100 --profile paper

Every process builds the same seeded model; each trains on its shard of the data and the gradients are
averaged before each optimizer step (:class:`~pecft_lib.distributed.GradientAveraging`); only the main
process writes files. A single process (``pecft run`` without ``accelerate``) runs exactly as before.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from .backbones import BACKBONES
from .benchmarks import BENCHMARKS
from .distributed import GradientAveraging
from .dry_run import dry_experiment, prepare_dry, replace_fields
from .errors import ConfigError, PecftError, UnknownNameError
from .evaluation import RunRecord, run_strategy
from .experiments import METHODS, Experiment, catalogue, resolve
from .repro import PROFILES, current_profile
from .training import RunFiles, check_resumable, run_resumable

EXPERIMENT_FILE = "experiment.yaml"
RECORD_FILE = "record.json"
SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""``1e-3``: a float, although YAML 1.1 (PyYAML) reads it as a string."""


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=1e-3", "method.layers=[0, 1]"]`` → ``{"optim.lr": 0.001, "method.layers": [0, 1]}``;
    values are parsed as YAML (``null``, ``true``, numbers, lists, mappings, else strings)."""
    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=0.01), got {pair!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: {text!r} is not a YAML value ({err})") from err
        overrides[key.strip()] = float(value) if isinstance(value, str) and SCIENTIFIC.fullmatch(value) else value
    return overrides


def default_out_dir(experiment: Experiment, dry_run: bool) -> Path:
    folder = Path("runs") / ("dry-run" if dry_run else experiment.profile)
    return folder / experiment.method / experiment.experiment / experiment.run


def is_finished(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a finished run (its marker, or a record with ``status: finished``)."""
    files = RunFiles(out_dir)
    if files.finished.exists():
        return True
    record = files.record
    return record.is_file() and json.loads(record.read_text()).get("status") == "finished"


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse a folder holding another run, or other files; with ``force``, remove a run's files (and nothing
    else)."""
    files = RunFiles(out_dir)
    if force:
        for path in (out_dir / EXPERIMENT_FILE, files.finished, files.record, files.progress, files.checkpoint):
            path.unlink(missing_ok=True)
        return
    if not any(path.exists() for path in (out_dir / EXPERIMENT_FILE, files.record, files.checkpoint)):
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise ConfigError(f"{out_dir} is not empty and holds no run; choose a new or empty --out, or pass "
                              "--force to write the run's files next to what is there (nothing is deleted)")
        return
    if is_finished(out_dir):
        raise ConfigError(f"{out_dir} already holds a finished run; choose another --out, or pass --force to "
                          "overwrite it")
    raise ConfigError(f"{out_dir} holds an unfinished run; continue it with `pecft resume {out_dir}`, or pass "
                      "--force to start over")


# ------------------------------------------------------------------------------------------------ execution


@dataclass(frozen=True)
class RunOptions:
    """How an experiment is run: as a dry run (training its first ``dry_run_experiences``, default all) or
    for real, and how often it checkpoints."""

    dry_run: bool = False
    dry_run_experiences: int | None = None
    checkpoint_every: int | None = None


def save_experiment(out_dir: Path, experiment: Experiment, options: RunOptions) -> None:
    """Write ``experiment.yaml``: everything ``pecft resume`` needs, independent of the config files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {"experiment": experiment.to_dict(), "options": asdict(options)}
    (out_dir / EXPERIMENT_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))


def load_saved(out_dir: Path) -> tuple[Experiment, RunOptions]:
    """The experiment and options saved by :func:`save_experiment`."""
    path = out_dir / EXPERIMENT_FILE
    if not path.is_file():
        raise ConfigError(f"{out_dir} holds no run to resume ({EXPERIMENT_FILE} is missing); start one with "
                          f"`pecft run CONFIG --out {out_dir}`")
    saved = yaml.safe_load(path.read_text())
    return Experiment.from_dict(saved["experiment"]), RunOptions(**saved["options"])


def placed(experiment: Experiment, device: torch.device, processes: int, dry_run: bool) -> Experiment:
    """The experiment on this process's device: under ``accelerate launch`` with several processes, each uses
    its own; a dry run without a GPU runs on the CPU; otherwise the config's devices stay."""
    if processes > 1:
        experiment = experiment.replace_config(replace_fields(experiment.config, {"device": str(device)}))
    if dry_run:
        return dry_experiment(experiment, None if torch.cuda.is_available() else "cpu")
    return experiment


def _resumable(strategy: Any) -> bool:
    try:
        check_resumable(strategy)
    except ConfigError:
        return False
    return True


def execute(experiment: Experiment, out_dir: Path, options: RunOptions, resume: bool = False) -> RunRecord:
    """Run (or resume) ``experiment`` into ``out_dir``; only the main process writes there.

    Strategies whose state checkpoints hold run through :func:`~pecft_lib.training.run_resumable`
    (checkpoints, exact resume). Strategies with plugin state (replay, EWC, LwF), data-parallel runs and
    experiments with a loop of their own (O-LoRA's generative T5) write their record after every experience
    but cannot be resumed.
    """
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())  # cpu=True: several CPU processes use gloo
    main_process, processes = accelerator.is_main_process, accelerator.num_processes
    run = placed(experiment, accelerator.device, processes, options.dry_run)
    checkpoint_every = options.checkpoint_every
    if run.own_loop:
        if processes > 1:
            raise ConfigError(f"{run.address} runs in one process (a loop of its own, not an Avalanche strategy): "
                              "launch it without accelerate's --num_processes")
        if checkpoint_every or resume:
            raise ConfigError(f"{run.address} writes its record after every task but keeps no checkpoints, so it "
                              "cannot be resumed; run it without --checkpoint-every (and start over with --force)")
        if main_process:
            save_experiment(out_dir, experiment, options)
        record = run.run_own_loop(out_dir / RECORD_FILE if main_process else None, options.dry_run,
                                  options.dry_run_experiences)
    else:
        strategy, benchmark, config = (prepare_dry(run, options.dry_run_experiences) if options.dry_run
                                       else run.prepare())
        resumable = processes == 1 and _resumable(strategy)
        if not resumable and (resume or checkpoint_every):  # refused before anything is written
            raise ConfigError(f"{run.address} keeps state that checkpoints do not hold (a replay buffer, EWC "
                              "importances, LwF's previous model) or runs data-parallel, so it has no "
                              "checkpoints; run it without --checkpoint-every (and start over with --force)")
        if main_process and not resume:  # once the data and weights are there: a failed build leaves no run
            save_experiment(out_dir, experiment, options)
        if processes > 1:
            strategy.plugins.append(GradientAveraging(processes, accelerator.process_index, run.seed))
        if resumable:
            # built once, before run_resumable checks the folder: it calls build() once, right after
            record = run_resumable(lambda: (strategy, benchmark, config), out_dir, name=run.name,
                                   checkpoint_every=checkpoint_every, resume=resume,
                                   evaluate_untrained=run.evaluate_untrained, extra=run.extra)
        else:
            extra = (lambda: run.extra(strategy)) if run.extra else None
            record = run_strategy(strategy, benchmark, name=run.name, config=config, extra=extra,
                                  evaluate_untrained=run.evaluate_untrained,
                                  save_to=out_dir / RECORD_FILE if main_process else None)
    if main_process:
        summary = ", ".join(f"{key} {value:.4f}" for key, value in record.metrics.items() if value is not None)
        print(f"{run.address} [{run.profile}{', dry run' if options.dry_run else ''}]: {summary}")
        print(f"record: {out_dir / RECORD_FILE}")
    return record


# ------------------------------------------------------------------------------------------------- commands


def command_list(args: argparse.Namespace) -> None:
    """Print methods with their experiments and runs per profile, the comparison grids, benchmarks and backbone
    checkpoints."""
    from .comparison import load_comparison

    for profile in [args.profile] if args.profile else PROFILES:
        print(f"experiments ({profile} profile): METHOD:EXPERIMENT/RUN, the first run is the default")
        for method, experiments in catalogue(profile).items():
            for experiment, runs in experiments.items():
                print(f"  {method}:{experiment}  runs: {', '.join(runs)}")
        try:
            grid = load_comparison(profile)
        except UnknownNameError:  # configs/comparison.yaml has no section for this profile
            grid = None
        if grid is not None:
            print(f"comparison grid ({profile} profile, `pecft comparison --profile {profile}`):")
            for name, setup in grid.benchmarks.items():
                print(f"  {name} ({setup.benchmark.name}, {setup.backbone})  runs: {', '.join(setup.runs)}")
        print()
    print(f"methods: {', '.join(METHODS)}")
    print(f"benchmarks: {', '.join(BENCHMARKS)}")
    print(f"backbones: {', '.join(BACKBONES)}")


def command_comparison(args: argparse.Namespace) -> None:
    """Produce the missing records of the comparison grid (see :func:`~pecft_lib.stored_records.produce`)."""
    from .comparison import load_comparison
    from .stored_records import produce, records_root

    config = load_comparison(args.profile)
    root = Path(args.out) if args.out else records_root(args.profile)
    for benchmark in args.benchmark or list(config.benchmarks):
        for path in produce(config, benchmark, root, args.profile, runs=args.runs, seeds=args.seeds):
            print(f"stored {path}", flush=True)


def command_select_lr(args: argparse.Namespace) -> None:
    """Choose learning rates on a validation stream (see :func:`~pecft_lib.lr_selection.select_learning_rates`)."""
    from .comparison import load_comparison
    from .lr_selection import select_learning_rates
    from .stored_records import records_root

    root = Path(args.out) if args.out else records_root(args.profile, "lr_selection")
    selection = select_learning_rates(load_comparison(args.profile), args.benchmark, args.lrs, root, args.profile,
                                      args.validation_per_class, runs=args.runs, seed=args.seed)
    for run, choice in selection.items():
        scores = ", ".join(f"{lr}: {100 * score:.1f}" for lr, score in choice["scores"].items())
        print(f"{run}: lr {choice['chosen']:g} (validation A_last % {scores})")


def command_run(args: argparse.Namespace) -> None:
    """Resolve, validate and run one experiment (see the module docstring)."""
    if args.dry_run_experiences is not None and not args.dry_run:
        raise ConfigError("--dry-run-experiences needs --dry-run")
    experiment = resolve(args.config, args.profile or current_profile(), parse_overrides(args.set), args.seed,
                         args.method)
    out_dir = Path(args.out) if args.out else default_out_dir(experiment, args.dry_run)
    check_out_dir(out_dir, args.force)
    execute(experiment, out_dir, RunOptions(args.dry_run, args.dry_run_experiences, args.checkpoint_every))


def command_resume(args: argparse.Namespace) -> None:
    """Continue the run saved in ``args.dir`` from its last checkpoint."""
    out_dir = Path(args.dir)
    experiment, options = load_saved(out_dir)
    if is_finished(out_dir):
        print(f"{out_dir} is finished; nothing to resume (its record: {out_dir / RECORD_FILE})")
        return
    if args.checkpoint_every is not None:
        options = replace(options, checkpoint_every=args.checkpoint_every)
    execute(experiment, out_dir, options, resume=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pecft", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="methods, experiments per profile, benchmarks, backbones")
    listing.add_argument("--profile", choices=PROFILES, help="only this profile (default: all)")
    listing.set_defaults(handler=command_list)

    run = commands.add_parser("run", help="run one experiment",
                              description="Run METHOD[:EXPERIMENT][/RUN] (see `pecft list`) or a YAML file "
                                          "in the format of pecft_lib/configs (with --method).")
    run.add_argument("config", help="e.g. l2p, l2p:cifar100, inflora:vision/SeqLoRA, classic_cl/replay, "
                                    "path/to/my.yaml:cifar100")
    run.add_argument("--profile", choices=PROFILES, help="config section (default: $PECFT_PROFILE or quick)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key of the experiment (YAML value), e.g. --set optim.lr=0.01; repeatable")
    run.add_argument("--seed", type=int, help="default: the experiment's seed, else its benchmark's")
    run.add_argument("--method", choices=list(METHODS), help="format of a YAML file (default: its file name)")
    run.add_argument("--out", help="output folder (default: runs/<profile>/<method>/<experiment>/<run>)")
    run.add_argument("--force", action="store_true", help="overwrite an output folder that holds a run")
    run.add_argument("--dry-run", action="store_true",
                     help="random weights of the exact architecture, synthetic data of the right shapes, "
                          "2 training steps per experience")
    run.add_argument("--dry-run-experiences", type=int, metavar="K",
                     help="with --dry-run: train only the first K experiences (the model is still built for all)")
    run.add_argument("--checkpoint-every", type=int, metavar="N",
                     help="also checkpoint every N training steps (default: after every experience)")
    run.set_defaults(handler=command_run)

    resume = commands.add_parser("resume", help="continue an interrupted run from its output folder")
    resume.add_argument("dir", help="the output folder of `pecft run`")
    resume.add_argument("--checkpoint-every", type=int, metavar="N", help="default: as the interrupted run")
    resume.set_defaults(handler=command_resume)

    grid = commands.add_parser("comparison", help="produce the stored records of the comparison grid (resumable)")
    grid.add_argument("--profile", choices=PROFILES, default="medium", help="section of configs/comparison.yaml "
                      "(default: medium)")
    grid.add_argument("--benchmark", nargs="+", help="default: every benchmark of the profile")
    grid.add_argument("--runs", nargs="+", help="default: every method and baseline")
    grid.add_argument("--seeds", nargs="+", type=int, help="default: the profile's seeds")
    grid.add_argument("--out", help="records folder (default: data/records/<profile>/comparison of the checkout)")
    grid.set_defaults(handler=command_comparison)

    select = commands.add_parser("select-lr", help="choose each run's learning rate on a validation stream")
    select.add_argument("--benchmark", required=True, help="a benchmark of the comparison profile")
    select.add_argument("--lrs", nargs="+", type=float, required=True, help="candidate learning rates")
    select.add_argument("--profile", choices=PROFILES, default="medium", help="default: medium")
    select.add_argument("--validation-per-class", type=int, default=20, help="held-out training examples per class")
    select.add_argument("--runs", nargs="+", help="default: every run with a learning rate")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--out", help="default: data/records/<profile>/lr_selection of the checkout")
    select.set_defaults(handler=command_select_lr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pecft`` console script; returns the exit status (2: a configuration, data or
    checkpoint error, printed as one message naming what is wrong and how to fix it)."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except PecftError as err:
        print(f"pecft: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
