"""eval_mode: a measurement runs in eval mode and leaves the caller's mode as it was."""

from __future__ import annotations

import pytest
from torch import nn

from pecft_lib.evaluation.modes import eval_mode


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_is_eval_inside_and_restored_after_also_on_an_error(training):
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with eval_mode(model) as inside:
        assert inside is model and not model.training and not model[1].training
    assert model.training == training and model[1].training == training
    with pytest.raises(RuntimeError, match="measurement failed"):
        with eval_mode(model):
            raise RuntimeError("measurement failed")
    assert model.training == training
