"""Single-task fine-tuning as an Avalanche ``Naive`` strategy over one experience, one run per PEFT method."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from avalanche.training import Naive

from ...benchmarks import ContinualBenchmark
from ...errors import UnknownNameError
from ...evaluation import RunRecord, run_strategy
from ...repro import seed_everything
from ..common import loop_arguments
from ..spec import BackboneSource, default_seed, make_backbone, resolve_benchmark
from .config import OptimConfig, SingleTaskConfig, TuningConfig
from .model import PEFTClassifier


def build_tuning_strategy(model: PEFTClassifier, optim: OptimConfig) -> Naive:
    """AdamW over the trainable parameters only, cross-entropy, and the accuracy-matrix evaluator."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return Naive(
        model=model,
        optimizer=torch.optim.AdamW(trainable, lr=optim.lr[model.tuning.method], weight_decay=optim.weight_decay),
        criterion=torch.nn.CrossEntropyLoss(),
        **loop_arguments(optim, 1),
    )


def prepare_single_task(
    cfg: SingleTaskConfig,
    method: str,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> tuple[Naive, ContinualBenchmark, dict[str, Any]]:
    """One run of :func:`run_single_task` built but not run: the strategy of ``cfg.methods[method]`` on a freshly
    seeded copy of the backbone, the benchmark and the configuration stored in the record."""
    if method not in cfg.methods:
        raise UnknownNameError("method of this single-task config", method, cfg.methods)
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    tuning = cfg.methods[method]
    seed_everything(seed)
    model = PEFTClassifier(make_backbone(backbone, cfg.backbone), benchmark.n_classes, tuning)
    strategy = build_tuning_strategy(model, cfg.optim)
    config = {"backbone": cfg.backbone, "seed": seed, "tuning": asdict(tuning), "optim": asdict(cfg.optim)}
    return strategy, benchmark, config


def run_single_task(
    cfg: SingleTaskConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> list[RunRecord]:
    """Fine-tune a fresh copy of ``cfg.backbone`` with every method of ``cfg.methods``; one record each.

    ``benchmark`` defaults to ``cfg.benchmark.build()``; ``backbone`` (default: ``cfg.backbone``, loaded by
    name) must give a new backbone at every call — a name or a function — since LoRA and full fine-tuning
    change it; ``seed`` defaults to the benchmark config's (:func:`~pecft_lib.methods.spec.default_seed`).
    """
    benchmark = resolve_benchmark(cfg, benchmark)
    records = []
    for name in cfg.methods:
        strategy, benchmark, config = prepare_single_task(cfg, name, benchmark, backbone=backbone, seed=seed)
        records.append(run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=False))
    return records


__all__ = ["TuningConfig", "build_tuning_strategy", "prepare_single_task", "run_single_task"]
