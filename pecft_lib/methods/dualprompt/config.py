"""Configuration of DualPrompt (Wang et al., ECCV 2022) and of its experiments (``configs/dualprompt.yaml``).

Defaults are the reference code's Split CIFAR-100 setting (JAX ``configs/cifar100_dualprompt.py`` of
google-research/l2p, commit dd8836e = PyTorch DualPrompt ``configs/cifar100_dualprompt.py`` of
JH-LEE-KR/dualprompt-pytorch, commit 7eb457d): G-prompt of length 5 at layers 0–1, a pool of 10 E-prompts
of length 5 at layers 2–4 with one key each, top-1, pull coefficient 1.0, the current task's E-prompt forced
during training and copied from the previous task's at the start of a task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...benchmarks import BenchmarkConfig
from ...errors import ConfigError, UnknownNameError
from ..baselines import BaselineConfig
from ..l2p import L2POptimConfig
from ..prompting import EVAL_SCOPES, PROMPT_INITS

PREFIX_LAYOUTS = ("jax", "pytorch_reshape")


@dataclass
class DualPromptConfig:
    """The method's own settings.

    A prompt of "length L" is L key vectors and L value vectors per layer, concatenated to that layer's
    attention keys and values after the frozen projections (prefix-tuning, JAX semantics,
    ``models/prefix_attention.py``).

    Attributes:
        pool_size: M_e, E-prompts (and keys) in the pool; the reference uses one per task, so a benchmark
            must not have more experiences than this.
        e_length: L_e, prefix length of each E-prompt (5 for CIFAR-100, 20 for ImageNet-R).
        e_layers: blocks (0-based) that receive the selected E-prompt.
        g_length: L_g, prefix length of the G-prompt.
        g_layers: blocks (0-based) that receive the G-prompt (``[]`` = no G-prompt). Where a block has both,
            the prefix is [G, E] along the length (the JAX code; PyTorch DualPrompt would apply G only).
        pull_coefficient: λ of the key loss −λ·mean_b cos(q_b, k_selected(b)).
        batchwise_selection: the reference's majority vote over the batch at test time
            (``batchwise_prompt=True``, used by both references for CIFAR-100). **Leaks task identity**, since
            test batches hold a single task (google-research/l2p#28); off by default, then every sample
            picks its E-prompt alone.
        carry_over_previous_prompt: at the start of task t > 0, overwrite E-prompt t with a copy of E-prompt
            t − 1 (not the key): the references' ``shared_prompt_pool=True``.
        init: ``"pytorch"`` (prompts and keys U(−1, 1), head trunc-normal(0.02): PyTorch DualPrompt) or
            ``"jax"`` (prompts and keys U[0, 0.01), head zeros: the JAX code).
        prefix_layout: ``"jax"`` (key prefix = slot 0, value prefix = slot 1 of the selected prompt, per
            sample) or ``"pytorch_reshape"``, a bug-compatible emulation of PyTorch DualPrompt's
            ``prompt.py``, which reshapes a ``(2, B, …)`` tensor to ``(B, 2, …)`` without permuting: in a
            batch of B samples, sample b gets slots ``(2b) // B`` and ``(2b+1) // B`` of samples
            ``2b mod B`` and ``(2b+1) mod B`` as key and value prefixes (JH-LEE-KR/dualprompt-pytorch#8).
            It mixes samples (a
            leakage channel) and exists for parity with that code only; with B = 1 both layouts agree.
        eval_scope: ``"all"`` classes of the benchmark at evaluation (the DualPrompt references) or the
            ``"seen"`` ones only (CODA-Prompt's protocol).
    """

    pool_size: int = 10
    e_length: int = 5
    e_layers: list[int] = field(default_factory=lambda: [2, 3, 4])
    g_length: int = 5
    g_layers: list[int] = field(default_factory=lambda: [0, 1])
    pull_coefficient: float = 1.0
    batchwise_selection: bool = False
    carry_over_previous_prompt: bool = True
    init: str = "pytorch"
    prefix_layout: str = "jax"
    eval_scope: str = "all"

    def __post_init__(self) -> None:
        if self.pool_size < 1 or self.e_length < 1:
            raise ConfigError(f"pool_size and e_length must be at least 1, got {self.pool_size}, {self.e_length}")
        if not self.e_layers:
            raise ConfigError("e_layers must name at least one block: DualPrompt without E-prompts has no keys")
        for name, layers in (("e_layers", self.e_layers), ("g_layers", self.g_layers)):
            if any(layer < 0 for layer in layers) or len(set(layers)) != len(layers):
                raise ConfigError(f"{name} must hold distinct non-negative block indices, got {layers}")
        if self.g_layers and self.g_length < 1:
            raise ConfigError(f"g_length must be at least 1 when g_layers is set, got {self.g_length}")
        if self.pull_coefficient < 0:
            raise ConfigError(f"pull_coefficient must be non-negative, got {self.pull_coefficient}")
        if self.init not in PROMPT_INITS:
            raise UnknownNameError("DualPrompt init", self.init, PROMPT_INITS)
        if self.prefix_layout not in PREFIX_LAYOUTS:
            raise UnknownNameError("DualPrompt prefix layout", self.prefix_layout, PREFIX_LAYOUTS)
        if self.eval_scope not in EVAL_SCOPES:
            raise UnknownNameError("evaluation scope", self.eval_scope, EVAL_SCOPES)


@dataclass
class DualPromptOptimConfig(L2POptimConfig):
    """L2P's recipe with DualPrompt's batch: a fresh Adam(0.9, 0.999) per task, constant learning rate
    ``lr · batch_size / lr_reference_batch``, global-norm clipping 1.0, no weight decay (JAX
    ``configs/*_dualprompt.py``; ``main.py`` of JH-LEE-KR/dualprompt-pytorch)."""

    batch_size: int = 24


@dataclass
class DualPromptExperimentConfig:
    """One DualPrompt experiment: backbone checkpoint, benchmark, method, optimisation, and the baselines it
    is compared with on the same backbone and benchmark (name → :class:`BaselineConfig`). ``backbone`` and
    ``benchmark`` may be left out when the runner is given them (``run_*(cfg, benchmark, backbone=...)``)."""

    backbone: str | None = None
    benchmark: BenchmarkConfig | None = None
    method: DualPromptConfig = field(default_factory=DualPromptConfig)
    optim: DualPromptOptimConfig = field(default_factory=DualPromptOptimConfig)
    baselines: dict[str, BaselineConfig] = field(default_factory=dict)


@dataclass
class DualPromptPresets:
    """``configs/dualprompt.yaml``: per profile, named experiments (quick: ``vision``, ``text``; paper:
    ``cifar100``, ``imagenet_r``)."""

    experiments: dict[str, DualPromptExperimentConfig]
