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
from typing import Any, Callable

from ...backbones import Backbone, load_backbone
from ...benchmarks import ContinualBenchmark
from ...evaluation import RunRecord, run_strategy
from ...repro import seed_everything
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
    seed: int = 0,
    backbone_factory: Callable[[], Backbone] | None = None,
) -> tuple[PromptStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_coda_prompt` runs, built but not run: the strategy on a freshly seeded model, the
    benchmark and the configuration stored in the record."""
    benchmark = benchmark if benchmark is not None else cfg.benchmark.build()
    seed_everything(seed)
    backbone = backbone_factory() if backbone_factory else load_backbone(cfg.backbone)
    model = CodaPromptModel(backbone, benchmark.n_classes, benchmark.n_experiences, cfg.method)
    strategy = build_coda_prompt(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "coda_prompt", "seed": seed, "backbone": cfg.backbone, "coda_prompt": asdict(cfg.method),
              "optim": asdict(cfg.optim)}
    return strategy, benchmark, config


def run_coda_prompt(
    cfg: CodaPromptExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    seed: int = 0,
    backbone_factory: Callable[[], Backbone] | None = None,
    name: str = "CODA-Prompt",
) -> tuple[RunRecord, PromptStrategy]:
    """Seed, build the model on a fresh backbone (one component group per experience of ``benchmark``), run
    CODA-Prompt and return the record and the trained strategy (its ``model`` is a :class:`CodaPromptModel`)."""
    strategy, benchmark, config = prepare_coda_prompt(cfg, benchmark, seed, backbone_factory)
    # no evaluation before training: an untrained head says nothing about forward transfer
    record = run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=False)
    return record, strategy
