"""Configuration of CODA-Prompt (Smith et al., CVPR 2023) and of its experiments (``configs/coda_prompt.yaml``).

Defaults are the **current reference code** (GT-RIPL/CODA-Prompt, commit 6417d4f, ``experiments/*.sh``:
``--prompt_param 100 8 0.0``): M=100 components of length L_p=8 at layers 0–4, Gram–Schmidt initialisation of
each task's new components, no orthogonality penalty, evaluation over the seen classes.
The paper's setting (one orthogonal initialisation at the start, penalty μ=0.1, GT-RIPL/CODA-Prompt#12) is
``init="orthogonal_at_start", ortho_penalty=0.1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...benchmarks import BenchmarkConfig
from ...errors import ConfigError, UnknownNameError
from ..baselines import BaselineConfig
from ..common.precision import check_precision
from ..prompting import EVAL_SCOPES

INITS = ("gram_schmidt_per_task", "orthogonal_at_start")
SCHEDULES = ("cosine", "constant")


@dataclass
class CodaPromptConfig:
    """The method's own settings.

    Attributes:
        n_components: M, prompt components per layer (split into equal groups, one per task).
        prompt_length: L_p, rows of every component; the first L_p/2 become the layer's key prefix, the
            last L_p/2 its value prefix (so it must be even).
        layers: blocks that get a prefix (the reference's ``e_layers = [0, 1, 2, 3, 4]``).
        ortho_penalty: μ of ``μ · Σ_l [O(K^l) + O(A^l) + O(P^l)]``, ``O(X) = mean((X Xᵀ − I)²)`` over the
            components in use. Reference default 0.0; the paper used 0.1 (GT-RIPL/CODA-Prompt#12).
        init: ``"gram_schmidt_per_task"`` (the reference code: each task's new components are drawn from
            N(0, I) when the task starts and orthonormalised against the earlier ones) or
            ``"orthogonal_at_start"`` (the paper, per the reference's comments "in the original paper, we
            used ortho init at the start": all M components orthonormalised once, at construction).
        eval_scope: ``"seen"`` classes only at evaluation (the CODA reference, ``output[:, :valid_out_dim]``)
            or ``"all"`` classes of the benchmark.
    """

    n_components: int = 100
    prompt_length: int = 8
    layers: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    ortho_penalty: float = 0.0
    init: str = "gram_schmidt_per_task"
    eval_scope: str = "seen"

    def __post_init__(self) -> None:
        if self.n_components < 1:
            raise ConfigError(f"n_components must be at least 1, got {self.n_components}")
        if self.prompt_length < 2 or self.prompt_length % 2:
            raise ConfigError(f"prompt_length must be even and at least 2 (half keys, half values), "
                              f"got {self.prompt_length}")
        if not self.layers or len(set(self.layers)) != len(self.layers) or min(self.layers) < 0:
            raise ConfigError(f"layers must be distinct non-negative block indices, got {self.layers}")
        if self.ortho_penalty < 0:
            raise ConfigError(f"ortho_penalty must be non-negative, got {self.ortho_penalty}")
        if self.init not in INITS:
            raise UnknownNameError("CODA-Prompt init", self.init, INITS)
        if self.eval_scope not in EVAL_SCOPES:
            raise UnknownNameError("evaluation scope", self.eval_scope, EVAL_SCOPES)


@dataclass
class CodaPromptOptimConfig:
    """A fresh Adam(0.9, 0.999) per task, the reference's per-epoch cosine, no clipping.

    ``schedule="cosine"`` sets the learning rate of epoch ``e`` to ``lr · cos(99πe / (200(E−1)))``
    (``utils/schedulers.py``), restarted with every task since the optimizer is rebuilt.
    """

    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 20
    schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip_norm: float | None = None
    eval_batch_size: int = 256
    cache_queries: bool = False
    """Reuse q(x) across epochs (:mod:`pecft_lib.methods.prompting.cache`); deterministic inputs only."""
    drop_last: bool = True
    """Skip the last, incomplete training batch of every epoch (the reference's ``DataLoader(drop_last=True)``)."""
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "optim.precision")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"epochs, batch sizes and lr must be positive, got {self.epochs}, "
                              f"{self.batch_size}, {self.eval_batch_size}, {self.lr}")
        if self.schedule not in SCHEDULES:
            raise UnknownNameError("CODA-Prompt learning-rate schedule", self.schedule, SCHEDULES)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be non-negative, got {self.weight_decay}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ConfigError(f"grad_clip_norm must be positive or null, got {self.grad_clip_norm}")

    @property
    def effective_lr(self) -> float:
        """``lr`` itself: the reference does not scale it by the batch size (``PromptOptimConfig`` protocol)."""
        return self.lr


@dataclass
class CodaPromptExperimentConfig:
    """One CODA-Prompt experiment: backbone checkpoint, benchmark, method, optimisation, and the baselines it
    is compared with on the same backbone and benchmark (name → :class:`BaselineConfig`). ``backbone`` and
    ``benchmark`` may be left out when the runner is given them (``run_*(cfg, benchmark, backbone=...)``)."""

    backbone: str | None = None
    benchmark: BenchmarkConfig | None = None
    method: CodaPromptConfig = field(default_factory=CodaPromptConfig)
    optim: CodaPromptOptimConfig = field(default_factory=CodaPromptOptimConfig)
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)


@dataclass
class CodaPromptPresets:
    """``configs/coda_prompt.yaml``: per profile, named experiments (quick: ``vision``, ``text``; paper:
    ``cifar100``, ``imagenet_r``)."""

    experiments: dict[str, CodaPromptExperimentConfig]
