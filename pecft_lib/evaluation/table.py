"""Tables of run records (pandas DataFrames, rendered as HTML in the book)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .record import RunRecord

METRIC_COLUMNS = {
    "A_last": "A_last (%)",
    "A_mean": "Ā (%)",
    "forgetting_max": "Forgetting, L2P def. (%)",
    "forgetting_coda": "Forgetting, CODA def. (%)",
    "bwt": "BWT (%)",
    "fwt": "FWT (%)",
}


def metrics_table(records: Sequence[RunRecord], costs: bool = False) -> pd.DataFrame:
    """One row per run: the metrics in percent (2 decimals) and the final trainable-parameter count.

    ``costs=True`` adds total training time and the largest peak memory; those vary from run to run, so
    keep them out of outputs that must be reproduced exactly.
    """
    rows = []
    for record in records:
        row = {label: None if record.metrics.get(key) is None else round(100 * record.metrics[key], 2)
               for key, label in METRIC_COLUMNS.items()}
        row["trainable params"] = record.trainable_parameters[-1] if record.trainable_parameters else None
        if costs:
            row["train time (s)"] = round(sum(record.train_seconds), 1)
            row["peak memory (MiB)"] = round(max(record.peak_memory_mib), 0) if record.peak_memory_mib else None
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index([r.name for r in records], name="run"))


def single_task_table(records: Sequence[RunRecord], backbone_parameters: int | None = None) -> pd.DataFrame:
    """One row per single-task run: test accuracy (%), trainable parameters and, given the backbone's
    size, their share of it (%)."""
    rows = []
    for record in records:
        row = {"accuracy (%)": round(100 * record.metrics["A_last"], 2),
               "trainable params": record.trainable_parameters[-1]}
        if backbone_parameters:
            row["of backbone (%)"] = round(100 * record.trainable_parameters[-1] / backbone_parameters, 3)
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index([r.name for r in records], name="method"))
