"""The book's explanatory figures (book/figures/*.svg) are the ones tools/draw_figures.py draws today.

A figure script changed without regenerating its figures fails here: run ``python tools/draw_figures.py``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES_DIR = ROOT / "book" / "figures"


def _load_script():
    spec = importlib.util.spec_from_file_location("draw_figures", ROOT / "tools" / "draw_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


draw_figures = _load_script()


def test_every_figure_of_the_script_is_committed_and_captioned():
    captions = (FIGURES_DIR / "CAPTIONS.md").read_text(encoding="utf-8")
    for name in draw_figures.FIGURES:
        assert (FIGURES_DIR / f"{name}.svg").is_file(), f"book/figures/{name}.svg is missing"
        assert f"figures/{name}.svg" in captions, f"CAPTIONS.md has no entry for {name}.svg"
    committed = {p.stem for p in FIGURES_DIR.glob("*.svg")}
    assert committed == set(draw_figures.FIGURES), "book/figures holds SVG files the script does not draw"


def test_redrawn_figures_are_byte_identical(tmp_path):
    made_by = re.search(r"Matplotlib v([0-9][^,<\s]*)", (FIGURES_DIR / "l2p.svg").read_text(encoding="utf-8"))
    if made_by and made_by.group(1) != matplotlib.__version__:
        pytest.skip(f"figures were drawn with matplotlib {made_by.group(1)}, this is {matplotlib.__version__}")
    written = draw_figures.write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{name}.svg" for name in draw_figures.FIGURES)
    stale = [p.name for p in written if p.read_bytes() != (FIGURES_DIR / p.name).read_bytes()]
    assert not stale, f"regenerate with `python tools/draw_figures.py`: {stale} differ from the script's output"
