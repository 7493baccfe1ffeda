"""The Avalanche strategy of the prompt methods (after google-research/l2p, commit dd8836e, and its PyTorch ports).

On top of :class:`~pecft_lib.methods.common.ContinualPEFTStrategy` (fresh optimizer per experience over
the trainable parameters, training-time class mask, evaluation over all classes) it

* adds the model's auxiliary loss (:attr:`PromptClassifier.aux_loss`) to the cross-entropy of a training
  step — L2P's key pull, later DualPrompt's and CODA-Prompt's terms;
* clips the global gradient norm before each step (1.0 in L2P's and DualPrompt's references);
* optionally caches q(x) across the epochs of an experience (:mod:`.cache`): ``cache_queries=True`` is
  only valid when the training inputs are deterministic, and then gives the same results as ``False``.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

from ..common import ContinualPEFTStrategy, LoopConfig, LRSchedule, OptimizerFactory, loop_arguments
from ..spec import StrategyState
from .cache import QueryCache, with_sample_index
from .model import PromptClassifier


class PromptStrategy(ContinualPEFTStrategy):
    """Training of a :class:`PromptClassifier`.

    Args:
        model: the prompt model.
        optimizer_factory: builds the optimizer of one experience from its trainable parameters.
        grad_clip_norm: maximum global gradient norm (``None`` = no clipping).
        cache_queries: reuse q(x) of a training sample across epochs (deterministic inputs only).
        drop_last: drop the last, incomplete training batch of an epoch (CODA-Prompt's training loader).
        **kwargs: :class:`~pecft_lib.methods.common.ContinualPEFTStrategy` arguments.
    """

    def __init__(
        self,
        *,
        model: PromptClassifier,
        optimizer_factory: OptimizerFactory,
        grad_clip_norm: float | None = None,
        cache_queries: bool = False,
        drop_last: bool = False,
        **kwargs: Any,
    ):
        if not isinstance(model, PromptClassifier):
            raise TypeError(f"{type(self).__name__} needs a PromptClassifier, got {type(model).__name__}")
        if grad_clip_norm is not None and grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be positive or None, got {grad_clip_norm}")
        super().__init__(model=model, optimizer_factory=optimizer_factory, **kwargs)
        self.grad_clip_norm = grad_clip_norm
        self.cache_queries = cache_queries
        self.drop_last = drop_last
        self.query_cache = QueryCache()

    @property
    def _indexed_batch(self) -> bool:
        return self.cache_queries and self.is_training

    @property
    def mb_task_id(self) -> torch.Tensor:
        # an indexed training batch is [x, y, task, index] (see .cache); otherwise the task label is last
        return self.mbatch[2] if self._indexed_batch else super().mb_task_id

    def train_dataset_adaptation(self, **kwargs: Any) -> None:
        super().train_dataset_adaptation(**kwargs)
        if self.cache_queries:
            self.query_cache.clear()
            self.adapted_dataset = with_sample_index(self.adapted_dataset)

    def make_train_dataloader(self, **kwargs: Any) -> None:
        super().make_train_dataloader(**{**kwargs, "drop_last": self.drop_last})

    def forward(self) -> torch.Tensor:
        query = None
        if self._indexed_batch:
            query = self.query_cache.lookup(self.mbatch[-1], self.mb_x, self.model.query)
        return self.model(self.mb_x, query=query)

    def criterion(self) -> torch.Tensor:
        loss = super().criterion()
        if self.is_training and self.model.aux_loss is not None:
            loss = loss + self.model.aux_loss
        return loss

    def optimizer_step(self) -> None:
        if self.grad_clip_norm is not None:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)
        super().optimizer_step()


class PromptOptimConfig(LoopConfig, Protocol):
    """What :func:`build_prompt_strategy` reads of a prompt method's optimisation config."""

    effective_lr: float
    weight_decay: float
    grad_clip_norm: float | None
    cache_queries: bool


def build_prompt_strategy(
    model: PromptClassifier,
    optim: PromptOptimConfig,
    n_experiences: int,
    plugins: Sequence[Any] = (),
    lr_schedule: LRSchedule | None = None,
    drop_last: bool = False,
) -> PromptStrategy:
    """The references' recipe: a fresh Adam(0.9, 0.999) per experience at ``optim.effective_lr`` (optionally
    scaled per epoch by ``lr_schedule``), global-norm clipping, the query cache as configured, optionally a
    training loader that drops the last incomplete batch, and the accuracy-matrix evaluator."""
    lr = optim.effective_lr
    return PromptStrategy(
        model=model,
        optimizer_factory=lambda params: torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999),
                                                          weight_decay=optim.weight_decay),
        lr_schedule=lr_schedule,
        grad_clip_norm=optim.grad_clip_norm,
        cache_queries=optim.cache_queries,
        drop_last=drop_last,
        **loop_arguments(optim, n_experiences, plugins=plugins),
    )


def _save_query_cache(strategy: PromptStrategy) -> dict[str, Any]:
    return {"query_cache": strategy.query_cache.state_dict()}


def _load_query_cache(strategy: PromptStrategy, state: dict[str, Any]) -> None:
    strategy.query_cache.clear()
    strategy.query_cache.load_state_dict(state["query_cache"])


PROMPT_STRATEGY_STATE = StrategyState(PromptStrategy, _save_query_cache, _load_query_cache)
"""The checkpoint state of every prompt method: the query cache of the current experience (its features come
from batches of a different composition than a recomputation would use, so recomputing them could change the
last bits of a result)."""
