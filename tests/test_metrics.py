"""Metrics on hand-made accuracy matrices; every expected value below was computed by hand."""

import math

import numpy as np
import pytest

from pecft_lib.evaluation import metrics as M

# R[i, t]: accuracy on experience i after training stage t.
R3 = [
    [0.90, 0.60, 0.50],
    [0.10, 0.80, 0.70],
    [0.00, 0.05, 0.95],
]
# The accuracy on experience 0 rises after stage 1: the two forgetting definitions disagree in sign.
R_RISE = [
    [0.50, 0.70],
    [0.00, 0.90],
]


def test_accuracy_after_each_stage():
    # 0.9 | (0.6 + 0.8) / 2 | (0.5 + 0.7 + 0.95) / 3
    np.testing.assert_allclose(M.accuracy_after_each_stage(R3), [0.9, 0.7, 2.15 / 3])


def test_average_and_mean_incremental_accuracy():
    assert M.average_accuracy(R3) == pytest.approx(2.15 / 3)
    assert M.mean_incremental_accuracy(R3) == pytest.approx((0.9 + 0.7 + 2.15 / 3) / 3)


def test_forgetting_max_l2p_definition():
    # experience 0: max(0.9, 0.6, 0.5) - 0.5 = 0.4; experience 1: max(0.8, 0.7) - 0.7 = 0.1
    assert M.forgetting_max(R3) == pytest.approx(0.25)
    # a rising accuracy contributes 0, never a negative number
    assert M.forgetting_max(R_RISE) == pytest.approx(0.0)


def test_forgetting_coda_definition():
    # t=1: (0.9 - 0.6) / 1 = 0.3 ; t=2: ((0.6 - 0.5) + (0.8 - 0.7)) / 2 = 0.1 ; (0.3 + 0.1) / 2 = 0.2
    assert M.forgetting_coda(R3) == pytest.approx(0.2)
    # consecutive drops can be negative
    assert M.forgetting_coda(R_RISE) == pytest.approx(-0.2)


def test_bwt():
    # ((0.5 - 0.9) + (0.7 - 0.8)) / 2
    assert M.bwt(R3) == pytest.approx(-0.25)
    assert M.bwt(R_RISE) == pytest.approx(0.2)


def test_fwt_needs_initial_accuracy():
    # ((R[1,0] - b1) + (R[2,1] - b2)) / 2 = ((0.1 - 0.1) + (0.05 - 0.1)) / 2
    assert M.fwt(R3, [0.1, 0.1, 0.1]) == pytest.approx(-0.025)
    assert M.fwt(R3, None) is None
    future_not_evaluated = np.array(R3)
    future_not_evaluated[2, 1] = math.nan
    assert M.fwt(future_not_evaluated, [0.1, 0.1, 0.1]) is None
    with pytest.raises(ValueError, match="one entry per experience"):
        M.fwt(R3, [0.1, 0.1])


def test_single_experience_has_no_forgetting():
    assert M.average_accuracy([[0.8]]) == pytest.approx(0.8)
    assert M.forgetting_max([[0.8]]) is None
    assert M.forgetting_coda([[0.8]]) is None
    assert M.bwt([[0.8]]) is None


def test_future_entries_are_ignored_by_accuracy_and_forgetting():
    noisy = np.array(R3)
    noisy[1, 0] = noisy[2, 0] = noisy[2, 1] = math.nan
    assert M.average_accuracy(noisy) == pytest.approx(M.average_accuracy(R3))
    assert M.forgetting_max(noisy) == pytest.approx(M.forgetting_max(R3))
    assert M.forgetting_coda(noisy) == pytest.approx(M.forgetting_coda(R3))


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[0.5, 0.5]], "square"),
        ([[1.5, 0.0], [0.0, 1.0]], r"\[0, 1\]"),
        ([[math.nan, 0.0], [0.0, 1.0]], "NaN"),
    ],
)
def test_invalid_matrices_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        M.average_accuracy(bad)
