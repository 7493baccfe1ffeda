"""TrainClassMaskPlugin: output rows of classes outside the current experience get no update."""

import pytest
import torch
from avalanche.training import Naive

from conftest import make_model
from pecft_lib.evaluation import make_evaluator
from pecft_lib.methods.train_mask import TrainClassMaskPlugin
from pecft_lib.repro import seed_everything

pytestmark = pytest.mark.usefixtures("single_thread")


def _last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]


@pytest.mark.parametrize("masked", [True, False])
def test_old_class_rows_frozen_only_with_the_mask(blob_benchmark, masked):
    seed_everything(0)
    model = make_model()
    strategy = Naive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16, train_epochs=2, eval_mb_size=64, device="cpu", evaluator=make_evaluator(2),
        plugins=[TrainClassMaskPlugin()] if masked else [],
    )
    strategy.train(blob_benchmark.train_stream[0])
    head = _last_linear(model)
    before = head.weight.detach().clone(), head.bias.detach().clone()
    strategy.train(blob_benchmark.train_stream[1])
    first = sorted(blob_benchmark.train_stream[0].classes_in_this_experience)
    second = sorted(blob_benchmark.train_stream[1].classes_in_this_experience)
    # plain SGD without momentum or weight decay: a row with zero gradient stays bit-identical
    unchanged = torch.equal(head.weight[first], before[0][first]) and torch.equal(head.bias[first], before[1][first])
    assert unchanged is masked
    assert not torch.equal(head.weight[second], before[0][second])  # the current classes still learn
