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

from .backbones import BACKBONES, Backbone
from .backbones.checkpoints import BARE_NAME_HINT
from .backbones.t5 import T5_ARCHITECTURES
from .benchmarks import BENCHMARKS, BenchmarkConfig, ContinualBenchmark
from .config import from_dict, load_config
from .errors import ConfigError, UnknownNameError
from .methods import baselines, coda_prompt, dualprompt, finetuning, inflora, l2p, olora
from .repro import PROFILES

Prepared = tuple[Any, ContinualBenchmark, dict[str, Any]]
"""What a prepared run is: ``(strategy, benchmark, record config)``, the return value of ``run_resumable``'s
``build``."""

BackboneFactory = Callable[[], Backbone]


@dataclass(frozen=True)
class Sources:
    """Where a run's weights and data come from: ``None`` = the config's (pretrained backbone, real benchmark);
    dry runs pass random weights and synthetic data (:mod:`pecft_lib.dry_run`)."""

    backbone_factory: BackboneFactory | None = None
    benchmark: ContinualBenchmark | None = None


@dataclass(frozen=True)
class MethodSpec:
    """How one config file maps to experiments and runs.

    Attributes:
        name: the config file's name, used in addresses.
        presets: dataclass of a profile's section.
        experiments: ``presets -> {experiment name: experiment config}``.
        experiment_type: ``experiment name -> dataclass of that experiment`` (to re-validate a saved config).
        prefix: ``experiment name -> dotted prefix`` of that experiment inside a profile's section.
        runs: ``experiment config -> run names``; the first is the default.
        prepare: ``(experiment config, run, seed, sources) -> (strategy, benchmark, record config)``.
        evaluate_untrained: ``(experiment config, run) -> whether the run evaluates before training``.
    """

    name: str
    presets: type
    experiments: Callable[[Any], dict[str, Any]]
    experiment_type: Callable[[str], type]
    prefix: Callable[[str], str]
    runs: Callable[[Any], list[str]]
    prepare: Callable[[Any, str, int, Sources], Prepared]
    evaluate_untrained: Callable[[Any, str], bool]


def _baseline(cfg: Any, run: str, seed: int, sources: Sources) -> Prepared:
    benchmark = sources.benchmark if sources.benchmark is not None else cfg.benchmark.build()
    backbone = None if sources.backbone_factory is not None else cfg.backbone
    return baselines.prepare_baseline(cfg.baselines[run], benchmark, name=run, backbone=backbone,
                                      backbone_factory=sources.backbone_factory, seed=seed)


def _with_baselines(title: str, prepare_method: Callable[..., Prepared]) -> Callable[..., Prepared]:
    """``prepare`` of a method whose experiments also list baselines (``cfg.baselines``)."""

    def prepare(cfg: Any, run: str, seed: int, sources: Sources) -> Prepared:
        if run == title:
            return prepare_method(cfg, sources.benchmark, seed, sources.backbone_factory)
        return _baseline(cfg, run, seed, sources)

    return prepare


def _baseline_evaluates_untrained(cfg: Any, run: str) -> bool:
    """Whether ``run`` is a baseline that evaluates before training, as ``run_baseline`` does."""
    return run in getattr(cfg, "baselines", {}) and cfg.baselines[run].evaluates_untrained


def _experiments_layout(name: str, title: str, presets: type, experiment: type,
                        prepare_method: Callable[..., Prepared]) -> MethodSpec:
    """A config file whose sections are ``experiments: {name: experiment}`` (L2P, DualPrompt, CODA, InfLoRA)."""
    return MethodSpec(
        name=name, presets=presets,
        experiments=lambda p: dict(p.experiments),
        experiment_type=lambda _: experiment,
        prefix=lambda exp: f"experiments.{exp}",
        runs=lambda cfg: [title, *cfg.baselines],
        prepare=_with_baselines(title, prepare_method),
        evaluate_untrained=_baseline_evaluates_untrained,
    )


# ---------------------------------------------------------------------------------------------------- O-LoRA

INCLORA = "IncLoRA"


def _olora_prepare(cfg: Any, run: str, seed: int, sources: Sources) -> Prepared:
    if isinstance(cfg, olora.OLoRAGenerativeConfig):
        raise ConfigError("O-LoRA's generative experiment has its own loop; run it with pecft_lib.cli, which "
                          "calls run_olora_generative")
    if run in cfg.baselines:
        return _baseline(cfg, run, seed, sources)
    chosen = olora.inclora(cfg) if run == INCLORA else cfg
    return olora.prepare_olora(chosen, sources.benchmark, seed, sources.backbone_factory)


OLORA = MethodSpec(
    name="olora", presets=olora.OLoRAExperiments,
    experiments=lambda p: {name: getattr(p, name) for name in ("text", "vision", "generative")
                           if getattr(p, name) is not None},
    experiment_type=lambda exp: olora.OLoRAGenerativeConfig if exp == "generative" else olora.OLoRAClassifierConfig,
    prefix=lambda exp: exp,
    runs=lambda cfg: ["O-LoRA", INCLORA, *getattr(cfg, "baselines", {})],
    prepare=_olora_prepare,
    evaluate_untrained=_baseline_evaluates_untrained,
)

# -------------------------------------------------------------------------------- classic CL and PEFT primer

CLASSIC_EXPERIMENT = "default"


def _classic_prepare(cfg: baselines.ClassicConfig, run: str, seed: int, sources: Sources) -> Prepared:
    benchmark = sources.benchmark if sources.benchmark is not None else cfg.benchmark.build()
    return baselines.prepare_classic(run, benchmark, cfg, seed)


CLASSIC = MethodSpec(
    name="classic_cl", presets=baselines.ClassicConfig,
    experiments=lambda p: {CLASSIC_EXPERIMENT: p},
    experiment_type=lambda _: baselines.ClassicConfig,
    prefix=lambda _: "",
    runs=lambda cfg: list(baselines.CLASSIC_STRATEGIES),
    prepare=_classic_prepare,
    evaluate_untrained=lambda cfg, run: True,  # run_classic's default
)


def _primer_method(cfg: finetuning.SingleTaskConfig, run: str) -> str:
    """The primer's method entry (its display name, e.g. ``"LoRA (q, v)"``) whose tuning method is ``run``."""
    return next(name for name, tuning in cfg.methods.items() if tuning.method == run)


PEFT_PRIMER = MethodSpec(
    name="peft_primer", presets=finetuning.PeftPrimerConfig,
    experiments=lambda p: {"vision": p.vision, "text": p.text},
    experiment_type=lambda _: finetuning.SingleTaskConfig,
    prefix=lambda exp: exp,
    runs=lambda cfg: [tuning.method for tuning in cfg.methods.values()],
    prepare=lambda cfg, run, seed, sources: finetuning.prepare_single_task(
        cfg, _primer_method(cfg, run), sources.benchmark, seed, sources.backbone_factory),
    evaluate_untrained=lambda cfg, run: False,
)

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        _experiments_layout("l2p", "L2P", l2p.L2PPresets, l2p.L2PExperimentConfig, l2p.prepare_l2p),
        _experiments_layout("dualprompt", "DualPrompt", dualprompt.DualPromptPresets,
                            dualprompt.DualPromptExperimentConfig, dualprompt.prepare_dualprompt),
        _experiments_layout("coda_prompt", "CODA-Prompt", coda_prompt.CodaPromptPresets,
                            coda_prompt.CodaPromptExperimentConfig, coda_prompt.prepare_coda_prompt),
        _experiments_layout("inflora", "InfLoRA", inflora.InfLoRAPresets, inflora.InfLoRAExperimentConfig,
                            inflora.prepare_inflora),
        OLORA,
        CLASSIC,
        PEFT_PRIMER,
    )
}


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
        """The run's name in its record: the run, or the PEFT primer's display name of its tuning method."""
        return _primer_method(self.config, self.run) if self.method == "peft_primer" else self.run

    @property
    def generative(self) -> bool:
        """O-LoRA's T5 experiment, which has its own loop (:func:`~pecft_lib.methods.olora.run_olora_generative`)."""
        return isinstance(self.config, olora.OLoRAGenerativeConfig)

    @property
    def evaluate_untrained(self) -> bool:
        return self.spec.evaluate_untrained(self.config, self.run)

    @property
    def extra(self) -> Callable[[Any], dict[str, Any]] | None:
        """``strategy -> dict`` of method diagnostics for the record (InfLoRA's subspace history, as
        :func:`~pecft_lib.methods.inflora.run_inflora` stores it)."""
        if self.method == "inflora" and self.run == "InfLoRA":
            return lambda strategy: {"subspace": list(strategy.history)}
        return None

    def prepare(self, sources: Sources = Sources()) -> Prepared:
        """Build the strategy and benchmark of the run without running it (``run_resumable``'s ``build``)."""
        return self.spec.prepare(self.config, self.run, self.seed, sources)

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


def default_seed(config: Any) -> int:
    """The seed a run uses unless told otherwise: the experiment's ``seed`` if it has one (O-LoRA), else its
    benchmark's (42 for the L2P and DualPrompt paper presets, as their references)."""
    return config.seed if hasattr(config, "seed") else config.benchmark.seed


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
    if experiment.generative and config.model not in T5_ARCHITECTURES:
        raise UnknownNameError("T5 model", config.model, T5_ARCHITECTURES)


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
