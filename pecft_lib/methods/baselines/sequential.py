"""Baselines of the parameter-efficient continual methods, on the same frozen backbone and benchmark.

* ``sequential`` — one set of trainable parameters (a LoRA, or the whole backbone) fine-tuned on one
  experience after the other: sequential LoRA ("SeqLoRA", InfLoRA's and O-LoRA's natural ablation) and
  naive sequential fine-tuning ("SeqFT", the lower bound);
* ``joint`` — the same model trained once on every experience together, the upper bound;
* ``prototype`` — nothing trained: the frozen backbone with one class-mean prototype per class and a cosine
  classifier (SimpleCIL, :mod:`.prototype`), the floor a continual method must clear.

Both use Avalanche's own strategies (:class:`~avalanche.training.Naive`, :class:`~avalanche.training.JointTraining`)
with the references' training-time class mask for the sequential runs, and one linear head over all classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from avalanche.training import JointTraining, Naive

from ...benchmarks import ContinualBenchmark
from ...errors import ConfigError, UnknownNameError
from ...repro import seed_everything
from ..common import loop_arguments
from ..common.precision import check_precision
from ..finetuning import PEFTClassifier, TuningConfig
from ..spec import BackboneSource, RunResult, backbone_label, default_seed, make_backbone, run_prepared
from ..train_mask import TrainClassMaskPlugin
from .prototype import PrototypeClassifier, PrototypeStrategy

BASELINE_KINDS = ("sequential", "joint", "prototype")
"""The values of :class:`~pecft_lib.methods.baselines.BaselineConfig`'s ``kind``."""


@dataclass
class BaselineConfig:
    """One baseline run: what is trained (``tuning``: ``lora``, ``full`` or ``linear_probe``) and how (Adam).

    ``kind: prototype`` trains nothing (``tuning.method`` must be ``linear_probe``, i.e. a frozen backbone, and
    ``epochs`` 1: one pass computes the class means); ``lr`` is then unused.
    """

    tuning: TuningConfig
    kind: str = "sequential"
    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 500
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "baseline precision")
        if self.kind not in BASELINE_KINDS:
            raise UnknownNameError("baseline kind", self.kind, BASELINE_KINDS)
        if self.tuning.method not in ("lora", "full", "linear_probe"):
            raise ConfigError(f"baselines train lora, full or linear_probe, got {self.tuning.method!r}")
        if self.kind == "prototype" and (self.tuning.method != "linear_probe" or self.epochs != 1):
            raise ConfigError("the prototype baseline keeps the backbone frozen and makes one pass over the data: "
                              f"set tuning: {{method: linear_probe}} and epochs: 1 (got {self.tuning.method!r}, "
                              f"{self.epochs})")

    @property
    def evaluates_untrained(self) -> bool:
        """Whether a run evaluates before training (forward transfer): sequential runs do; joint training has
        no stage before its one stage, and the prototype classifier has no prototype, so no prediction, yet."""
        return self.kind == "sequential"


def prepare_baseline(
    cfg: BaselineConfig,
    benchmark: ContinualBenchmark,
    *,
    backbone: BackboneSource,
    seed: int | None = None,
    name: str,
) -> tuple[Naive | JointTraining | PrototypeStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_baseline` runs, built but not run: the strategy on a freshly seeded
    :class:`PEFTClassifier`, the benchmark and the configuration stored in the record (arguments as
    :func:`run_baseline`)."""
    seed = default_seed(cfg, benchmark) if seed is None else seed
    seed_everything(seed)
    pretrained = make_backbone(backbone)
    masked = cfg.kind == "sequential"
    loop = loop_arguments(cfg, benchmark.n_experiences, "baseline device",
                          plugins=[TrainClassMaskPlugin()] if masked else [])
    if cfg.kind == "prototype":
        strategy = PrototypeStrategy(model=PrototypeClassifier(pretrained, benchmark.n_classes), **loop)
    else:
        model = PEFTClassifier(pretrained, benchmark.n_classes, cfg.tuning)
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        strategy = (Naive if masked else JointTraining)(
            model=model,
            optimizer=torch.optim.Adam(trainable, lr=cfg.lr),
            criterion=torch.nn.CrossEntropyLoss(),
            **loop,
        )
    config = {"method": name, "seed": seed, "backbone": backbone_label(backbone, pretrained, None), **asdict(cfg)}
    return strategy, benchmark, config


def run_baseline(
    cfg: BaselineConfig,
    benchmark: ContinualBenchmark,
    *,
    backbone: BackboneSource,
    seed: int | None = None,
    name: str,
) -> RunResult:
    """Seed, build a fresh :class:`PEFTClassifier` (or the prototype classifier) and run the baseline over
    ``benchmark``; return the record and the trained strategy.

    Args:
        cfg: the baseline (a method experiment's ``baselines[name]``, or built in code).
        benchmark: the benchmark (a baseline config has none of its own).
        backbone: a name, a model or a function returning one (:data:`~pecft_lib.methods.spec.BackboneSource`);
            full fine-tuning and LoRA change it, so give each run a fresh one (a name or a function).
        seed: default the ``seed`` of ``benchmark.info``, else 0 (:func:`~pecft_lib.methods.spec.default_seed`).
        name: the run's name in its record (``"SeqFT"``, ``"Joint"``, ...).
    """
    return run_prepared(prepare_baseline(cfg, benchmark, backbone=backbone, seed=seed, name=name), name=name,
                        evaluate_untrained=cfg.evaluates_untrained)
