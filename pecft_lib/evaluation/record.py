"""The JSON-able result record that every run returns and can write to disk."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from . import metrics as M
from .resources import hardware, package_versions

SCHEMA_VERSION = 1


def summarize(matrix: np.ndarray, initial: np.ndarray | None = None) -> dict[str, float | None]:
    """All scalar metrics of an accuracy matrix; see :mod:`pecft_lib.evaluation.metrics`.

    A single-column matrix (joint training: one stage over all experiences) only has ``A_last``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[1] == 1 and matrix.shape[0] > 1:
        return {"A_last": float(matrix[:, 0].mean()), "A_mean": None, "forgetting_max": None,
                "forgetting_coda": None, "bwt": None, "fwt": None}
    return {
        "A_last": M.average_accuracy(matrix),
        "A_mean": M.mean_incremental_accuracy(matrix),
        "forgetting_max": M.forgetting_max(matrix),
        "forgetting_coda": M.forgetting_coda(matrix),
        "bwt": M.bwt(matrix),
        "fwt": M.fwt(matrix, None if initial is None or np.isnan(initial).any() else initial),
    }


def _nan_to_none(values: np.ndarray) -> list:
    return [None if math.isnan(v) else float(v) for v in values] if values.ndim == 1 else [
        _nan_to_none(row) for row in values
    ]


@dataclass
class RunRecord:
    """One run: what was run (config, benchmark), what it measured, and where it ran.

    ``accuracy_matrix[i][t]`` is the accuracy on experience ``i`` after training stage ``t``; ``None`` marks
    entries not measured. Per-stage lists (``train_seconds``, ...) have one entry per training stage.
    """

    name: str
    config: dict[str, Any]
    benchmark: dict[str, Any]
    accuracy_matrix: list[list[float | None]]
    initial_accuracy: list[float | None] | None = None
    train_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    peak_memory_mib: list[float] = field(default_factory=list)
    peak_memory_kind: str = ""
    trainable_parameters: list[int] = field(default_factory=list)
    status: str = "finished"
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific diagnostics (e.g. InfLoRA's subspaces)
    metrics: dict[str, float | None] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=package_versions)
    hardware: dict[str, Any] = field(default_factory=hardware)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_arrays(cls, name: str, matrix: np.ndarray, initial: np.ndarray | None, **fields: Any) -> "RunRecord":
        """Build a record from numpy arrays (``NaN`` = not measured) and compute its metrics over the stages
        trained so far (one per entry of ``train_seconds``; all of them once the run is finished)."""
        stages = len(fields.get("train_seconds", ())) or matrix.shape[1]
        trained = matrix if matrix.shape[1] == 1 else matrix[:stages, :stages]
        return cls(
            name=name,
            accuracy_matrix=_nan_to_none(matrix),
            initial_accuracy=None if initial is None else _nan_to_none(initial),
            metrics=summarize(trained, None if initial is None else initial[: trained.shape[0]]),
            **fields,
        )

    @property
    def matrix(self) -> np.ndarray:
        """The accuracy matrix as a float array with ``NaN`` for entries not measured."""
        return np.array([[np.nan if v is None else v for v in row] for row in self.accuracy_matrix])

    @property
    def accuracy_per_stage(self) -> np.ndarray:
        """``A_t`` after every training stage (one value for joint training)."""
        R = self.matrix
        if R.shape[1] == 1:
            return np.array([R[:, 0].mean()])
        return M.accuracy_after_each_stage(R)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON atomically (a reader never sees a half-written file)."""
        return atomic_write(path, lambda handle: handle.write(json.dumps(self.to_dict(), indent=1).encode()))

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        data = json.loads(Path(path).read_text())
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"{path} has result-record schema {data.get('schema_version')}, this library reads {SCHEMA_VERSION}"
            )
        return cls(**data)
