"""L2P as an Avalanche strategy: PyTorch-L2P's recipe (JH-LEE-KR/l2p-pytorch, commit f7bc994) on the shared
prompt skeleton.

Per training experience: a fresh Adam(0.9, 0.999) over prompts, keys and head (all of them, in every task),
constant learning rate, global-norm clipping, cross-entropy over the current classes (train mask) plus the
key pull; evaluation is an argmax over all classes of the benchmark (JAX/PyTorch references).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...benchmarks import ContinualBenchmark
from ...repro import seed_everything
from ..spec import (BackboneSource, RunResult, backbone_label, default_seed, make_backbone, resolve_benchmark,
                    run_prepared)
from ..prompting import PromptStrategy, build_prompt_strategy
from .config import L2PExperimentConfig, L2POptimConfig
from .model import L2PModel


def build_l2p(model: L2PModel, optim: L2POptimConfig, n_experiences: int, plugins: tuple = ()) -> PromptStrategy:
    """The strategy with the reference's optimizer and clipping and the accuracy-matrix evaluator."""
    return build_prompt_strategy(model, optim, n_experiences, plugins)


def prepare_l2p(
    cfg: L2PExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
) -> tuple[PromptStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_l2p` runs, built but not run: the strategy on a freshly seeded model, the benchmark
    and the configuration stored in the record (arguments as :func:`run_l2p`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone, cfg.backbone)
    model = L2PModel(pretrained, benchmark.n_classes, cfg.method)
    strategy = build_l2p(model, cfg.optim, benchmark.n_experiences)
    config = {"method": "l2p", "seed": seed, "backbone": backbone_label(backbone, pretrained, cfg.backbone),
              "l2p": asdict(cfg.method),
              "optim": {**asdict(cfg.optim), "effective_lr": cfg.optim.effective_lr}}
    return strategy, benchmark, config


def run_l2p(
    cfg: L2PExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    name: str = "L2P",
) -> RunResult:
    """Seed, build the model on a fresh backbone, run L2P over ``benchmark`` and return the record and the
    trained strategy.

    Args:
        cfg: one experiment (``L2PExperimentConfig``; a preset of ``configs/l2p.yaml`` or built in code).
        benchmark: default ``cfg.benchmark.build()``; any class-incremental Avalanche benchmark through
            :meth:`~pecft_lib.benchmarks.ContinualBenchmark.from_avalanche`.
        backbone: default ``cfg.backbone``; a name, a model or a function returning one
            (:data:`~pecft_lib.methods.spec.BackboneSource`).
        seed: default the ``pecft`` command's (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record.
    """
    return run_prepared(prepare_l2p(cfg, benchmark, backbone=backbone, seed=seed), name=name)
