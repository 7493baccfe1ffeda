"""DualPrompt's G-prompt, E-prompt pool, task-forced training selection and prefix insertion (Wang et al.,
ECCV 2022)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ...backbones import Backbone, as_backbone
from ...backbones.attention import Prefix
from ...errors import ConfigError
from ..prompting import KeyQuerySelection, PromptClassifier, Prompting, init_prompts, majority_vote, top_ids
from .config import DualPromptConfig

KEY, VALUE = 0, 1
"""Slots of a prefix prompt ``[..., 2, L, D]``: key vectors, value vectors (JAX semantics: google-research/l2p,
commit dd8836e)."""


class DualPromptModel(KeyQuerySelection, PromptClassifier):
    """A frozen backbone with a shared G-prompt and one E-prompt per task, both as attention prefixes.

    Parameters (``D`` = width):

    * ``g_prompt`` ``[len(g_layers), 2, L_g, D]`` — used by every sample, trained in every task;
    * ``e_prompts`` ``[M, len(e_layers), 2, L_e, D]`` — the pool, one E-prompt (for all its layers) per slot;
    * ``keys`` ``[M, D]`` — one key per E-prompt;
    * ``head`` — linear over all classes, on the [CLS] token (the skeleton's :meth:`features`).

    Selection: while training task t (a training-mode forward after :meth:`begin_experience` of the t-th
    experience), every sample uses E-prompt t (the references' ``use_prompt_mask=True``); otherwise each
    sample takes the E-prompt whose key is closest (cosine) to its query q(x), over the whole pool, or the
    batch's majority choice if ``config.batchwise_selection``. The pull loss −λ·mean_b cos(q_b, k_sel(b))
    is the auxiliary loss; only it trains the keys.

    Attributes:
        task: index of the experience being (or last) trained, i.e. the E-prompt forced in training mode;
            ``None`` before the first :meth:`begin_experience`.
    """

    def __init__(self, backbone: Backbone, n_classes: int, config: DualPromptConfig | None = None):
        backbone = as_backbone(backbone)
        config = config or DualPromptConfig()
        super().__init__(backbone, n_classes, head_init="zeros" if config.init == "jax" else "trunc_normal",
                         eval_scope=config.eval_scope)
        beyond = sorted(layer for layer in (*config.g_layers, *config.e_layers) if layer >= backbone.num_layers)
        if beyond:
            raise ConfigError(f"prompt layers {beyond} do not exist: the backbone has blocks "
                              f"0..{backbone.num_layers - 1}")
        self.config = config
        width = backbone.embed_dim
        self.g_prompt = nn.Parameter(torch.empty(len(config.g_layers), 2, config.g_length, width))
        self.e_prompts = nn.Parameter(torch.empty(config.pool_size, len(config.e_layers), 2, config.e_length, width))
        self.keys = nn.Parameter(torch.empty(config.pool_size, width))
        init_prompts((self.g_prompt, self.e_prompts, self.keys), config.init)
        self.task: int | None = None

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Start the next task: its E-prompt slot is the task's index; with ``carry_over_previous_prompt``
        it starts as a copy of the previous task's E-prompt (the key keeps its own value)."""
        super().begin_experience(classes)
        task = 0 if self.task is None else self.task + 1
        if task >= self.config.pool_size:
            raise ConfigError(f"experience {task + 1} needs E-prompt {task}, but the pool has "
                              f"{self.config.pool_size}: DualPrompt needs pool_size >= number of experiences")
        if task > 0 and self.config.carry_over_previous_prompt:
            with torch.no_grad():
                self.e_prompts[task] = self.e_prompts[task - 1]
        self.task = task

    def select(self, similarity: torch.Tensor) -> torch.Tensor:
        """``[B, 1]`` E-prompt ids: the current task's while training, else per-sample (or voted) top-1."""
        if self.training and self.task is not None:
            return torch.full((len(similarity), 1), self.task, dtype=torch.long, device=similarity.device)
        ids = top_ids(similarity.detach(), 1)
        if self.config.batchwise_selection:
            ids = majority_vote(ids, self.config.pool_size).expand(len(ids), -1)
        return ids

    def prefixes(self, ids: torch.Tensor) -> dict[int, Prefix]:
        """``{block: (keys, values)}`` for E-prompt ids ``[B, 1]``: ``[G; E]`` where a block has both."""
        selected = self.e_prompts[ids[:, 0]]  # [B, len(e_layers), 2, L_e, D]
        prefixes: dict[int, Prefix] = {}
        for index, layer in enumerate(self.config.e_layers):
            keys, values = selected[:, index, KEY], selected[:, index, VALUE]
            if self.config.prefix_layout == "pytorch_reshape":
                scrambled = torch.stack([keys, values]).reshape(len(ids), 2, *keys.shape[1:])
                keys, values = scrambled[:, KEY], scrambled[:, VALUE]
            prefixes[layer] = (keys, values)
        for index, layer in enumerate(self.config.g_layers):
            keys, values = self.g_prompt[index, KEY], self.g_prompt[index, VALUE]
            if layer in prefixes:
                e_keys, e_values = prefixes[layer]
                keys = torch.cat([keys.expand(len(ids), -1, -1), e_keys], dim=1)
                values = torch.cat([values.expand(len(ids), -1, -1), e_values], dim=1)
            prefixes[layer] = (keys, values)
        return prefixes

    def make_prompts(self, query: torch.Tensor) -> Prompting:
        similarity = self.similarity(query)
        ids = self.select(similarity)
        pull = similarity.gather(1, ids).mean()
        return Prompting(prefixes=self.prefixes(ids), aux_loss=-self.config.pull_coefficient * pull)
