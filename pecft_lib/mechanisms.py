"""Each method's mechanism, measured on the test stream of a trained model (the comparison stores these numbers
with its records, :func:`pecft_lib.comparison.run_one`).

=============  ==========================================================================================
method         what is measured (inputs of each test experience, after the last one is trained)
=============  ==========================================================================================
L2P            share of each prompt among the selected ids, per task, and the mutual information between
               task and selected id (:func:`~pecft_lib.methods.prompting.analysis.selection_mechanism`)
DualPrompt     share of each E-prompt selected, per task; the diagonal is task identification by the keys
               (:func:`~pecft_lib.methods.dualprompt.analysis.task_identification_mechanism`)
CODA-Prompt    share of the component weight on each task's components, per task
               (:func:`~pecft_lib.methods.coda_prompt.analysis.component_mechanism`)
InfLoRA        the change each branch makes on each task's inputs, and the ratio of the change on earlier
               tasks' inputs to that on its own task's (:func:`~pecft_lib.methods.inflora.analysis.interference_mechanism`)
O-LoRA         mean absolute cosine between the tasks' LoRA down rows
               (:func:`~pecft_lib.methods.olora.analysis.orthogonality_mechanism`)
=============  ==========================================================================================

Each method declares its diagnostic in its own package (``MethodSpec.mechanism``); this module finds it through
the registry. Every value is a plain number or a nested list, so that it can be stored as JSON; matrices are indexed
``[task][...]`` with tasks 0-based, in the order of the benchmark's experiences.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .benchmarks import ContinualBenchmark
from .errors import UnknownNameError
from .evaluation import RunRecord
from .methods.registry import method_specs


def inputs_by_task(benchmark: ContinualBenchmark, batch_size: int = 256) -> list[list[torch.Tensor]]:
    """The inputs of each test experience, in batches of ``batch_size`` (evaluation transforms, fixed order)."""
    return [[batch[0] for batch in torch.utils.data.DataLoader(experience.dataset.eval(), batch_size=batch_size)]
            for experience in benchmark.test_stream]


def mechanism_diagnostics(model: nn.Module, benchmark: ContinualBenchmark) -> dict[str, Any] | None:
    """The diagnostic its method declares (``MethodSpec.mechanism``, the table above) for ``model`` on the test
    stream of ``benchmark``; ``None`` for a model no method declares one for (a baseline). The model is moved to
    the CPU for the measurement and left there."""
    for spec in method_specs().values():
        if spec.mechanism is not None and isinstance(model, spec.mechanism[0]):
            return spec.mechanism[1](model.cpu(), inputs_by_task(benchmark))
    return None


def stored_diagnostic(records: Sequence[RunRecord], run: str, key: str) -> list[Any]:
    """The value of diagnostic ``key`` in every record of ``run``, in record order (one per seed)."""
    values = [record.extra.get("diagnostics", {}).get(key) for record in records if record.name == run]
    if not values:
        raise UnknownNameError("run with stored records", run, sorted({record.name for record in records}))
    if any(value is None for value in values):
        raise KeyError(f"a record of {run} has no diagnostic {key!r}; records made before the comparison stored "
                       "diagnostics must be produced again (`pecft comparison --profile medium`)")
    return values


def diagnostics_summary(records: Sequence[RunRecord], rows: dict[str, tuple[str, str]],
                        percent: bool = False) -> pd.DataFrame:
    """One row per entry of ``rows`` (label → (run, scalar diagnostic key)): mean ± population std over the
    run's seeds, the number of seeds and the per-seed values (in percent if ``percent``)."""
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    table = {}
    for label, (run, key) in rows.items():
        values = scale * np.asarray(stored_diagnostic(records, run, key), dtype=float)
        table[label] = {"mean ± std": f"{values.mean():.{digits}f} ± {values.std():.{digits}f}",
                        "seeds": len(values), "per seed": ", ".join(f"{v:.{digits}f}" for v in values)}
    return pd.DataFrame.from_dict(table, orient="index")


def mean_stored_matrix(records: Sequence[RunRecord], run: str, key: str) -> np.ndarray:
    """The mean over seeds of matrix diagnostic ``key`` of ``run`` (``NaN`` where a matrix has no entry); the
    tasks of a stream with a fixed domain order are the same in every seed."""
    values = np.array(stored_diagnostic(records, run, key), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an entry never measured (NaN in every seed) stays NaN
        return np.nanmean(values, axis=0)
