"""DualPrompt as an Avalanche strategy: PyTorch DualPrompt's recipe on the shared prompt skeleton
(JH-LEE-KR/dualprompt-pytorch, commit 7eb457d).

Per training experience the model moves to the next E-prompt (copied from the previous one), then a fresh
Adam(0.9, 0.999) is built over the G-prompt, the E-prompt pool, the keys and the head; constant learning
rate, global-norm clipping, cross-entropy over the current classes (train mask) plus the key pull. Only
the current E-prompt and its key receive gradient, so with a fresh Adam and no weight decay the others stay
bit-identical. Evaluation is an argmax over all classes of the benchmark (JAX/PyTorch references).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

from ...backbones import Backbone, load_backbone
from ...benchmarks import ContinualBenchmark
from ...errors import ConfigError
from ...evaluation import RunRecord, run_strategy
from ...repro import seed_everything
from ..prompting import PromptStrategy, build_prompt_strategy
from .config import DualPromptExperimentConfig, DualPromptOptimConfig
from .model import DualPromptModel


def build_dualprompt(model: DualPromptModel, optim: DualPromptOptimConfig, n_experiences: int,
                     plugins: tuple = ()) -> PromptStrategy:
    """The strategy with the reference's optimizer and clipping and the accuracy-matrix evaluator.

    Raises:
        ConfigError: ``n_experiences`` exceeds the E-prompt pool (one E-prompt per task).
    """
    if n_experiences > model.config.pool_size:
        raise ConfigError(f"{n_experiences} experiences need {n_experiences} E-prompts, but pool_size is "
                          f"{model.config.pool_size}; set method.pool_size to the number of experiences")
    return build_prompt_strategy(model, optim, n_experiences, plugins)


def prepare_dualprompt(
    cfg: DualPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    seed: int = 0,
    backbone_factory: Callable[[], Backbone] | None = None,
) -> tuple[PromptStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_dualprompt` runs, built but not run: the strategy on a freshly seeded model, the
    benchmark and the configuration stored in the record."""
    benchmark = benchmark if benchmark is not None else cfg.benchmark.build()
    seed_everything(seed)
    backbone = backbone_factory() if backbone_factory else load_backbone(cfg.backbone)
    model = DualPromptModel(backbone, benchmark.n_classes, cfg.method)
    strategy = build_dualprompt(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "dualprompt", "seed": seed, "backbone": cfg.backbone, "dualprompt": asdict(cfg.method),
              "optim": {**asdict(cfg.optim), "effective_lr": cfg.optim.effective_lr}}
    return strategy, benchmark, config


def run_dualprompt(
    cfg: DualPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    seed: int = 0,
    backbone_factory: Callable[[], Backbone] | None = None,
    name: str = "DualPrompt",
) -> tuple[RunRecord, PromptStrategy]:
    """Seed, build the model on a fresh backbone, run DualPrompt over ``benchmark`` and return the record and
    the trained strategy (its ``model`` answers :meth:`DualPromptModel.prompt_ids`)."""
    strategy, benchmark, config = prepare_dualprompt(cfg, benchmark, seed, backbone_factory)
    # no evaluation before training: an untrained head says nothing about forward transfer
    record = run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=False)
    return record, strategy
