"""Runs repeated over seeds: group records by run name, and the mean and standard deviation of what they
measured (population standard deviation, as the method papers report ``mean ± std`` over a few seeds)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .record import RunRecord


def group_by_run(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Run name → its records, in first-seen order."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(record.name, []).append(record)
    return groups


def trainable_parameters(record: RunRecord) -> int:
    """The largest number of parameters trained in one stage (0 when nothing is trained)."""
    return max(record.trainable_parameters, default=0)


def final_accuracy(records: Sequence[RunRecord]) -> dict[str, tuple[float, float]]:
    """Run name → (mean, std) over seeds of ``A_last``."""
    return {name: (float(np.mean([r.metrics["A_last"] for r in group])),
                   float(np.std([r.metrics["A_last"] for r in group])))
            for name, group in group_by_run(records).items()}


def apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two runs' seed bands, mean ± one standard deviation (``(mean, std)`` pairs), do not overlap: a rough
    rule with three seeds, but the same for every pair."""
    (mean_a, std_a), (mean_b, std_b) = a, b
    return abs(mean_a - mean_b) > std_a + std_b


def seed_spread_verdict(records: Sequence[RunRecord], references: Sequence[str]) -> pd.DataFrame:
    """Every run against each reference run: the difference of mean ``A_last`` in points and whether it exceeds
    the seed spread (:func:`apart`), e.g. ``"+11.7, apart"`` or ``"-1.2, within the spread"``."""
    accuracy = final_accuracy(records)
    missing = [name for name in references if name not in accuracy]
    if missing:
        raise ValueError(f"no records of the reference run(s) {missing}; the runs are {list(accuracy)}")
    rows = {}
    for run, band in accuracy.items():
        rows[run] = {f"vs {reference}": ("" if run == reference else
                                         f"{100 * (band[0] - accuracy[reference][0]):+.1f}, "
                                         f"{'apart' if apart(band, accuracy[reference]) else 'within the spread'}")
                     for reference in references}
    return pd.DataFrame.from_dict(rows, orient="index")


def mean_curves(records: Sequence[RunRecord]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run name → (mean, std) over seeds of ``A_t`` after every stage (one value for joint training)."""
    return {name: (np.mean([r.accuracy_per_stage for r in group], axis=0),
                   np.std([r.accuracy_per_stage for r in group], axis=0))
            for name, group in group_by_run(records).items()}


def mean_train_seconds(records: Sequence[RunRecord]) -> dict[str, float]:
    """Run name → mean over seeds of the total training time in seconds (all stages)."""
    return {name: float(np.mean([sum(r.train_seconds) for r in group]))
            for name, group in group_by_run(records).items()}
