"""parameter_growth: trainable and stored parameters per experience, counted on the models themselves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pecft_lib.backbones import load_backbone
from pecft_lib.evaluation.overhead import GrowthRow, parameter_growth
from pecft_lib.methods.inflora import InfLoRAConfig, InfLoRAModel
from pecft_lib.methods.l2p import L2PConfig, L2PModel


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(6, 4)  # 28 parameters
        self.encoder.requires_grad_(False)


class GrowingModel(nn.Module):
    """A per-task Linear(4, n) head on a frozen backbone; earlier heads are frozen, plus one shared bias."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.shared = nn.Parameter(torch.zeros(3))
        self.heads = nn.ModuleList()

    def begin_experience(self, classes) -> None:
        for head in self.heads:
            head.requires_grad_(False)
        self.heads.append(nn.Linear(4, len(classes)))


def test_counts_what_each_experience_adds_and_trains():
    rows = parameter_growth(GrowingModel, Backbone(), n_tasks=3, classes_per_task=2)
    head = 4 * 2 + 2
    assert rows == [GrowthRow(1, 3 + head, 3 + head), GrowthRow(2, 3 + head, 3 + 2 * head),
                    GrowthRow(3, 3 + head, 3 + 3 * head)]


def test_classes_passed_in_order():
    seen = []

    class Recorder(GrowingModel):
        def begin_experience(self, classes) -> None:
            seen.append(list(classes))
            super().begin_experience(classes)

    parameter_growth(Recorder, Backbone(), n_tasks=2, classes_per_task=3)
    assert seen == [[0, 1, 2], [3, 4, 5]]


def test_wrapped_backbone_layers_are_not_counted():
    """InfLoRA wraps the key and value projections; only its branches and heads are stored."""
    backbone = load_backbone("pecft-vit-tiny")
    width, blocks, rank, per_task = backbone.embed_dim, backbone.num_layers, 3, 2
    rows = parameter_growth(lambda b: InfLoRAModel(b, 6, InfLoRAConfig(rank=rank)), backbone, 3, per_task)
    branches = blocks * 2 * (rank * width + width * rank)  # down and up on k and v of every block
    head = width * per_task + per_task
    up_and_head = blocks * 2 * width * rank + head
    assert [row.stored for row in rows] == [(t + 1) * (branches + head) for t in range(3)]
    assert [row.trainable for row in rows] == [up_and_head] * 3


def test_preallocated_pool_does_not_grow():
    backbone = load_backbone("pecft-vit-tiny")
    config = L2PConfig(pool_size=4, prompt_length=2, top_k=2)
    rows = parameter_growth(lambda b: L2PModel(b, 6, config), backbone, 3, 2)
    width = backbone.embed_dim
    expected = 4 * 2 * width + 4 * width + width * 6 + 6  # prompts, keys, one head over all classes
    assert {row.stored for row in rows} == {expected}


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        parameter_growth(GrowingModel, Backbone(), n_tasks=0, classes_per_task=2)
    with pytest.raises(ValueError, match="begin_experience"):
        parameter_growth(lambda b: nn.Sequential(b.encoder), Backbone(), n_tasks=1, classes_per_task=1)
    with pytest.raises(ValueError, match="does not hold the backbone"):
        parameter_growth(lambda b: GrowingModel(Backbone()), Backbone(), n_tasks=1, classes_per_task=1)
