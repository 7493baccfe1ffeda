"""Figures of runs: accuracy-matrix heatmap, accuracy curves, accuracy against trainable parameters and time
(also as mean ± std over seeds)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from .aggregate import final_accuracy, group_by_run, mean_curves, mean_train_seconds, trainable_parameters
from .record import RunRecord

__all__ = ["plot_accuracy_matrix", "plot_accuracy_curves", "plot_average_accuracy", "plot_accuracy_vs_parameters",
           "plot_prompt_placement", "plot_accuracy_vs_cost", "plot_mean_accuracy_curves", "plot_accuracy_curves_by_run", "plot_task_matrix"]


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


def plot_prompt_placement(
    num_layers: int,
    prompt_tokens: int = 0,
    prefixes: Mapping[str, Sequence[int]] | None = None,
    head_reads: str = "[CLS]",
    ax: Axes | None = None,
    title: str = "",
) -> Axes:
    """Schematic of where a prompt method enters a frozen ViT (the chapters' "where prompts go" figure).

    Args:
        num_layers: transformer blocks, drawn bottom (block 0) to top.
        prompt_tokens: tokens inserted after [CLS] before block 0 (prompt tuning: L2P); 0 = none.
        prefixes: name → blocks whose attention gets that prompt's prefix keys and values (prefix tuning:
            DualPrompt's G- and E-prompts, CODA-Prompt's composed prompt).
        head_reads: label of what the classifier head reads.
    """
    prefixes = dict(prefixes or {})
    ax = _axes(ax, size=(6.4, 0.42 * num_layers + 2.4))
    colors = ["tab:orange", "tab:green", "tab:purple", "tab:red"]
    block_left, block_width, height = 0.0, 6.0, 0.32
    for layer in range(num_layers):
        y = 1.0 + 0.42 * layer
        ax.add_patch(plt.Rectangle((block_left, y), block_width, height, facecolor="lightsteelblue",
                                   edgecolor="steelblue"))
        ax.text(block_left + block_width / 2, y + height / 2, f"block {layer} (frozen)", ha="center",
                va="center", fontsize=7)
        for index, (name, layers) in enumerate(prefixes.items()):
            if layer in layers:
                x = block_width + 0.15 + 1.25 * index
                ax.add_patch(plt.Rectangle((x, y), 1.1, height, facecolor=colors[index % len(colors)], alpha=0.8))
                ax.text(x + 0.55, y + height / 2, f"{name} K,V", ha="center", va="center", fontsize=6,
                        color="white")
                ax.annotate("", xy=(block_width, y + height / 2), xytext=(x, y + height / 2),
                            arrowprops=dict(arrowstyle="->", lw=0.8))
    # the input tokens: [CLS], inserted prompts, patches
    tokens = ["[CLS]"] + ["P"] * min(prompt_tokens, 6) + ["x"] * 6
    width = block_width / len(tokens)
    for index, token in enumerate(tokens):
        prompt = token == "P"
        ax.add_patch(plt.Rectangle((block_left + index * width + 0.03, 0.25), width - 0.06, 0.4,
                                   facecolor=colors[0] if prompt else ("gold" if index == 0 else "lightgrey"),
                                   edgecolor="grey"))
        ax.text(block_left + (index + 0.5) * width, 0.45, token, ha="center", va="center", fontsize=6)
    caption = "input tokens: [CLS], patches x"
    if prompt_tokens:
        caption = f"input tokens: [CLS], {prompt_tokens} prompt tokens P, patches x"
    ax.text(block_left, 0.05, caption, fontsize=7, va="top")
    top = 1.0 + 0.42 * num_layers
    ax.annotate("", xy=(block_width / 2, top + 0.4), xytext=(block_width / 2, top),
                arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.text(block_width / 2, top + 0.5, f"head reads {head_reads}", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.2, block_width + 0.3 + 1.25 * max(len(prefixes), 1))
    ax.set_ylim(-0.35, top + 1.0)
    ax.set_axis_off()
    ax.set_title(title)
    return ax


def plot_accuracy_vs_cost(records: Sequence[RunRecord], cost: str = "parameters", ax: Axes | None = None,
                          title: str = "") -> Axes:
    """Mean ``A_last`` over seeds (error bar: std) of every run against its cost: ``"parameters"`` (trained in
    one stage; symmetric-log axis, so that a run training nothing sits at 0) or ``"time"`` (mean total
    training seconds; log axis). Runs are grouped by name (see :mod:`.aggregate`)."""
    if cost not in ("parameters", "time"):
        raise ValueError(f"cost must be 'parameters' or 'time', got {cost!r}")
    ax = _axes(ax, (5.0, 3.8))
    accuracy = final_accuracy(records)
    if cost == "parameters":
        x = {name: trainable_parameters(group[0]) for name, group in group_by_run(records).items()}
        ax.set_xscale("symlog", linthresh=1e3)
        top = int(np.ceil(np.log10(max(max(x.values()), 10))))
        ax.set_xticks([0, *(10.0 ** k for k in range(3, top + 1))])  # 0, then decades: no labels on top of each other
        ax.set_xlabel("parameters trained per stage")
    else:
        x = mean_train_seconds(records)
        ax.set_xscale("log")
        ax.set_xlabel("training time, all stages (s)")
    for name, (mean, std) in accuracy.items():
        ax.errorbar(x[name], 100 * mean, yerr=100 * std, fmt="o", capsize=3)
        ax.annotate(name, (x[name], 100 * mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_ylabel("$A_{last}$ (%), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def plot_mean_accuracy_curves(records: Sequence[RunRecord], ax: Axes | None = None, title: str = "") -> Axes:
    """``A_t`` after every stage, mean over seeds with a ±std band, one line per run; a single-stage run (joint
    training) is the dashed upper bound."""
    ax = _axes(ax, (5.5, 3.8))
    curves = mean_curves(records)
    n_stages = max(len(mean) for mean, _ in curves.values())
    stages = np.arange(1, n_stages + 1)
    for name, (mean, std) in curves.items():
        if len(mean) == 1:
            ax.axhline(100 * mean[0], ls="--", color="grey", label=f"{name} (upper bound)")
            continue
        line, = ax.plot(stages[: len(mean)], 100 * mean, marker="o", ms=3, label=name)
        ax.fill_between(stages[: len(mean)], 100 * (mean - std), 100 * (mean + std), color=line.get_color(),
                        alpha=0.15)
    ax.set_xticks(stages)
    ax.set_xlabel("after training experience")
    ax.set_ylabel("$A_t$ (%), mean ± std over seeds")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_accuracy_curves_by_run(records: Sequence[RunRecord], references: Sequence[str] = ("Prototype", "SeqFT"),
                                columns: int = 4, title: str = "") -> plt.Figure:
    """Small multiples: one panel per run (single-stage runs excepted), its ``A_t`` after every stage as mean
    ± std over seeds in a colour of its own, over the same curves of the ``references`` (grey, dashed and
    dotted) and the single-stage upper bound (grey line), so that every run is read against the same
    baselines without eight overlapping bands."""
    curves = mean_curves(records)
    bound = {name: mean[0] for name, (mean, _) in curves.items() if len(mean) == 1}
    panels = [name for name, (mean, _) in curves.items() if len(mean) > 1]
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.3 * rows), sharex=True, sharey=True,
                             squeeze=False)
    tab10, tab20b = plt.get_cmap("tab10"), plt.get_cmap("tab20b")
    colours = [tab10(i) for i in range(10) if i != 7] + [tab20b(i) for i in range(0, 20, 4)]  # no grey
    styles = dict(zip(references, ["--", ":", "-."]))  # a reference keeps its style in every panel
    for index, (ax, name) in enumerate(zip(axes.flat, panels)):
        mean, std = curves[name]
        stages = np.arange(1, len(mean) + 1)
        for reference in (r for r in references if r in curves and r != name):
            ax.plot(stages, 100 * curves[reference][0], ls=styles[reference], color="0.45", lw=1, label=reference)
        for upper, value in bound.items():
            ax.axhline(100 * value, color="0.75", lw=1, label=f"{upper} (upper bound)")
        colour = colours[index % len(colours)]
        ax.plot(stages, 100 * mean, marker="o", ms=3, color=colour, label=name)
        ax.fill_between(stages, 100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.2)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(stages)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("$A_t$ (%)")
    for ax in axes[-1, :]:
        ax.set_xlabel("after experience")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles[:-1], labels[:-1], loc="lower right", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_task_matrix(matrix: np.ndarray, ax: Axes | None = None, *, row_names: Sequence[str] | None = None,
                     column_label: str = "", column_names: Sequence[str] | None = None, title: str = "",
                     value_format: str = "{:.2f}", vmax: float | None = None) -> Axes:
    """A heatmap of a per-task matrix (rows: experiences, numbered from 1 and optionally named; columns: prompts,
    component groups or tasks), each cell annotated; ``NaN`` cells stay blank."""
    ax = _axes(ax, (0.6 * matrix.shape[1] + 2.5, 0.45 * matrix.shape[0] + 1.4))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="Blues", vmin=0, vmax=vmax)
    rows = [f"{i + 1}" + (f" {row_names[i]}" if row_names else "") for i in range(matrix.shape[0])]
    ax.set_yticks(range(matrix.shape[0]), rows)
    ax.set_xticks(range(matrix.shape[1]), column_names or [str(j + 1) for j in range(matrix.shape[1])])
    ax.set_ylabel("test images of experience")
    ax.set_xlabel(column_label)
    threshold = 0.6 * (vmax if vmax is not None else np.nanmax(matrix))
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(j, i, value_format.format(value), ha="center", va="center", fontsize=7,
                    color="white" if value > threshold else "black")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.04)
    return ax
