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
from typing import Any, Callable

import torch
from avalanche.training import JointTraining, Naive

from ...backbones import Backbone, load_backbone
from ...benchmarks import ContinualBenchmark
from ...errors import ConfigError, UnknownNameError
from ...evaluation import RunRecord, run_strategy
from ...repro import seed_everything
from ..common import loop_arguments
from ..common.precision import check_precision
from ..finetuning import PEFTClassifier, TuningConfig
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
    name: str,
    backbone: str | None = None,
    backbone_factory: Callable[[], Backbone] | None = None,
    seed: int = 0,
) -> tuple[Naive | JointTraining | PrototypeStrategy, ContinualBenchmark, dict[str, Any]]:
    """Everything :func:`run_baseline` runs, built but not run: the strategy on a freshly seeded
    :class:`PEFTClassifier`, the benchmark and the configuration stored in the record."""
    if (backbone is None) == (backbone_factory is None):
        raise ValueError("give exactly one of backbone (a name) or backbone_factory")
    seed_everything(seed)
    pretrained = backbone_factory() if backbone_factory else load_backbone(backbone)
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
    config = {"method": name, "seed": seed, "backbone": backbone or "custom", **asdict(cfg)}
    return strategy, benchmark, config


def run_baseline(
    cfg: BaselineConfig,
    benchmark: ContinualBenchmark,
    *,
    name: str,
    backbone: str | None = None,
    backbone_factory: Callable[[], Backbone] | None = None,
    seed: int = 0,
) -> RunRecord:
    """Seed, build a fresh :class:`PEFTClassifier` and run the baseline over ``benchmark``."""
    strategy, benchmark, config = prepare_baseline(cfg, benchmark, name=name, backbone=backbone,
                                                   backbone_factory=backbone_factory, seed=seed)
    return run_strategy(strategy, benchmark, name=name, config=config, evaluate_untrained=cfg.evaluates_untrained)
