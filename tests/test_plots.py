"""Figures of run records, drawn off-screen and inspected through matplotlib's artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pecft_lib.evaluation import RunRecord  # noqa: E402
from pecft_lib.evaluation.plots import (  # noqa: E402
    plot_accuracy_curves,
    plot_accuracy_matrix,
    plot_average_accuracy,
    plot_prompt_placement,
)

R3 = np.array([
    [0.90, 0.60, 0.50],
    [0.10, 0.80, 0.70],
    [0.00, 0.05, 0.95],
])


def _record(name, matrix):
    return RunRecord.from_arrays(name, np.array(matrix, dtype=float), None, config={}, benchmark={})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_accuracy_matrix_heatmap_shows_the_matrix():
    ax = plot_accuracy_matrix(_record("naive", R3))
    assert len(ax.images) == 1
    image = ax.images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), R3)
    assert image.get_clim() == (0, 1)
    assert ax.get_title() == "naive"
    # one percentage per cell
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{100 * v:.0f}" for v in R3.ravel())
    # the 3 entries below the diagonal (experiences not trained yet) are faded by a white patch each
    assert len(ax.patches) == 3
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "2", "3"]
    assert len(ax.figure.axes) == 2  # the heatmap and its colour bar


def test_accuracy_matrix_of_a_joint_record():
    ax = plot_accuracy_matrix(_record("joint", [[0.9], [0.7], [0.8]]), annotate=False)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), [[0.9], [0.7], [0.8]])
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["all"]
    assert len(ax.patches) == 0 and len(ax.texts) == 0


def test_accuracy_matrix_on_given_axes():
    fig, axes = plt.subplots(1, 2)
    ax = plot_accuracy_matrix(_record("naive", R3), ax=axes[1])
    assert ax is axes[1] and len(axes[0].images) == 0


def test_accuracy_curves_draw_one_line_per_experience_plus_the_average():
    record = _record("naive", R3)
    ax = plot_accuracy_curves(record)
    lines = ax.get_lines()
    assert len(lines) == 3 + 1
    for i, line in enumerate(lines[:3]):  # experience i from the stage where it was trained on
        np.testing.assert_array_equal(line.get_xdata(), np.arange(i + 1, 4))
        np.testing.assert_allclose(line.get_ydata(), R3[i, i:])
    # A_t = 0.9 | (0.6 + 0.8)/2 | (0.5 + 0.7 + 0.95)/3
    np.testing.assert_allclose(lines[3].get_ydata(), [0.9, 0.7, 2.15 / 3])
    np.testing.assert_array_equal(lines[3].get_xdata(), [1, 2, 3])


def test_average_accuracy_draws_joint_training_as_a_dashed_line():
    naive = _record("naive", R3)
    joint = _record("joint", [[0.9], [0.7], [0.8]])
    ax = plot_average_accuracy([naive, joint])
    lines = ax.get_lines()
    assert len(lines) == 2
    curve = next(line for line in lines if line.get_label() == "naive")
    np.testing.assert_allclose(curve.get_ydata(), [0.9, 0.7, 2.15 / 3])
    assert curve.get_linestyle() == "-"
    bound = next(line for line in lines if line.get_label() == "joint (upper bound)")
    assert bound.get_linestyle() == "--"
    np.testing.assert_allclose(bound.get_ydata(), [0.8, 0.8])  # (0.9 + 0.7 + 0.8) / 3, horizontal
    np.testing.assert_array_equal(bound.get_xdata(), [0, 1])  # axhline spans the axes
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "2", "3"]


def test_average_accuracy_of_a_joint_record_alone():
    ax = plot_average_accuracy([_record("joint", [[0.5], [0.7]])])
    (line,) = ax.get_lines()
    assert line.get_linestyle() == "--"
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.6])


def test_prompt_placement_draws_every_block_and_prefix():
    fig, ax = plt.subplots()
    plot_prompt_placement(4, prompt_tokens=3, prefixes={"G": [0, 1], "E": [2]}, ax=ax, title="t")
    labels = [text.get_text() for text in ax.texts]
    assert sum(label.endswith("(frozen)") for label in labels) == 4
    assert labels.count("G K,V") == 2 and labels.count("E K,V") == 1
    assert labels.count("P") == 3 and "head reads [CLS]" in labels
    plt.close(fig)
