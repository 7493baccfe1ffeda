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
from typing import Any

from ...benchmarks import ContinualBenchmark
from ...errors import ConfigError
from ...repro import seed_everything
from ..spec import (BackboneSource, RunResult, backbone_label, default_seed, make_backbone, resolve_benchmark,
                    run_prepared)
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
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> tuple[PromptStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_dualprompt` runs, built but not run: the strategy on a freshly seeded model, the benchmark
    and the configuration stored in the record (arguments as :func:`run_dualprompt`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone, cfg.backbone)
    model = DualPromptModel(pretrained, benchmark.n_classes, cfg.method)
    strategy = build_dualprompt(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "dualprompt", "seed": seed, "backbone": backbone_label(backbone, pretrained, cfg.backbone),
              "dualprompt": asdict(cfg.method),
              "optim": {**asdict(cfg.optim), "effective_lr": cfg.optim.effective_lr}}
    return strategy, benchmark, config


def run_dualprompt(
    cfg: DualPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    name: str = "DualPrompt",
) -> RunResult:
    """Seed, build the model on a fresh backbone, run DualPrompt over ``benchmark`` and return the record and the
    trained strategy.

    Args:
        cfg: one experiment (``DualPromptExperimentConfig``; a preset of ``configs/dualprompt.yaml`` or built in code).
        benchmark: default ``cfg.benchmark.build()``; any class-incremental Avalanche benchmark through
            :meth:`~pecft_lib.benchmarks.ContinualBenchmark.from_avalanche`.
        backbone: default ``cfg.backbone``; a name, a model or a function returning one
            (:data:`~pecft_lib.methods.spec.BackboneSource`).
        seed: default the ``pecft`` command's (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record.
    """
    return run_prepared(prepare_dualprompt(cfg, benchmark, backbone=backbone, seed=seed), name=name)
