"""Configuration of L2P (Wang et al., CVPR 2022) and of its experiments (``configs/l2p.yaml``).

Defaults are the **v1 setting** of the reference code: JAX v1 (google-research/l2p, commit 98b10ea) =
PyTorch-L2P (JH-LEE-KR/l2p-pytorch, commit f7bc994) = PILOT (sun-hailong/LAMDA-PILOT, commit 2647455), M=10
prompts of length L_p=5, top N=5, pull coefficient λ=0.1. The later JAX HEAD setting (commit dd8836e) is
M=10, L_p=10, N=4, λ=1.0 *with* prompts placed before [CLS] without position embedding; its sizes and λ can
be set here, its token layout cannot (the backbone inserts prompts after [CLS], PyTorch-L2P's layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...benchmarks import BenchmarkConfig
from ...errors import ConfigError, UnknownNameError
from ..baselines import BaselineConfig
from ..common.precision import check_precision
from ..prompting import EVAL_SCOPES, PROMPT_INITS

POSITION_EMBEDDINGS = ("cls_copy", "none")


@dataclass
class L2PConfig:
    """The method's own settings.

    Attributes:
        pool_size: M, prompts (and keys) in the pool.
        prompt_length: L_p, tokens per prompt.
        top_k: N, prompts selected per sample; N·L_p tokens are inserted after [CLS].
        pull_coefficient: λ of the surrogate loss −λ·mean_b Σ_{j∈sel(b)} cos(q_b, k_j).
        batchwise_selection: the reference's majority vote over the batch (``batchwise_prompt=True``).
            **Leaks task identity** at test time, where batches hold a single task
            (google-research/l2p#28); off by default, then every sample is prompted independently.
        init: ``"pytorch"`` (prompts and keys U(−1, 1), head trunc-normal(0.02): PyTorch-L2P) or ``"jax"``
            (prompts and keys U[0, 0.01), head zeros: the JAX code).
        position_embedding: ``"cls_copy"`` (the prompts get the [CLS] position embedding: JAX v1 and
            PyTorch-L2P) or ``"none"`` (text backbones, which have no such embedding to copy).
        eval_scope: ``"all"`` classes of the benchmark at evaluation (the L2P references) or the ``"seen"``
            ones only (CODA-Prompt's protocol, which it also applies to its L2P++).
    """

    pool_size: int = 10
    prompt_length: int = 5
    top_k: int = 5
    pull_coefficient: float = 0.1
    batchwise_selection: bool = False
    init: str = "pytorch"
    position_embedding: str = "cls_copy"
    eval_scope: str = "all"

    def __post_init__(self) -> None:
        if min(self.pool_size, self.prompt_length, self.top_k) < 1:
            raise ConfigError(f"pool_size, prompt_length and top_k must be at least 1, got {self.pool_size}, "
                              f"{self.prompt_length}, {self.top_k}")
        if self.top_k > self.pool_size:
            raise ConfigError(f"top_k={self.top_k} prompts cannot be selected from a pool of {self.pool_size}")
        if self.pull_coefficient < 0:
            raise ConfigError(f"pull_coefficient must be non-negative, got {self.pull_coefficient}")
        if self.init not in PROMPT_INITS:
            raise UnknownNameError("L2P init", self.init, PROMPT_INITS)
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise UnknownNameError("L2P prompt position embedding", self.position_embedding, POSITION_EMBEDDINGS)
        if self.eval_scope not in EVAL_SCOPES:
            raise UnknownNameError("evaluation scope", self.eval_scope, EVAL_SCOPES)


@dataclass
class L2POptimConfig:
    """A fresh Adam(0.9, 0.999) per task, constant learning rate, gradient clipping (``configs/cifar100_l2p.py``).

    The effective learning rate is ``lr · batch_size / lr_reference_batch`` as in the reference code
    (``None`` = ``lr`` unscaled); :attr:`effective_lr` is stored in every run record.
    """

    lr: float = 0.03
    lr_reference_batch: int | None = 256
    batch_size: int = 16
    epochs: int = 5
    grad_clip_norm: float | None = 1.0
    weight_decay: float = 0.0
    eval_batch_size: int = 256
    cache_queries: bool = False
    """Reuse q(x) across epochs (:mod:`pecft_lib.methods.prompting.cache`); deterministic inputs only."""
    device: str = "cpu"
    precision: str = "fp32"
    """``fp32`` (the references) or ``bf16`` autocast around the forward (:mod:`pecft_lib.methods.common.precision`)."""

    def __post_init__(self) -> None:
        check_precision(self.precision, "optim.precision")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"epochs, batch sizes and lr must be positive, got {self.epochs}, "
                              f"{self.batch_size}, {self.eval_batch_size}, {self.lr}")
        if self.lr_reference_batch is not None and self.lr_reference_batch < 1:
            raise ConfigError(f"lr_reference_batch must be positive or null, got {self.lr_reference_batch}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ConfigError(f"grad_clip_norm must be positive or null, got {self.grad_clip_norm}")

    @property
    def effective_lr(self) -> float:
        if self.lr_reference_batch is None:
            return self.lr
        return self.lr * self.batch_size / self.lr_reference_batch


@dataclass
class L2PExperimentConfig:
    """One L2P experiment: backbone checkpoint, benchmark, method, optimisation, and the baselines it is
    compared with on the same backbone and benchmark (name → :class:`BaselineConfig`). ``backbone`` and
    ``benchmark`` may be left out when the runner is given them (``run_*(cfg, benchmark, backbone=...)``)."""

    backbone: str | None = None
    benchmark: BenchmarkConfig | None = None
    method: L2PConfig = field(default_factory=L2PConfig)
    optim: L2POptimConfig = field(default_factory=L2POptimConfig)
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)


@dataclass
class L2PPresets:
    """``configs/l2p.yaml``: per profile, named experiments (quick: ``vision``, ``text``; paper: ``cifar100``)."""

    experiments: dict[str, L2PExperimentConfig]
