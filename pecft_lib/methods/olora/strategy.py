"""O-LoRA as an Avalanche strategy over class-incremental benchmarks, and one call that runs it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

import torch

from ...backbones import Backbone, load_backbone
from ...benchmarks import ContinualBenchmark
from ...evaluation import RunRecord, run_strategy
from ...repro import seed_everything
from ..common import ContinualPEFTStrategy, OptimizerFactory, loop_arguments
from .config import OLoRAClassifierConfig
from .loss import PenaltyRecord, olora_penalties
from .model import OLoRAClassifier


class OLoRA(ContinualPEFTStrategy):
    """:class:`~pecft_lib.methods.common.ContinualPEFTStrategy` whose training loss is O-LoRA's
    ``CE + lambda_orth · Σ_m orth_m + lambda_l2 · Σ_m l2_m`` (cmnfriend/O-LoRA; :mod:`.loss`).

    The cross-entropy runs over the current experience's classes (the template's train-time class mask);
    evaluation uses the plain cross-entropy. Every training step appends a :class:`~.loss.PenaltyRecord` to
    :attr:`penalty_log` (``pandas.DataFrame(strategy.penalty_log)`` gives a table to plot).

    Args:
        model: an :class:`OLoRAClassifier`.
        optimizer_factory: builds the optimizer of each experience over its trainable parameters.
        lambda_orth, lambda_l2, orthogonality: see :class:`~.config.OLoRAConfig`.
        penalty_log: the list to append to (default: a new one).
        **kwargs: :class:`ContinualPEFTStrategy`'s arguments.
    """

    def __init__(
        self,
        *,
        model: OLoRAClassifier,
        optimizer_factory: OptimizerFactory,
        lambda_orth: float = 0.5,
        lambda_l2: float = 0.0,
        orthogonality: str = "reference_l1",
        penalty_log: list[PenaltyRecord] | None = None,
        **kwargs: Any,
    ):
        if not isinstance(model, OLoRAClassifier):
            raise TypeError(f"OLoRA needs an OLoRAClassifier, got {type(model).__name__}")
        super().__init__(model=model, optimizer_factory=optimizer_factory, **kwargs)
        self.lambda_orth = lambda_orth
        self.lambda_l2 = lambda_l2
        self.orthogonality = orthogonality
        self.penalty_log: list[PenaltyRecord] = [] if penalty_log is None else penalty_log

    def criterion(self) -> torch.Tensor:
        task_loss = super().criterion()
        if not self.is_training:
            return task_loss
        orth, l2 = olora_penalties(self.model.factors(), self.orthogonality)
        loss = task_loss + self.lambda_orth * orth + self.lambda_l2 * l2
        self.penalty_log.append(PenaltyRecord(
            self.model.n_tasks - 1, self.clock.train_exp_epochs, self.clock.train_exp_iterations,
            task_loss.item(), orth.item(), l2.item(), loss.item(),
        ))
        return loss


def build_olora_strategy(model: OLoRAClassifier, cfg: OLoRAClassifierConfig,
                         penalty_log: list[PenaltyRecord] | None = None, n_experiences: int | None = None) -> OLoRA:
    """O-LoRA with AdamW at ``cfg.optim.lr`` (constant; a fresh optimizer per experience) and the accuracy-matrix
    evaluator over ``n_experiences`` experiences (default ``cfg.benchmark.n_experiences``; :func:`prepare_olora`
    passes the benchmark's own count)."""
    optim, lora = cfg.optim, cfg.olora
    return OLoRA(
        model=model,
        optimizer_factory=lambda params: torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay),
        lambda_orth=lora.lambda_orth,
        lambda_l2=lora.lambda_l2,
        orthogonality=lora.orthogonality,
        penalty_log=penalty_log,
        **loop_arguments(optim, cfg.benchmark.n_experiences if n_experiences is None else n_experiences),
    )


def prepare_olora(
    cfg: OLoRAClassifierConfig,
    benchmark: ContinualBenchmark | None = None,
    seed: int | None = None,
    backbone_factory: Callable[[], Backbone] | None = None,
    penalty_log: list[PenaltyRecord] | None = None,
) -> tuple[OLoRA, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_olora` runs, built but not run: the strategy on a freshly seeded model, the
    benchmark and the configuration stored in the record."""
    benchmark = benchmark if benchmark is not None else cfg.benchmark.build()
    seed = cfg.seed if seed is None else seed
    seed_everything(seed)
    backbone = backbone_factory() if backbone_factory is not None else load_backbone(cfg.backbone)
    model = OLoRAClassifier(backbone, benchmark.n_classes, cfg.olora)
    strategy = build_olora_strategy(model, cfg, penalty_log, n_experiences=benchmark.n_experiences)
    return strategy, benchmark, {**asdict(cfg), "seed": seed}


def run_olora(
    cfg: OLoRAClassifierConfig,
    benchmark: ContinualBenchmark | None = None,
    seed: int | None = None,
    backbone_factory: Callable[[], Backbone] | None = None,
    name: str = "O-LoRA",
    penalty_log: list[PenaltyRecord] | None = None,
) -> tuple[RunRecord, OLoRA]:
    """Train O-LoRA on every experience of ``benchmark`` (default ``cfg.benchmark.build()``); return its record
    and the trained strategy (its ``model`` and ``penalty_log``).

    ``seed`` (default ``cfg.seed``) is set right before the model is built; ``backbone_factory`` (default: load
    ``cfg.backbone``) must return a fresh backbone, since the adapters are injected into it. Pass a list as
    ``penalty_log`` to receive the per-step loss terms. For IncLoRA run ``run_olora(inclora(cfg), ...)``.
    """
    strategy, benchmark, config = prepare_olora(cfg, benchmark, seed, backbone_factory, penalty_log)
    return run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=False), strategy
