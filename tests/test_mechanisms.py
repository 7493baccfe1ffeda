"""The mechanism diagnostics the comparison stores with each method run (pecft_lib.mechanisms)."""

from __future__ import annotations

import numpy as np
import pytest

from pecft_lib.comparison import Control, run_one
from pecft_lib.errors import UnknownNameError
from pecft_lib.evaluation import RunRecord
from pecft_lib.mechanisms import diagnostics_summary, mean_stored_matrix, stored_diagnostic
from pecft_lib.methods.inflora.analysis import interference_ratio
from pecft_lib.methods.prompting.analysis import task_selection_information

from test_comparison import tiny_setup

METHODS = {"L2P": "l2p:vision", "DualPrompt": "dualprompt:vision", "CODA-Prompt": "coda_prompt:vision",
           "InfLoRA": "inflora:vision", "O-LoRA": "olora:vision"}


def test_task_selection_information_is_zero_for_shared_prompts_and_log_t_for_own_prompts():
    assert task_selection_information(np.full((4, 6), 1 / 6)) == pytest.approx(0.0, abs=1e-12)
    assert task_selection_information(np.eye(4)) == pytest.approx(2.0)
    # two tasks, each with its own prompt half of the time and a shared one otherwise: 0.5 bit
    assert task_selection_information(np.array([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])) == pytest.approx(0.5)


def test_interference_ratio_reads_each_branch_against_its_own_task():
    matrix = np.array([[2.0, 1.0, 3.0], [np.nan, 4.0, 6.0], [np.nan, np.nan, 12.0]])
    assert interference_ratio(matrix) == pytest.approx(np.mean([1 / 4, 3 / 12, 6 / 12]))
    with pytest.raises(ValueError, match="two tasks"):
        interference_ratio(np.array([[1.0]]))


@pytest.fixture(scope="module")
def records():
    setup = tiny_setup(methods=METHODS, baselines={}, controls={
        "DualPrompt (JAX init)": Control(of="DualPrompt", set={"method.init": "jax"}),
        "IncLoRA": Control(of="O-LoRA", set={"method.lambda_orth": 0.0}),
    })
    return {run: run_one(setup, run, 0, profile="quick") for run in setup.runs}


def test_every_method_run_stores_its_mechanism_and_the_rows_are_distributions(records):
    diagnostics = {run: record.extra["diagnostics"] for run, record in records.items()}
    for run in ("L2P", "DualPrompt"):
        share = np.array(diagnostics[run]["selection_share"])
        np.testing.assert_allclose(share.sum(axis=1), 1.0)
        assert 0 <= diagnostics[run]["task_selection_bits"] <= diagnostics[run]["task_entropy_bits"] == 1.0
    share = np.array(diagnostics["DualPrompt"]["selection_share"])
    assert diagnostics["DualPrompt"]["task_identification"] == pytest.approx(np.diagonal(share[:, :2]).mean(), abs=1e-6)
    weights = np.array(diagnostics["CODA-Prompt"]["component_weight_share"])
    assert weights.shape == (2, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    interference = np.array(diagnostics["InfLoRA"]["interference"], dtype=float)
    assert np.isnan(interference[1, 0]) and (interference[~np.isnan(interference)] > 0).all()
    overlap = np.array(diagnostics["O-LoRA"]["down_overlap"])
    np.testing.assert_allclose(overlap, overlap.T)


def test_a_control_changes_only_its_mechanism(records):
    control, method = records["DualPrompt (JAX init)"].config, records["DualPrompt"].config
    assert control["dualprompt"]["init"] == "jax" and method["dualprompt"]["init"] == "pytorch"
    assert control["optim"] == method["optim"] and control["address"] == method["address"]
    assert records["IncLoRA"].config["olora"]["lambda_orth"] == 0.0
    assert records["O-LoRA"].config["olora"]["lambda_orth"] > 0


def test_a_control_of_an_unknown_method_is_refused():
    with pytest.raises(UnknownNameError, match="method to control"):
        tiny_setup(controls={"ablation": Control(of="CODA-Prompt", set={})})


def test_stored_diagnostics_are_summarised_over_seeds():
    def record(seed: int, bits: float, share: list) -> RunRecord:
        made = RunRecord.from_arrays("L2P", np.ones((1, 1)), None, config={"seed": seed}, benchmark={},
                                     train_seconds=[1.0])
        made.extra["diagnostics"] = {"task_selection_bits": bits, "selection_share": share}
        return made

    records = [record(0, 0.2, [[1.0, 0.0]]), record(1, 0.4, [[0.5, 0.5]])]
    table = diagnostics_summary(records, {"L2P, I(task; id)": ("L2P", "task_selection_bits")})
    assert table.loc["L2P, I(task; id)", "mean ± std"] == "0.300 ± 0.100"
    assert table.loc["L2P, I(task; id)", "seeds"] == 2
    np.testing.assert_allclose(mean_stored_matrix(records, "L2P", "selection_share"), [[0.75, 0.25]])
    with pytest.raises(UnknownNameError, match="run with stored records"):
        stored_diagnostic(records, "DualPrompt", "task_identification")
    with pytest.raises(KeyError, match="produced again"):
        stored_diagnostic(records, "L2P", "task_identification")


def test_a_run_made_without_diagnose_stores_no_mechanism():
    record = run_one(tiny_setup(), "L2P", 0, profile="quick", diagnose=False)
    assert record.status == "finished" and "diagnostics" not in record.extra
