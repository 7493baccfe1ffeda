"""The notebook check's tolerance comparison (tests/nbval_numeric.py) and the book's tolerance table:
what a tagged cell may change, what it may not, and that each bound rests on a measurement."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from nbval_numeric import (TOLERANCE_FILE, Tolerance, ToleranceTable, cell_tolerance, compare_cell, compare_text,
                           split_numbers, tolerances_of)

ROOT = Path(__file__).resolve().parent.parent
PERCENT = Tolerance("percent", abs=1.0)


def test_numbers_are_found_alone_not_inside_names_or_versions():
    pieces, numbers = split_numbers("A_last = 0.1990, vit_base_patch16_224 v0.6.1 1.1e-16 −0.5 (3, 16) at 23.")
    assert numbers == ["0.1990", "1.1e-16", "−0.5", "3", "16", "23"]
    assert "".join(p + n for p, n in zip(pieces, numbers + [""])) == (
        "A_last = 0.1990, vit_base_patch16_224 v0.6.1 1.1e-16 −0.5 (3, 16) at 23.")


def test_decimals_move_within_the_bound_and_no_further():
    assert not compare_text("A_last 64.00 %", "A_last 64.80 %", PERCENT).moved
    moved = compare_text("A_last 64.00 %", "A_last 65.20 %", PERCENT).moved
    assert [(a, b) for a, b, _ in moved] == [("64.00", "65.20")]
    assert compare_text("A_last 64.00 %", "A_last 65.20 %", PERCENT).float_deviation == pytest.approx(1.2)
    relative = Tolerance("loss", rel=0.1)
    assert not compare_text("loss 2.0", "loss 2.19", relative).moved and compare_text("loss 2.0", "loss 2.3", relative).moved


def test_integers_text_and_structure_must_be_equal():
    assert compare_text("params 1930 in 5 experiences", "params 1931 in 5 experiences", PERCENT).moved
    assert not compare_text("selected 12 times", "selected 13 times", Tolerance("counts", abs=2, integers=True)).moved
    assert not compare_text("run A 1.0", "run B 1.0", PERCENT).same_structure  # a word changed
    assert not compare_text("1.0 2.0", "1.0 2.0 3.0", PERCENT).same_structure  # a number appeared
    assert not compare_text("0.5\n", "0.5\n\n", PERCENT).same_structure  # a line appeared
    # tables pad their columns to the widest entry: runs of spaces may change, nothing else
    assert compare_text("x    9.5  y", "x   10.1  y", PERCENT).same_structure
    assert not compare_text("x    9.5  y", "x   10.1  y", PERCENT).moved
    # an untagged comparison (bound None) measures how far numbers moved but allows nothing
    exact = compare_text("0.25", "0.2500001", None)
    assert exact.moved and exact.float_deviation == pytest.approx(1e-7)
    assert not compare_text("0.25", "0.250", None).moved  # the same number written differently


def test_a_failing_cell_says_which_numbers_moved_or_which_lines_changed():
    reasons, deviation = compare_cell({"stdout": ["A_last 64.0\nrun L2P\n"]}, {"stdout": ["A_last 68.0\nrun L2P\n"]},
                                      PERCENT)
    assert reasons == ["stdout: A_last ⟨64.0⟩ stored 64.0, computed 68.0 (bound 1)"] and deviation == pytest.approx(4)
    reasons, _ = compare_cell({"stdout": ["A_last 64.0\nrun L2P\n"]}, {"stdout": ["A_last 64.0\nrun CODA\n"]}, PERCENT)
    assert reasons[0].endswith("-run L2P\n+run CODA")
    reasons, _ = compare_cell({"stdout": ["x"]}, {"stdout": ["x"], "stderr": ["warning"]}, PERCENT)
    assert reasons == ["output kinds differ: stored ['stdout'], computed ['stderr', 'stdout']"]


def test_a_tag_must_name_one_class_of_its_chapter():
    classes = {"percent": PERCENT}
    assert cell_tolerance(["hide-input", "tolerance:percent"], classes, "x") is PERCENT
    assert cell_tolerance(["hide-input"], classes, "x") is None
    with pytest.raises(ValueError, match="defined: \\['percent'\\]"):
        cell_tolerance(["tolerance:fraction"], classes, "x")


def _chapters_and_tags() -> list[tuple[str, int, str]]:
    tagged = []
    for path in sorted((ROOT / "book").rglob("*.ipynb")):
        chapter = path.relative_to(ROOT / "book").as_posix()
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for number, cell in enumerate(cells):
            tagged += [(chapter, number, tag.split(":", 1)[1]) for tag in cell.metadata.get("tags", [])
                       if tag.startswith("tolerance:")]
    return tagged


def test_every_bound_of_the_book_rests_on_a_measurement_and_is_used():
    table = ToleranceTable.load()
    assert table.chapters, f"{TOLERANCE_FILE} defines no tolerance"
    used = {(chapter, name) for chapter, _, name in _chapters_and_tags()}
    for chapter, classes in table.chapters.items():
        assert (ROOT / "book" / chapter).is_file(), f"{chapter} in {TOLERANCE_FILE.name} is not a chapter"
        for name, tolerance in classes.items():
            assert tolerance.measured is not None, f"{chapter}: class {name!r} has no measured spread"
            assert tolerance.abs + tolerance.rel * 1.0 >= tolerance.measured, (chapter, name)
            assert (chapter, name) in used, f"{chapter}: class {name!r} is tagged on no cell"
    for chapter, number, name in _chapters_and_tags():
        cell_tolerance([f"tolerance:{name}"], table.for_chapter(chapter), f"{chapter} cell {number}")


def test_the_tolerance_file_names_chapters_relative_to_its_folder():
    chapter, classes = tolerances_of(ROOT / "book" / "foundations" / "continual_learning.ipynb")
    assert chapter == "foundations/continual_learning.ipynb"
    assert classes == ToleranceTable.load().for_chapter(chapter)
    assert set(yaml.safe_load(TOLERANCE_FILE.read_text())) == {"classes", "chapters"}


def _cell(source: str, stored: str, tags: list[str]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, execution_count=1, metadata={"tags": tags})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    return cell


def test_nbval_applies_the_bound_of_a_tagged_cell_and_fails_beyond_it(tmp_path):
    """The plugin inside a real nbval run: a tagged cell passes within its bound and fails beyond it with the
    numbers in the report; an untagged cell still needs equal output."""
    book = tmp_path / "book"
    book.mkdir()
    (book / "tolerances.yml").write_text(yaml.safe_dump(
        {"chapters": {"chapter.ipynb": {"fraction": {"abs": 0.02, "measured": 0.01}}}}))
    notebook = nbformat.v4.new_notebook(cells=[
        _cell('print(f"accuracy {0.51:.2f} after 3 steps")', "accuracy 0.50 after 3 steps\n", ["tolerance:fraction"]),
        _cell('print(f"accuracy {0.60:.2f} after 3 steps")', "accuracy 0.50 after 3 steps\n", ["tolerance:fraction"]),
        _cell('print(f"accuracy {0.51:.2f} after 4 steps")', "accuracy 0.51 after 3 steps\n", ["tolerance:fraction"]),
        _cell('print(f"accuracy {0.51:.2f}")', "accuracy 0.50\n", []),
    ])
    nbformat.write(notebook, book / "chapter.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_numeric", "--nbval", "--nbval-current-env", "-v", "--color=no", "-o",
         "addopts=", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(book / "chapter.ipynb")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert "::Cell 0 PASSED" in out, out[-3000:]
    for failing in (1, 2, 3):
        assert f"::Cell {failing} FAILED" in out, out[-3000:]
    assert "stored 0.50, computed 0.60 (bound 0.02)" in out
    assert "stored 3, computed 4 (must be equal)" in out


def test_the_repository_loads_the_plugin_for_every_run(pytestconfig):
    """`pytest tests book` (make test) gets the tolerance comparison through the root conftest.py, including in
    the xdist workers that run the chapters."""
    assert pytestconfig.pluginmanager.has_plugin("nbval_numeric")
    from nbval.plugin import IPyNbCell

    assert getattr(IPyNbCell.compare_outputs, "_with_tolerance", False)


def test_a_malformed_tolerance_file_is_refused_with_what_to_fix(tmp_path):
    path = tmp_path / "tolerances.yml"
    path.write_text("classes:\n  percent: {abs: 1, relative: 2}\n")
    with pytest.raises(ValueError, match="unknown keys \\['relative'\\]"):
        ToleranceTable.load(path)
    path.write_text("chapters:\n  x.ipynb:\n    fraction: {measured: 0.01}\n")
    with pytest.raises(ValueError, match="not under `classes` and gives no bound"):
        ToleranceTable.load(path)
    path.write_text("classes:\n  percent: {abs: 3}\nchapters:\n  x.ipynb:\n    percent: {measured: 1.5}\n")
    table = ToleranceTable.load(path)
    assert table.for_chapter("book/x.ipynb")["percent"] == Tolerance("percent", abs=3, measured=1.5)
    assert table.for_chapter("y.ipynb") == {} and table.for_chapter("y.ipynb", measuring=True)["percent"].abs == 3
