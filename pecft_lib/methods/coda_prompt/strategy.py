"""CODA-Prompt as an Avalanche strategy: the reference's recipe (GT-RIPL/CODA-Prompt, commit 6417d4f) on the
shared prompt skeleton.

Per training experience: the model adds the task's components (Gram–Schmidt) and freezes the earlier ones;
a fresh Adam(0.9, 0.999) over the new components and the head; the per-epoch cosine
``lr · cos(99πe / (200(E−1)))`` restarted with the task (the reference re-creates optimizer *and* scheduler,
``learners/default.py`` L81-83); cross-entropy over the current classes (train mask) plus the
orthogonality penalty; no gradient clipping. Evaluation: argmax over the seen classes (``eval_scope``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...benchmarks import ContinualBenchmark
from ...repro import seed_everything
from ..spec import (BackboneSource, RunResult, backbone_label, default_seed, make_backbone, resolve_benchmark,
                    run_prepared)
from ..common import reference_cosine_lr
from ..prompting import PromptStrategy, build_prompt_strategy
from .config import CodaPromptExperimentConfig, CodaPromptOptimConfig
from .model import CodaPromptModel


def build_coda_prompt(model: CodaPromptModel, optim: CodaPromptOptimConfig, n_experiences: int,
                      plugins: tuple = ()) -> PromptStrategy:
    """The strategy with the reference's optimizer, schedule and loader (``drop_last``, as ``trainer.py``) and
    the accuracy-matrix evaluator."""
    return build_prompt_strategy(model, optim, n_experiences, plugins,
                                 lr_schedule=reference_cosine_lr if optim.schedule == "cosine" else None,
                                 drop_last=optim.drop_last)


def prepare_coda_prompt(
    cfg: CodaPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> tuple[PromptStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_coda_prompt` runs, built but not run: the strategy on a freshly seeded model, the benchmark
    and the configuration stored in the record (arguments as :func:`run_coda_prompt`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone, cfg.backbone)
    model = CodaPromptModel(pretrained, benchmark.n_classes, benchmark.n_experiences, cfg.method)
    strategy = build_coda_prompt(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "coda_prompt", "seed": seed, "backbone": backbone_label(backbone, pretrained, cfg.backbone),
              "coda_prompt": asdict(cfg.method),
              "optim": asdict(cfg.optim)}
    return strategy, benchmark, config


def run_coda_prompt(
    cfg: CodaPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    name: str = "CODA-Prompt",
) -> RunResult:
    """Seed, build the model on a fresh backbone, run CODA-Prompt over ``benchmark`` and return the record and the
    trained strategy.

    Args:
        cfg: one experiment (``CodaPromptExperimentConfig``; a preset of ``configs/coda_prompt.yaml`` or built in code).
        benchmark: default ``cfg.benchmark.build()``; any class-incremental Avalanche benchmark through
            :meth:`~pecft_lib.benchmarks.ContinualBenchmark.from_avalanche`.
        backbone: default ``cfg.backbone``; a name, a model or a function returning one
            (:data:`~pecft_lib.methods.spec.BackboneSource`).
        seed: default the ``pecft`` command's (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record.
    """
    return run_prepared(prepare_coda_prompt(cfg, benchmark, backbone=backbone, seed=seed), name=name)
