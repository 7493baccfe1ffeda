"""The committed records of the medium profile: their learning rates are the stored validation choices, every
record carries its provenance and its mechanism, and a stored run's first experience is reproduced."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pecft_lib.comparison import load_comparison, run_one
from pecft_lib.lr_selection import load_selection, tunable_runs
from pecft_lib.stored_records import load_stored, records_root

TOLERANCES = yaml.safe_load((Path(__file__).parents[1] / "book" / "tolerances.yml").read_text())["classes"]
BENCHMARKS = ["five_domains", "text_domains"]


@pytest.fixture(scope="module")
def medium():
    return load_comparison("medium")


def test_the_medium_grid_has_these_benchmarks(medium):
    assert list(medium.benchmarks) == BENCHMARKS


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_the_medium_learning_rates_are_the_stored_validation_choices(medium, benchmark):
    setup = medium.benchmarks[benchmark]
    selection = load_selection(records_root("medium", "lr_selection"), benchmark)
    assert set(selection) == set(tunable_runs(setup))
    for run, choice in selection.items():
        assert choice["chosen"] == max(map(float, choice["scores"]), key=lambda lr: (choice["scores"][f"{lr:g}"], -lr))
        used = setup.baselines[run].lr if run in setup.baselines else setup.overrides[run]["optim.lr"]
        assert used == choice["chosen"], f"{run}: configs/comparison.yaml says {used}, the selection {choice['chosen']}"


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_every_stored_record_has_its_provenance_and_every_method_its_mechanism(medium, benchmark):
    setup = medium.benchmarks[benchmark]
    records = load_stored(medium, benchmark, records_root("medium"))  # refuses records of other settings
    assert len(records) == len(setup.runs) * len(medium.seeds)
    for record in records:
        provenance = record.extra["provenance"]
        assert provenance["commit"] and provenance["cpu"] and provenance["wall_seconds"] > 0
        assert "uncommitted" not in provenance["commit"], f"{record.name} was made from uncommitted code"
        has_mechanism = record.name in setup.methods or record.name in setup.controls
        assert ("diagnostics" in record.extra) == has_mechanism, record.name


@pytest.mark.parametrize("benchmark, run", [("five_domains", "DualPrompt"), ("text_domains", "O-LoRA")])
def test_a_stored_run_reproduces_its_first_experience(medium, benchmark, run):
    setup = medium.benchmarks[benchmark]
    stored = load_stored(medium, benchmark, records_root("medium"), runs=[run], seeds=[0])[0]
    again = run_one(setup, run, 0, "medium", stop_after=1)
    bound = TOLERANCES["fraction"]["abs"]  # the any-CPU bound of the book's accuracies (book/tolerances.yml)
    assert again.matrix[0, 0] == pytest.approx(stored.matrix[0, 0], abs=bound)
    assert again.benchmark["class_order"] == stored.benchmark["class_order"]
