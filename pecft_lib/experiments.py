"""Every runnable experiment of the library, addressed by name: the registry behind the ``pecft`` command.

An experiment is addressed as ``METHOD[:EXPERIMENT][/RUN]``:

* ``METHOD`` — a config file of ``pecft_lib/configs`` (``l2p``, ``dualprompt``, ``coda_prompt``, ``inflora``,
  ``olora``, ``classic_cl``, ``peft_primer``), or the path of a YAML file in the same format (its format is
  named by :func:`resolve`'s ``method``, by default the file's name);
* ``EXPERIMENT`` — an experiment of the profile's section (``cifar100``, ``imagenet_r``, ``vision``, ``text``,
  ``generative``, ...); optional when the section holds only one;
* ``RUN`` — the method itself (default) or a baseline compared with it (``SeqFT``, ``Joint``, ``NoPrompt``,
  ``SeqLoRA``, O-LoRA's ``IncLoRA``), one of the classic strategies (``naive``, ``ewc``, ``replay``, ...) or a
  tuning method of the PEFT primer (``linear_probe``, ``lora``, ...).

``pecft list`` prints them all. :func:`resolve` turns an address, a profile and ``--set`` overrides into a
validated :class:`Experiment`; :meth:`Experiment.prepare` builds its strategy and benchmark without running
them, exactly as the method's ``run_*`` function does (same seeding, same order of random draws).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .backbones import BACKBONES
from .backbones.checkpoints import BARE_NAME_HINT
from .benchmarks import BENCHMARKS, BenchmarkConfig
from .config import from_dict, load_config
from .errors import ConfigError, UnknownNameError
from .evaluation import RunRecord
from .methods.registry import method_specs
from .methods.spec import MethodSpec, Prepared, Sources, default_seed
from .repro import PROFILES

__all__ = ["Experiment", "METHODS", "MethodSpec", "Sources", "catalogue", "check", "default_seed",
           "parse_address", "resolve"]

METHODS: dict[str, MethodSpec] = method_specs()
"""Every registered method by config name (:mod:`pecft_lib.methods.registry`; each package declares its
:class:`~pecft_lib.methods.spec.MethodSpec` as ``METHOD``)."""


# ------------------------------------------------------------------------------------------------ experiments


@dataclass(frozen=True)
class Experiment:
    """One resolved, validated run: which config, experiment and run, under which profile and seed.

    ``config`` is the experiment's dataclass with every override applied; :meth:`to_dict` and
    :meth:`from_dict` round-trip it, so that a saved experiment is re-run without the config files.
    """

    method: str
    experiment: str
    run: str
    profile: str
    seed: int
    config: Any

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    @property
    def address(self) -> str:
        return f"{self.method}:{self.experiment}/{self.run}"

    @property
    def name(self) -> str:
        """The run's name in its record: the run, or e.g. the PEFT primer's display name of its tuning method."""
        return self.spec.run_name(self.config, self.run)

    @property
    def own_loop(self) -> bool:
        """Whether the experiment runs a loop of its own instead of an Avalanche strategy (O-LoRA's generative
        T5 experiment; :meth:`run_own_loop`)."""
        return self.spec.own_loop(self.config)

    @property
    def evaluate_untrained(self) -> bool:
        return self.spec.evaluate_untrained(self.config, self.run)

    @property
    def extra(self) -> Callable[[Any], dict[str, Any]] | None:
        """``strategy -> dict`` of method diagnostics for the record (InfLoRA's subspace history, as
        :func:`~pecft_lib.methods.inflora.run_inflora` stores it), or ``None``."""
        return self.spec.extra(self.config, self.run)

    def prepare(self, sources: Sources = Sources()) -> Prepared:
        """Build the strategy and benchmark of the run without running it (``run_resumable``'s ``build``).

        Raises:
            ConfigError: the experiment runs its own loop (:attr:`own_loop`), which has no strategy.
        """
        if self.own_loop:
            raise ConfigError(f"{self.address} runs a loop of its own, not an Avalanche strategy; run it with "
                              "`pecft run` or Experiment.run_own_loop")
        return self.spec.prepare(self.config, self.run, self.seed, sources)

    def run_own_loop(self, save_to: Path | None = None, dry_run: bool = False,
                     experiences: int | None = None) -> RunRecord:
        """Run an experiment with a loop of its own (:attr:`own_loop`), writing the record to ``save_to`` after
        every task; a dry run trains the first ``experiences`` (default: all) on synthetic data."""
        if self.spec.loop is None or not self.own_loop:
            raise ConfigError(f"{self.address} runs an Avalanche strategy; build it with Experiment.prepare")
        return self.spec.loop(self.config, self.run, self.name, save_to, dry_run, experiences)

    def replace_config(self, config: Any) -> "Experiment":
        return dataclasses.replace(self, config=config)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "experiment": self.experiment, "run": self.run, "profile": self.profile,
                "seed": self.seed, "config": dataclasses.asdict(self.config)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Experiment":
        """The experiment saved by :meth:`to_dict`, validated again."""
        method = _method(data["method"])
        config = from_dict(method.experiment_type(data["experiment"]), data["config"], "saved config")
        experiment = cls(data["method"], data["experiment"], data["run"], data["profile"], data["seed"], config)
        check(experiment)
        return experiment


def _method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise UnknownNameError("method", name, METHODS)
    return METHODS[name]


def parse_address(address: str) -> tuple[str, str | None, str | None]:
    """``"l2p:cifar100/SeqFT"`` → ``("l2p", "cifar100", "SeqFT")``, ``"runs/my.yaml:vision"`` →
    ``("runs/my.yaml", "vision", None)``; missing parts are ``None``."""
    if ":" in address:
        source, _, rest = address.rpartition(":")
        experiment, _, run = rest.partition("/")
    elif address.endswith((".yaml", ".yml")):
        source, experiment, run = address, "", ""
    else:
        source, _, run = address.partition("/")
        experiment = ""
    if not source:
        raise ConfigError(f"no method in {address!r}; write METHOD[:EXPERIMENT][/RUN], e.g. l2p:cifar100")
    return source, experiment or None, run or None


def _choose(kind: str, name: str | None, choices: list[str], where: str, default_first: bool = False) -> str:
    if name is None:
        if len(choices) == 1 or default_first:
            return choices[0]
        raise ConfigError(f"{where} has several {kind}s; choose one of: {', '.join(choices)}")
    if name not in choices:
        raise UnknownNameError(kind, name, choices, hint=f"These are the {kind}s of {where}")
    return name


def resolve(address: str, profile: str, overrides: dict[str, Any] | None = None, seed: int | None = None,
            method: str | None = None) -> Experiment:
    """The validated :class:`Experiment` at ``address`` (see the module docstring) in ``profile``.

    ``overrides`` are dotted keys relative to the experiment (``{"optim.lr": 0.01}``), validated with the rest
    of the config; ``method`` names the format of a YAML file given as ``address`` (default: its file name).

    Raises:
        UnknownNameError: unknown method, profile, experiment, run, benchmark or backbone (listing the choices).
        ConfigError: unknown keys or values of the wrong type.
    """
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    source, experiment_name, run = parse_address(address)
    is_file = source.endswith((".yaml", ".yml"))
    if is_file and not Path(source).is_file():
        raise ConfigError(f"config file {source} does not exist")
    spec = _method(method or (Path(source).stem if is_file else source))
    presets = load_config(source, spec.presets, profile)
    where = f"{source} [{profile}]"
    experiment_name = _choose("experiment", experiment_name, list(spec.experiments(presets)), where)
    if overrides:
        prefix = spec.prefix(experiment_name)
        dotted = {f"{prefix}.{key}" if prefix else key: value for key, value in overrides.items()}
        presets = load_config(source, spec.presets, profile, dotted)
    config = spec.experiments(presets)[experiment_name]
    run = _choose("run", run, spec.runs(config), f"{where} experiment {experiment_name!r}", default_first=True)
    resolved = Experiment(spec.name, experiment_name, run, profile, default_seed(config) if seed is None else seed,
                          config)
    check(resolved)
    return resolved


def check(experiment: Experiment) -> None:
    """Refuse an unknown benchmark or backbone before anything is built (one error listing the choices)."""
    config = experiment.config
    benchmark = getattr(config, "benchmark", None)
    if isinstance(benchmark, BenchmarkConfig) and benchmark.name not in BENCHMARKS:
        raise UnknownNameError("benchmark", benchmark.name, BENCHMARKS)
    backbone = getattr(config, "backbone", None)
    if backbone is not None and backbone not in BACKBONES:
        hint = BARE_NAME_HINT if backbone.startswith("vit_") else ""
        raise UnknownNameError("backbone", backbone, BACKBONES, hint=hint)


def catalogue(profile: str) -> dict[str, dict[str, list[str]]]:
    """``{method: {experiment: [runs]}}`` of ``profile`` (what ``pecft list`` prints)."""
    listing: dict[str, dict[str, list[str]]] = {}
    for name, spec in METHODS.items():
        try:
            presets = load_config(name, spec.presets, profile)
        except UnknownNameError:  # the file has no section for this profile
            continue
        listing[name] = {exp: spec.runs(cfg) for exp, cfg in spec.experiments(presets).items()}
    return listing
