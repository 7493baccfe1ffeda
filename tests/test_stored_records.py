"""Train or load: producing the comparison's stored records run by run, resuming, and loading them back."""

from __future__ import annotations

import json

import pytest

from pecft_lib.benchmarks import BenchmarkConfig
from pecft_lib.cli import main
from pecft_lib.comparison import ComparisonBenchmark, ComparisonConfig, load_comparison
from pecft_lib.errors import ConfigError, DatasetNotFoundError
from pecft_lib.methods.baselines import BaselineConfig
from pecft_lib.methods.finetuning.config import TuningConfig
from pecft_lib.stored_records import load_stored, produce, provenance_summary, record_path


def tiny_grid() -> ComparisonConfig:
    setup = ComparisonBenchmark(
        backbone="pecft-vit-tiny",
        benchmark=BenchmarkConfig(name="split_mnist", n_experiences=2, seed=0, train_per_class=4, test_per_class=4),
        methods={},
        baselines={
            "Prototype": BaselineConfig(tuning=TuningConfig(method="linear_probe"), kind="prototype", epochs=1),
            "SeqFT": BaselineConfig(tuning=TuningConfig(method="full"), kind="sequential", lr=1e-4, epochs=1),
        },
    )
    return ComparisonConfig(seeds=[0, 1], benchmarks={"mnist": setup})


def test_produce_stores_each_run_once_and_load_reads_them_back(tmp_path):
    grid = tiny_grid()
    written = produce(grid, "mnist", tmp_path, "quick", runs=["Prototype"])
    assert written == [record_path(tmp_path, "mnist", "Prototype", s) for s in (0, 1)]
    provenance = json.loads(written[0].read_text())["extra"]["provenance"]
    assert provenance["wall_seconds"] > 0 and provenance["cpu"]
    assert produce(grid, "mnist", tmp_path, "quick", runs=["Prototype"]) == []  # resumable: nothing left to do
    records = load_stored(grid, "mnist", tmp_path, runs=["Prototype"])
    assert [(r.name, r.config["seed"]) for r in records] == [("Prototype", 0), ("Prototype", 1)]
    assert all(r.benchmark["name"] == "split_mnist" and r.status == "finished" for r in records)
    summary = provenance_summary(records)
    assert summary.startswith("2 stored records; CPU: ") and "hours of training and evaluation in all" in summary


def test_missing_records_name_the_command_that_makes_them(tmp_path):
    produce(tiny_grid(), "mnist", tmp_path, "quick", runs=["Prototype"], seeds=[0])
    with pytest.raises(DatasetNotFoundError, match=r"SeqFT \(seed 0\).*Prototype \(seed 1\).*pecft comparison"):
        load_stored(tiny_grid(), "mnist", tmp_path)


def test_a_record_of_another_benchmark_is_refused(tmp_path):
    written = produce(tiny_grid(), "mnist", tmp_path, "quick", runs=["Prototype"], seeds=[0])
    data = json.loads(written[0].read_text())
    data["benchmark"]["name"] = "split_fashion_mnist"
    written[0].write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not split_mnist with seed 0"):
        load_stored(tiny_grid(), "mnist", tmp_path, runs=["Prototype"], seeds=[0])


def test_medium_grid_starts_from_the_quick_presets_on_the_new_streams():
    grid = load_comparison("medium")
    setup = grid.benchmarks["five_domains"]
    assert setup.presets == "quick" and setup.backbone == "pecft-hybrid-glyphs"
    assert len(grid.seeds) == 3
    assert {"L2P", "DualPrompt", "CODA-Prompt", "InfLoRA", "O-LoRA", "Prototype", "SeqFT"} <= set(setup.runs)
    # one schedule for all: no per-epoch cosine that trains the last epoch at 1.6 % of the learning rate
    assert setup.overrides["CODA-Prompt"]["optim.schedule"] == "constant"
    assert setup.overrides["InfLoRA"]["optim.schedule"] == "constant"


def test_cli_refuses_an_unknown_run(capsys, tmp_path):
    assert main(["comparison", "--benchmark", "five_domains", "--runs", "EWC", "--out", str(tmp_path)]) == 2
    assert "unknown run 'EWC'" in capsys.readouterr().err


def test_stop_after_trains_only_the_first_experiences():
    from pecft_lib.comparison import run_one

    setup = tiny_grid().benchmarks["mnist"]
    record = run_one(setup, "SeqFT", 0, "quick", stop_after=1)
    assert record.status == "running" and len(record.train_seconds) == 1
    assert record.matrix[0, 0] == record.matrix[0, 0]  # measured (not NaN)
    with pytest.raises(ConfigError, match="stop_after must be between 1 and 2"):
        run_one(setup, "SeqFT", 0, "quick", stop_after=3)


def test_learning_rates_are_chosen_on_validation_data_and_stored(tmp_path):
    from pecft_lib.lr_selection import select_learning_rates, tunable_runs

    grid = tiny_grid()
    assert tunable_runs(grid.benchmarks["mnist"]) == ["SeqFT"]  # the prototype classifier has no learning rate
    selection = select_learning_rates(grid, "mnist", [1e-4, 1e-3], tmp_path, "quick", validation_per_class=2)
    choice = selection["SeqFT"]
    assert set(choice["scores"]) == {"0.0001", "0.001"}
    assert choice["chosen"] in (1e-4, 1e-3)
    assert choice["scores"][f"{choice['chosen']:g}"] == max(choice["scores"].values())
    trial = json.loads((tmp_path / "mnist" / "SeqFT" / "lr0.001.json").read_text())
    assert trial["benchmark"]["validation_per_class"] == 2 and trial["benchmark"]["test_sizes"] == [10, 10]  # 5 classes × 2
    assert json.loads((tmp_path / "mnist" / "selection.json").read_text()) == selection
    # resumable: a second call trains nothing and gives the same choice
    assert select_learning_rates(grid, "mnist", [1e-4, 1e-3], tmp_path, "quick", validation_per_class=2) == selection
    with pytest.raises(Exception, match="run with a learning rate"):
        select_learning_rates(grid, "mnist", [1e-3], tmp_path, "quick", validation_per_class=2, runs=["Prototype"])


def test_the_stored_choice_lists_runs_in_the_grid_order_whoever_wrote_first(tmp_path):
    """Searches run in parts (e.g. two processes) store one file in the comparison's order of runs."""
    from pecft_lib.lr_selection import select_learning_rates

    stored = tmp_path / "mnist" / "selection.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"A run of another grid": {"scores": {"0.001": 0.5}, "chosen": 0.001}}))
    selection = select_learning_rates(tiny_grid(), "mnist", [1e-3], tmp_path, "quick", validation_per_class=2)
    assert list(selection) == list(json.loads(stored.read_text())) == ["SeqFT", "A run of another grid"]


def test_a_record_made_under_other_settings_is_refused_not_reused(tmp_path):
    import dataclasses

    grid = tiny_grid()
    produce(grid, "mnist", tmp_path, "quick", runs=["SeqFT"], seeds=[0])
    setup = grid.benchmarks["mnist"]
    changed = dataclasses.replace(setup, baselines={**setup.baselines,
                                                    "SeqFT": dataclasses.replace(setup.baselines["SeqFT"], lr=0.5)})
    stale = ComparisonConfig(seeds=[0], benchmarks={"mnist": changed})
    with pytest.raises(ConfigError, match=r"other settings of SeqFT \(baseline differ"):
        produce(stale, "mnist", tmp_path, "quick", runs=["SeqFT"])
    with pytest.raises(ConfigError, match="delete it to re-run it"):
        load_stored(stale, "mnist", tmp_path, runs=["SeqFT"])


def test_a_record_made_on_other_data_is_refused(tmp_path, monkeypatch):
    from pecft_lib.benchmarks import grey28_streams

    produce(tiny_grid(), "mnist", tmp_path, "quick", runs=["Prototype"], seeds=[0])
    monkeypatch.setitem(grey28_streams.SHA256, "mnist", "0" * 64)  # as if mnist.npz had been rebuilt
    with pytest.raises(ConfigError, match=r"other settings of Prototype \(data differ"):
        load_stored(tiny_grid(), "mnist", tmp_path, runs=["Prototype"], seeds=[0])
