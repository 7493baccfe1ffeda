"""run_strategy with real Avalanche strategies on a tiny synthetic benchmark (see conftest.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin

from conftest import N_EXPERIENCES, direct_accuracy, make_model, make_strategy
from pecft_lib.evaluation import RunRecord, metrics_table, run_strategy, task_aware_accuracy
from pecft_lib.repro import seed_everything

METRIC_KEYS = {"A_last", "A_mean", "forgetting_max", "forgetting_coda", "bwt", "fwt"}

pytestmark = pytest.mark.usefixtures("single_thread")


def naive_run(blob_benchmark, seed=0, **kwargs):
    seed_everything(seed)
    model = make_model()
    strategy = make_strategy("naive", model)
    record = run_strategy(strategy, blob_benchmark, name="naive", **kwargs)
    return model, record


def test_naive_matrix_and_final_column_match_a_direct_computation(blob_benchmark, blobs):
    seed_everything(0)
    model = make_model()
    untrained = [direct_accuracy(model, *blobs.test_split(i)) for i in range(N_EXPERIENCES)]
    record = run_strategy(make_strategy("naive", model), blob_benchmark, name="naive", config={"lr": 0.05})

    R = record.matrix
    assert R.shape == (2, 2)
    assert np.isfinite(R).all()  # the whole test stream is evaluated after every stage
    assert ((R >= 0) & (R <= 1)).all()
    assert set(record.metrics) == METRIC_KEYS
    assert record.name == "naive" and record.status == "finished" and record.config == {"lr": 0.05}

    # The last column is the trained model's accuracy on each test experience, computed here from the raw
    # tensors with an argmax over all four logits (class-incremental protocol).
    final = [direct_accuracy(model, *blobs.test_split(i)) for i in range(N_EXPERIENCES)]
    np.testing.assert_allclose(R[:, -1], final, rtol=0, atol=1e-9)
    # ... and the untrained row is the accuracy of the freshly initialised model.
    np.testing.assert_allclose(record.initial_accuracy, untrained, rtol=0, atol=1e-9)

    # Every entry is a multiple of 1/20 (20 test samples per class, 40 per experience).
    np.testing.assert_allclose(R * 40, np.rint(R * 40), atol=1e-9)
    # The model learnt the current experience; the benchmark is not trivial.
    assert R[1, 1] > 0.6 and R[0, 0] > 0.6
    # Metrics of a 2x2 matrix, by the definitions: A_last = (R01 + R11) / 2, BWT = R01 - R00, ...
    m = record.metrics
    assert m["A_last"] == pytest.approx((R[0, 1] + R[1, 1]) / 2)
    assert m["A_mean"] == pytest.approx((R[0, 0] + (R[0, 1] + R[1, 1]) / 2) / 2)
    assert m["bwt"] == pytest.approx(R[0, 1] - R[0, 0])
    assert m["forgetting_max"] == pytest.approx(max(R[0, 0], R[0, 1]) - R[0, 1])
    assert m["forgetting_coda"] == pytest.approx(R[0, 0] - R[0, 1])
    assert m["fwt"] == pytest.approx(R[1, 0] - untrained[1])

    # Per-stage bookkeeping: one entry per experience.
    assert len(record.train_seconds) == len(record.eval_seconds) == 2
    assert all(t > 0 for t in record.train_seconds)
    assert record.trainable_parameters == [20 * 32 + 32 + 32 * 4 + 4] * 2  # Linear(20, 32) + Linear(32, 4)
    assert record.benchmark["class_order"] == list(blobs.class_order)
    json.dumps(record.to_dict())  # JSON-able


def test_initial_accuracy_only_when_the_untrained_model_is_evaluated(blob_benchmark):
    _, with_initial = naive_run(blob_benchmark, evaluate_untrained=True)
    assert with_initial.initial_accuracy is not None and len(with_initial.initial_accuracy) == 2
    assert all(0 <= a <= 1 for a in with_initial.initial_accuracy)
    assert with_initial.metrics["fwt"] is not None

    _, without = naive_run(blob_benchmark, evaluate_untrained=False)
    assert without.initial_accuracy is None
    assert without.metrics["fwt"] is None
    assert without.metrics["A_last"] is not None and without.metrics["bwt"] is not None


def test_joint_training_gives_a_single_column(blob_benchmark, blobs):
    seed_everything(0)
    model = make_model()
    record = run_strategy(make_strategy("joint", model), blob_benchmark, name="joint")
    R = record.matrix
    assert R.shape == (2, 1)
    assert record.status == "finished"
    final = [direct_accuracy(model, *blobs.test_split(i)) for i in range(N_EXPERIENCES)]
    np.testing.assert_allclose(R[:, 0], final, rtol=0, atol=1e-9)
    assert set(record.metrics) == METRIC_KEYS
    assert record.metrics["A_last"] == pytest.approx(sum(final) / 2)
    assert [k for k, v in record.metrics.items() if v is not None] == ["A_last"]
    # joint training learns both experiences (no forgetting possible)
    assert min(final) > 0.6
    assert len(record.train_seconds) == 1
    np.testing.assert_allclose(record.accuracy_per_stage, [sum(final) / 2])


def test_save_to_writes_the_record_atomically(blob_benchmark, tmp_path, monkeypatch):
    written = []
    original_save = RunRecord.save

    def spy(self, path):
        written.append(self.to_dict())
        return original_save(self, path)

    monkeypatch.setattr(RunRecord, "save", spy)
    target = tmp_path / "runs" / "naive.json"  # the folder does not exist yet
    _, record = naive_run(blob_benchmark, save_to=target)

    assert [w["status"] for w in written] == ["running", "finished"]  # written after every experience
    # the record written after the first experience holds its column and the metrics of that stage only
    running = written[0]
    R = record.matrix
    assert running["accuracy_matrix"] == [[R[0, 0], None], [R[1, 0], None]]
    assert running["metrics"]["A_last"] == pytest.approx(R[0, 0])
    assert running["metrics"]["bwt"] is None and running["metrics"]["forgetting_max"] is None
    assert len(running["train_seconds"]) == 1
    data = json.loads(target.read_text())
    assert data["status"] == "finished" and data["name"] == "naive"
    assert data["accuracy_matrix"] == record.accuracy_matrix
    loaded = RunRecord.load(target)
    np.testing.assert_array_equal(loaded.matrix, record.matrix)
    assert loaded.metrics == record.metrics and loaded.initial_accuracy == record.initial_accuracy
    assert loaded.to_dict() == record.to_dict()
    assert [p.name for p in target.parent.iterdir()] == ["naive.json"]  # no leftover .tmp


def test_a_failed_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    record = RunRecord.from_arrays("x", np.array([[0.5, 0.2], [0.1, 0.6]]), None, config={}, benchmark={})
    target = tmp_path / "r.json"
    record.save(target)
    before = target.read_text()

    def broken_dumps(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dumps", broken_dumps)
    record.name = "changed"
    with pytest.raises(RuntimeError, match="disk full"):
        record.save(target)
    assert target.read_text() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_record_from_older_schema_is_refused(tmp_path):
    record = RunRecord.from_arrays("x", np.array([[0.5]]), None, config={}, benchmark={})
    path = record.save(tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["schema_version"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema"):
        RunRecord.load(path)


@pytest.mark.filterwarnings("ignore:No loggers specified")
def test_strategy_without_accuracy_matrix_is_refused(blob_benchmark):
    model = make_model()
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    strategy = make_strategy("naive", model, evaluator=evaluator)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="make_evaluator"):
        run_strategy(strategy, blob_benchmark, name="naive")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before training


def test_same_seed_gives_identical_runs(blob_benchmark):
    model_a, first = naive_run(blob_benchmark, seed=11)
    model_b, second = naive_run(blob_benchmark, seed=11)
    np.testing.assert_array_equal(first.matrix, second.matrix)
    assert first.initial_accuracy == second.initial_accuracy
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)
    # the seed matters: another one gives other weights
    model_c, _ = naive_run(blob_benchmark, seed=12)
    assert not all(torch.equal(a, c) for a, c in zip(model_a.parameters(), model_c.parameters()))


def test_task_aware_accuracy_is_at_least_the_class_incremental_one(blob_benchmark, blobs):
    model, record = naive_run(blob_benchmark)
    model.train()
    aware = task_aware_accuracy(model, blob_benchmark)
    assert model.training  # mode restored
    assert aware.shape == (2,)
    expected = [direct_accuracy(model, *blobs.test_split(i), mask=blobs.classes_of(i)) for i in range(2)]
    np.testing.assert_allclose(aware, expected, rtol=0, atol=1e-9)
    # The true class is always among the allowed ones, so masking never turns a right answer wrong.
    assert (aware >= record.matrix[:, -1] - 1e-12).all()
    # Naive fine-tuning forgets experience 0 in the class-incremental protocol far more than task-aware.
    assert aware[0] > record.matrix[0, -1]


def test_task_aware_accuracy_with_a_rigged_model(blob_benchmark, blobs):
    """A model that always puts the highest logit on class 3 and ranks the others 2 > 1 > 0: task-aware it
    answers 2 on experience {0, 2} and 3 on {1, 3}, so it gets exactly the samples of classes 2 and 3."""

    class Rigged(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.tensor([0.0, 1.0, 2.0, 3.0]).expand(len(x), 4) + 0 * self.dummy

    aware = task_aware_accuracy(Rigged(), blob_benchmark, batch_size=7)
    np.testing.assert_allclose(aware, [0.5, 0.5])


# ------------------------------------------------------------------------------------------ metrics_table


def _record(name, matrix, initial=None, **fields):
    return RunRecord.from_arrays(name, np.array(matrix, dtype=float), initial, config={}, benchmark={}, **fields)


def test_metrics_table_by_hand():
    third = 1 / 3
    # A_last = (1/3 + 1/3)/2 = 1/3; A_mean = (2/3 + 1/3)/2 = 1/2; forgetting (both) = 2/3 - 1/3; BWT = -1/3;
    # FWT = R[1,0] - b1 = 0.1 - 0.05.
    a = _record("a", [[2 * third, third], [0.1, third]], np.array([0.2, 0.05]),
                train_seconds=[1.26, 2.5], peak_memory_mib=[100.4, 250.6], trainable_parameters=[10, 12])
    joint = _record("joint", [[0.9], [0.7]], train_seconds=[3.0], peak_memory_mib=[80.0], trainable_parameters=[7])
    table = metrics_table([a, joint])
    assert list(table.index) == ["a", "joint"] and table.index.name == "run"
    assert list(table.columns) == ["A_last (%)", "Ā (%)", "Forgetting, L2P def. (%)", "Forgetting, CODA def. (%)",
                                   "BWT (%)", "FWT (%)", "trainable params"]
    row = table.loc["a"]
    assert row["A_last (%)"] == 33.33
    assert row["Ā (%)"] == 50.0
    assert row["Forgetting, L2P def. (%)"] == 33.33
    assert row["Forgetting, CODA def. (%)"] == 33.33
    assert row["BWT (%)"] == -33.33
    assert row["FWT (%)"] == 5.0
    assert row["trainable params"] == 12
    joint_row = table.loc["joint"]
    assert joint_row["A_last (%)"] == 80.0
    for column in ["Ā (%)", "Forgetting, L2P def. (%)", "Forgetting, CODA def. (%)", "BWT (%)", "FWT (%)"]:
        assert pd.isna(joint_row[column])
    assert joint_row["trainable params"] == 7

    with_costs = metrics_table([a, joint], costs=True)
    assert list(with_costs.columns) == list(table.columns) + ["train time (s)", "peak memory (MiB)"]
    assert with_costs.loc["a", "train time (s)"] == 3.8  # 1.26 + 2.5 = 3.76
    assert with_costs.loc["a", "peak memory (MiB)"] == 251.0
    assert with_costs.loc["joint", "train time (s)"] == 3.0


def test_metrics_table_of_real_runs(blob_benchmark):
    _, naive = naive_run(blob_benchmark)
    seed_everything(0)
    joint = run_strategy(make_strategy("joint", make_model()), blob_benchmark, name="joint")
    table = metrics_table([naive, joint])
    assert len(table) == 2 and list(table.index) == ["naive", "joint"]
    labels = {"A_last": "A_last (%)", "A_mean": "Ā (%)", "forgetting_max": "Forgetting, L2P def. (%)",
              "forgetting_coda": "Forgetting, CODA def. (%)", "bwt": "BWT (%)", "fwt": "FWT (%)"}
    for record in (naive, joint):
        for key, label in labels.items():
            value = table.loc[record.name, label]
            if record.metrics[key] is None:
                assert pd.isna(value)
            else:
                assert math.isclose(value, round(100 * record.metrics[key], 2), abs_tol=1e-9)
                assert abs(value - 100 * record.metrics[key]) <= 0.005 + 1e-9
    assert table.loc["naive", "trainable params"] == naive.trainable_parameters[-1]
    assert metrics_table([naive, joint], costs=True).shape == (2, table.shape[1] + 2)
