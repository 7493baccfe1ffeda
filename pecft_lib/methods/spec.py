"""How a method declares itself: one :class:`MethodSpec` per method package, read by everything that handles
every method (the experiment registry and the ``pecft`` command, run checkpoints, the loaders of official
checkpoints), so that none of them imports a method by name.

A method package ``pecft_lib/methods/<name>/`` exposes ``METHOD = MethodSpec(...)`` in its ``__init__`` and
is listed once in :data:`pecft_lib.methods.registry.METHOD_PACKAGES`. Its runner follows the one call shape of
every method and baseline::

    result = run_x(cfg, benchmark=None, *, backbone=None, seed=None)   # a RunResult(record, strategy)

with the seed rule of the ``pecft`` command (:func:`default_seed`) and any backbone source
(:data:`BackboneSource`, :func:`make_backbone`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from torch import nn

from ..backbones import Backbone, as_backbone, load_backbone
from ..benchmarks import ContinualBenchmark
from ..evaluation import RunRecord, run_strategy
from .common.analysis import Mechanism

Prepared = tuple[Any, ContinualBenchmark, dict[str, Any]]
"""What a prepared run is: ``(strategy, benchmark, record config)``, the return value of every ``prepare_*``."""

BackboneSource = str | nn.Module | Callable[[], nn.Module] | None
"""Where a run's backbone comes from: a name of :data:`~pecft_lib.backbones.BACKBONES`; a model (a
:class:`~pecft_lib.backbones.Backbone`, a timm ``VisionTransformer`` or a Hugging Face BERT-family encoder,
wrapped by :func:`~pecft_lib.backbones.as_backbone`); a function returning one, called after the run is seeded
(so that a randomly initialised model is seeded too, and every run gets a fresh copy); or ``None``: the
config's ``backbone``."""


class RunResult(NamedTuple):
    """What every ``run_*`` returns: the result record (accuracy matrix, metrics, ``save(path)``) and what was
    trained — the Avalanche strategy, whose ``model`` is the trained model (O-LoRA's generative loop, which has
    no strategy, gives its trained model). Unpacks as ``record, strategy = run_x(cfg)``."""

    record: RunRecord
    strategy: Any


def run_prepared(prepared: Prepared, *, name: str, evaluate_untrained: bool = False,
                 extra: Callable[[Any], dict[str, Any]] | None = None) -> RunResult:
    """Run a prepared ``(strategy, benchmark, record config)`` over its benchmark
    (:func:`~pecft_lib.evaluation.run_strategy`) as every ``run_*`` does. ``evaluate_untrained`` is off by default:
    a method's untrained head (or missing head) says nothing about forward transfer. ``extra(strategy)`` adds
    method diagnostics to the record after every experience."""
    strategy, benchmark, config = prepared
    record = run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=evaluate_untrained,
                          extra=None if extra is None else lambda: extra(strategy))
    return RunResult(record, strategy)


@dataclass(frozen=True)
class Sources:
    """Where a prepared run's weights and data come from: ``None`` = the config's (pretrained backbone, real
    benchmark); dry runs pass random weights and synthetic data (:mod:`pecft_lib.dry_run`)."""

    backbone: BackboneSource = None
    benchmark: ContinualBenchmark | None = None


@dataclass(frozen=True)
class StrategyState:
    """What a strategy class keeps beyond its model's ``state_dict``, for run checkpoints
    (:mod:`pecft_lib.training.state`): ``save(strategy) -> dict`` of tensors and plain data, and
    ``load(strategy, dict)`` into a freshly built strategy whose model has grown to the checkpoint's
    experiences."""

    cls: type
    save: Callable[[Any], dict[str, Any]]
    load: Callable[[Any, dict[str, Any]], None]


OwnLoop = Callable[[Any, str, str, Any, bool, "int | None"], RunRecord]
"""``(experiment config, run, run name, record path or None, dry run, experiences to train or None) -> record``:
an experiment that is not an Avalanche strategy runs its own loop (O-LoRA's generative T5)."""


def _no_extra(cfg: Any, run: str) -> None:
    return None


@dataclass(frozen=True)
class MethodSpec:
    """One method (or family of runs) as the registry, the ``pecft`` command, checkpoints and the reference
    loaders see it.

    Attributes:
        name: the config file's name (``pecft_lib/configs/<name>.yaml``), used in addresses.
        presets: dataclass of a profile's section of that file.
        experiments: ``presets -> {experiment name: experiment config}``.
        experiment_type: ``experiment name -> dataclass of that experiment`` (to re-validate a saved config).
        prefix: ``experiment name -> dotted prefix`` of that experiment inside a profile's section.
        runs: ``experiment config -> run names``; the first is the default.
        prepare: ``(experiment config, run, seed, sources) -> (strategy, benchmark, record config)``.
        evaluate_untrained: ``(experiment config, run) -> whether the run evaluates before training``.
        run_name: ``(experiment config, run) -> the run's name in its record``.
        extra: ``(experiment config, run) -> strategy -> dict`` of diagnostics stored in the record, or ``None``.
        own_loop: ``experiment config -> whether it runs its own loop`` instead of a strategy, and ...
        loop: ... that loop (:data:`OwnLoop`).
        strategy_state: the checkpoint state of the method's strategy classes.
        references: official code base → ``"module:function"`` loading its checkpoints into the method's model
            (:func:`pecft_lib.compat.from_reference`).
        mechanism: ``(model class, diagnostic)``: what :func:`pecft_lib.mechanisms.mechanism_diagnostics` measures
            on a trained model of that class (:data:`~pecft_lib.methods.common.analysis.Mechanism`), or ``None``.
    """

    name: str
    presets: type
    experiments: Callable[[Any], dict[str, Any]]
    experiment_type: Callable[[str], type]
    prefix: Callable[[str], str]
    runs: Callable[[Any], list[str]]
    prepare: Callable[[Any, str, int, Sources], Prepared]
    evaluate_untrained: Callable[[Any, str], bool] = lambda cfg, run: False
    run_name: Callable[[Any, str], str] = lambda cfg, run: run
    extra: Callable[[Any, str], Callable[[Any], dict[str, Any]] | None] = _no_extra
    own_loop: Callable[[Any], bool] = lambda cfg: False
    loop: OwnLoop | None = None
    strategy_state: tuple[StrategyState, ...] = ()
    references: dict[str, str] = field(default_factory=dict)
    mechanism: tuple[type, Mechanism] | None = None


def default_seed(cfg: Any, benchmark: ContinualBenchmark | None = None) -> int:
    """The seed of a run given no seed, the same in the API and the ``pecft`` command: the experiment's ``seed``
    if it has one (O-LoRA), else its benchmark config's (42 for the L2P and DualPrompt paper presets, as their
    references), else the ``seed`` recorded in ``benchmark.info``, else 0."""
    if getattr(cfg, "seed", None) is not None:
        return cfg.seed
    if getattr(cfg, "benchmark", None) is not None:
        return cfg.benchmark.seed
    return int(benchmark.info.get("seed", 0)) if benchmark is not None else 0


def resolve_benchmark(cfg: Any, benchmark: ContinualBenchmark | None) -> ContinualBenchmark:
    """``benchmark``, else the one the config describes (``cfg.benchmark.build()``).

    Raises:
        ConfigError: neither is given.
    """
    from ..errors import ConfigError

    if benchmark is not None:
        return benchmark
    if getattr(cfg, "benchmark", None) is None:
        raise ConfigError(f"{type(cfg).__name__} has no benchmark: pass one (run_x(cfg, benchmark), e.g. "
                          "ContinualBenchmark.from_avalanche(scenario)) or set the config's benchmark")
    return cfg.benchmark.build()


def make_backbone(source: BackboneSource, default: str | None = None) -> Backbone:
    """The backbone of :data:`BackboneSource` ``source`` (``None``: the name ``default``, the config's).

    Raises:
        ConfigError: no source and no default, or a model that is not a backbone (:func:`as_backbone`).
    """
    from ..errors import ConfigError

    if source is None:
        if default is None:
            raise ConfigError("no backbone: pass backbone= (a name of pecft_lib.backbones.BACKBONES, a timm ViT, a "
                              "Hugging Face encoder or a function returning one) or set the config's backbone")
        source = default
    if isinstance(source, str):
        return load_backbone(source)
    if not isinstance(source, nn.Module) and callable(source):
        source = source()
    return as_backbone(source)


def backbone_label(source: BackboneSource, backbone: Backbone, default: str | None) -> str:
    """The backbone's name for a record: the name given, else the config's, else the wrapped model's."""
    if isinstance(source, str):
        return source
    return default if source is None and default is not None else getattr(backbone, "name", type(backbone).__name__)


def _baseline(cfg: Any, run: str, seed: int, sources: Sources) -> Prepared:
    """A baseline of an experiment (``cfg.baselines[run]``) on the experiment's backbone and benchmark."""
    from .baselines import prepare_baseline

    benchmark = resolve_benchmark(cfg, sources.benchmark)
    backbone = sources.backbone if sources.backbone is not None else cfg.backbone
    return prepare_baseline(cfg.baselines[run], benchmark, name=run, backbone=backbone, seed=seed)


def baseline_evaluates_untrained(cfg: Any, run: str) -> bool:
    """Whether ``run`` is a baseline that evaluates before training, as ``run_baseline`` does."""
    return run in getattr(cfg, "baselines", {}) and cfg.baselines[run].evaluates_untrained


def with_baselines(title: str, prepare_method: Callable[..., Prepared]) -> Callable[[Any, str, int, Sources], Prepared]:
    """:attr:`MethodSpec.prepare` of a method whose experiments also list baselines (``cfg.baselines``): run
    ``title`` is ``prepare_method(cfg, benchmark, backbone=..., seed=...)``, any other run a baseline."""

    def prepare(cfg: Any, run: str, seed: int, sources: Sources) -> Prepared:
        if run == title:
            return prepare_method(cfg, sources.benchmark, backbone=sources.backbone, seed=seed)
        return _baseline(cfg, run, seed, sources)

    return prepare


def experiments_method(name: str, title: str, presets: type, experiment: type, prepare: Callable[..., Prepared],
                       **more: Any) -> MethodSpec:
    """The :class:`MethodSpec` of a config file whose sections are ``experiments: {name: experiment}``, each
    with ``baselines`` (L2P, DualPrompt, CODA-Prompt, InfLoRA): runs ``title`` (the method, by
    ``prepare(cfg, benchmark, backbone=..., seed=...)``) and every baseline; ``more`` sets further fields."""
    return MethodSpec(
        name=name, presets=presets,
        experiments=lambda p: dict(p.experiments),
        experiment_type=lambda _: experiment,
        prefix=lambda exp: f"experiments.{exp}",
        runs=lambda cfg: [title, *cfg.baselines],
        prepare=with_baselines(title, prepare),
        evaluate_untrained=baseline_evaluates_untrained,
        **more,
    )
