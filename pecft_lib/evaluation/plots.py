"""Figures of runs: accuracy-matrix heatmap, accuracy curves, accuracy against trainable parameters."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from .record import RunRecord

__all__ = ["plot_accuracy_matrix", "plot_accuracy_curves", "plot_average_accuracy", "plot_accuracy_vs_parameters"]


def _axes(ax: Axes | None, size=(4.5, 3.8)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def plot_accuracy_matrix(record: RunRecord, ax: Axes | None = None, annotate: bool = True) -> Axes:
    """Heatmap of ``R[i, t]``: rows are evaluated experiences, columns training stages.

    Entries below the diagonal (``i > t``: experiences not trained yet) are drawn
    faded; they are what the model knows of the future, usually nothing in class-incremental learning.
    """
    ax = _axes(ax)
    R = record.matrix
    image = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
    n_rows, n_cols = R.shape
    for i in range(n_rows):
        for t in range(n_cols):
            if np.isnan(R[i, t]):
                continue
            future = i > t and n_cols > 1
            if future:
                ax.add_patch(plt.Rectangle((t - 0.5, i - 0.5), 1, 1, color="white", alpha=0.6))
            if annotate:
                color = "grey" if future else ("black" if R[i, t] > 0.5 else "white")
                ax.text(t, i, f"{100 * R[i, t]:.0f}", ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n_cols), [f"{t + 1}" for t in range(n_cols)] if n_cols > 1 else ["all"])
    ax.set_yticks(range(n_rows), [f"{i + 1}" for i in range(n_rows)])
    ax.set_xlabel("after training experience")
    ax.set_ylabel("evaluated on experience")
    ax.set_title(record.name)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="accuracy")
    return ax


def plot_accuracy_curves(record: RunRecord, ax: Axes | None = None) -> Axes:
    """One line per experience: its accuracy at every stage from the one where it was trained on; the
    thick black line is the average over the experiences seen so far, ``A_t``."""
    ax = _axes(ax, (5, 3.5))
    R = record.matrix
    stages = np.arange(1, R.shape[1] + 1)
    for i in range(R.shape[0]):
        ax.plot(stages[i:], R[i, i:], marker="o", ms=3, lw=1.2, label=f"experience {i + 1}")
    ax.plot(stages, record.accuracy_per_stage, color="black", lw=2.5, label="$A_t$ (seen so far)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(stages)
    ax.set_xlabel("after training experience")
    ax.set_ylabel("accuracy")
    ax.set_title(record.name)
    ax.legend(fontsize=7, loc="lower left")
    return ax


def plot_average_accuracy(records: Sequence[RunRecord], ax: Axes | None = None) -> Axes:
    """``A_t`` of several runs on one axes; single-stage runs (joint training) are drawn as a dashed
    horizontal line, the upper bound."""
    ax = _axes(ax, (5.5, 3.5))
    n_stages = max(len(r.accuracy_per_stage) for r in records)
    stages = np.arange(1, n_stages + 1)
    for record in records:
        curve = record.accuracy_per_stage
        if len(curve) == 1:
            ax.axhline(curve[0], ls="--", color="grey", label=f"{record.name} (upper bound)")
        else:
            ax.plot(stages[: len(curve)], curve, marker="o", label=record.name)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(stages)
    ax.set_xlabel("after training experience")
    ax.set_ylabel("average accuracy on seen experiences $A_t$")
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_vs_parameters(records: Sequence[RunRecord], ax: Axes | None = None, title: str = "") -> Axes:
    """Final average accuracy of each run against its number of trainable parameters (log scale)."""
    ax = _axes(ax, (5.0, 3.6))
    for record in records:
        params, accuracy = record.trainable_parameters[-1], 100 * record.metrics["A_last"]
        ax.scatter(params, accuracy, s=40)
        ax.annotate(record.name, (params, accuracy), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax
