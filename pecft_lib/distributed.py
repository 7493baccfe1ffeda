"""Data parallelism for the library's Avalanche strategies across the processes of ``accelerate launch``.

Every process builds the same seeded model and strategy. :class:`GradientAveraging` then makes the run data
parallel as DDP does, without wrapping the model (the methods call their models' own methods —
``begin_experience``, ``query``, ``aux_loss`` — which a DDP wrapper would hide): each process trains on its
shard of every epoch (a :class:`~torch.utils.data.DistributedSampler` reshuffled per epoch), and after
every backward pass the gradients are averaged over the processes, so every process applies the same
update. The global batch is ``processes × batch_size``. Evaluation runs on every process over the whole
test stream (the same numbers everywhere); only the main process writes files.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader, DistributedSampler


class GradientAveraging(SupervisedPlugin, supports_distributed=True):
    """Shards the training data over ``processes`` and averages gradients (all-reduce) after every backward.

    Args:
        processes: the number of processes (``torch.distributed`` world size, initialised by Accelerate).
        rank: this process's index.
        seed: seeds the shuffling of the shards (the same on every process).
    """

    def __init__(self, processes: int, rank: int, seed: int):
        super().__init__()
        self.processes, self.rank, self.seed = processes, rank, seed

    def before_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        dataset = strategy.adapted_dataset
        drop_last = getattr(strategy, "drop_last", False)
        sampler = DistributedSampler(dataset, num_replicas=self.processes, rank=self.rank, shuffle=True,
                                     seed=self.seed, drop_last=drop_last)
        clock = strategy.clock
        sampler.set_epoch(clock.train_exp_counter * strategy.train_epochs + clock.train_exp_epochs)
        strategy.dataloader = DataLoader(dataset, batch_size=strategy.train_mb_size, sampler=sampler,
                                         collate_fn=getattr(dataset, "collate_fn", None), drop_last=drop_last)

    def after_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        for parameter in strategy.model.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
                parameter.grad.div_(self.processes)


__all__ = ["GradientAveraging"]
