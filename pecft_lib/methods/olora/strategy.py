"""O-LoRA as an Avalanche strategy over class-incremental benchmarks, and one call that runs it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from ...benchmarks import ContinualBenchmark
from ...repro import seed_everything
from ..common import ContinualPEFTStrategy, OptimizerFactory, loop_arguments
from ..spec import (BackboneSource, RunResult, StrategyState, backbone_label, default_seed, make_backbone,
                    resolve_benchmark, run_prepared)
from .config import OLoRAConfig, OLoRAExperimentConfig, OLoRAOptimConfig
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


def build_olora(model: OLoRAClassifier, optim: OLoRAOptimConfig, n_experiences: int, plugins: tuple = (),
                method: OLoRAConfig | None = None, penalty_log: list[PenaltyRecord] | None = None) -> OLoRA:
    """The strategy with AdamW at ``optim.lr`` (constant; a fresh optimizer per experience), the loss weights of
    ``method`` (default: those the model was built with) and the accuracy-matrix evaluator; ``penalty_log``
    receives the loss terms of every step."""
    lora = model.lora if method is None else method
    return OLoRA(
        model=model,
        optimizer_factory=lambda params: torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay),
        lambda_orth=lora.lambda_orth,
        lambda_l2=lora.lambda_l2,
        orthogonality=lora.orthogonality,
        penalty_log=penalty_log,
        **loop_arguments(optim, n_experiences, plugins=plugins),
    )


def prepare_olora(
    cfg: OLoRAExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    penalty_log: list[PenaltyRecord] | None = None,
) -> tuple[OLoRA, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_olora` runs, built but not run: the strategy on a freshly seeded model, the
    benchmark and the configuration stored in the record (arguments as :func:`run_olora`)."""
    benchmark = resolve_benchmark(cfg, benchmark)
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone, cfg.backbone)
    model = OLoRAClassifier(pretrained, benchmark.n_classes, cfg.method)
    strategy = build_olora(model, cfg.optim, benchmark.n_experiences, penalty_log=penalty_log)
    config = {"method": "olora", "seed": seed, "backbone": backbone_label(backbone, pretrained, cfg.backbone),
              "olora": asdict(cfg.method), "optim": asdict(cfg.optim)}
    return strategy, benchmark, config


def run_olora(
    cfg: OLoRAExperimentConfig,
    benchmark: ContinualBenchmark | None = None,
    *,
    backbone: BackboneSource = None,
    seed: int | None = None,
    name: str = "O-LoRA",
    penalty_log: list[PenaltyRecord] | None = None,
) -> RunResult:
    """Train O-LoRA on every experience of ``benchmark`` and return its record and the trained strategy (its
    ``model`` and ``penalty_log``).

    Args:
        cfg: one experiment (``OLoRAExperimentConfig``; a preset of ``configs/olora.yaml`` or built in code).
            For IncLoRA run ``run_olora(inclora(cfg), ...)``.
        benchmark: default ``cfg.benchmark.build()``; any class-incremental Avalanche benchmark through
            :meth:`~pecft_lib.benchmarks.ContinualBenchmark.from_avalanche`.
        backbone: default ``cfg.backbone``; a name, a model or a function returning one
            (:data:`~pecft_lib.methods.spec.BackboneSource`). The adapters are injected into it, so give each run
            a fresh one (a name or a function).
        seed: default ``cfg.seed``, as the ``pecft`` command (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record.
        penalty_log: a list that receives the per-step loss terms.
    """
    return run_prepared(prepare_olora(cfg, benchmark, backbone=backbone, seed=seed, penalty_log=penalty_log),
                        name=name)


def _save_olora(strategy: OLoRA) -> dict[str, Any]:
    return {"penalty_log": [asdict(record) for record in strategy.penalty_log]}


def _load_olora(strategy: OLoRA, state: dict[str, Any]) -> None:
    strategy.penalty_log[:] = [PenaltyRecord(**record) for record in state["penalty_log"]]  # the caller's list


OLORA_STATE = StrategyState(OLoRA, _save_olora, _load_olora)
"""O-LoRA's checkpoint state: the per-step penalty log."""
