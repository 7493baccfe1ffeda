"""Every chapter is a notebook that validates against the nbformat schema: nbval, the book build and the
rendered-book check all read the same file, and a cell with a field its type does not have (e.g. outputs on a
markdown cell, left by an edit) breaks the last of them, not the first."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_the_book_has_chapters():
    assert len(CHAPTERS) >= 10


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.relative_to(BOOK).as_posix())
def test_chapter_validates_against_the_notebook_schema(chapter):
    nbformat.validate(nbformat.read(chapter, as_version=4))
