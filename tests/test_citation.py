"""CITATION.cff, the BibTeX entry of book/cite.md, pyproject.toml, _config.yml and book/references.bib agree,
so that the ways of citing the book cannot drift apart."""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from pybtex.database import BibliographyData, parse_string

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = ("cff-version", "message", "title", "authors")  # the required keys of CFF 1.2.0
CITED_PAPERS = ("coleman2025pecft", "wang2022l2p", "wang2022dualprompt", "smith2023coda", "liang2024inflora",
                "wang2023olora")


@pytest.fixture(scope="module")
def cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def bibtex_blocks(markdown: str) -> list[str]:
    """The contents of the ```bibtex fences of a MyST page."""
    return re.findall(r"^```bibtex\n(.*?)^```", markdown, flags=re.S | re.M)


@pytest.fixture(scope="module")
def book_entry():
    blocks = bibtex_blocks((ROOT / "book" / "cite.md").read_text())
    assert len(blocks) == 1, "book/cite.md should hold exactly one ```bibtex block: the book's entry"
    entries = parse_string(blocks[0], "bibtex").entries
    assert len(entries) == 1
    return next(iter(entries.values()))


def plain(text: str) -> str:
    """BibTeX text without protective braces."""
    return text.replace("{", "").replace("}", "")


def test_bibtex_blocks_finds_fences() -> None:
    page = "text\n```bibtex\n@misc{a, title={A}}\n```\nmore\n```python\nx = 1\n```\n"
    assert bibtex_blocks(page) == ["@misc{a, title={A}}\n"]


def test_cff_has_the_required_keys(cff: dict) -> None:
    assert not [key for key in REQUIRED_KEYS if not cff.get(key)]
    assert cff["cff-version"] == "1.2.0"
    assert cff["authors"] == [{"name": "The PECFT book contributors"}]
    for key in ("version", "date-released", "license", "repository-code"):
        assert cff.get(key), f"CITATION.cff lacks {key}"


def test_cff_agrees_with_pyproject_and_config(cff: dict, pyproject: dict) -> None:
    assert str(cff["version"]) == pyproject["version"]
    assert cff["license"] == pyproject["license"]  # a PEP 639 SPDX expression
    datetime.date.fromisoformat(str(cff["date-released"]))
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cff["repository-code"] == config["repository"]["url"]
    assert config["author"] == cff["authors"][0]["name"]


def test_cite_page_bibtex_agrees_with_cff(cff: dict, book_entry) -> None:
    fields = book_entry.fields
    assert plain(fields["title"]) == cff["title"]
    assert fields["version"] == str(cff["version"])
    assert fields["url"] == cff["repository-code"]
    assert cff["repository-code"] in fields["howpublished"]
    assert fields["year"] == str(cff["date-released"])[:4]
    assert str(cff["version"]) in fields["note"]
    assert [plain(str(person)) for person in book_entry.persons["author"]] == [cff["authors"][0]["name"]]


def test_cff_references_are_the_papers_of_references_bib(cff: dict) -> None:
    bib: BibliographyData = parse_string((ROOT / "book" / "references.bib").read_text(), "bibtex")
    by_title = {plain(bib.entries[key].fields["title"]): key for key in CITED_PAPERS}
    cited = []
    for reference in cff["references"]:
        key = by_title.get(reference["title"])
        assert key, f"CITATION.cff cites {reference['title']!r}, which is none of {CITED_PAPERS} in references.bib"
        entry = bib.entries[key]
        assert str(reference["year"]) == entry.fields["year"], key
        assert [author["family-names"] for author in reference["authors"]] == [
            " ".join(person.last_names) for person in entry.persons["author"]], key
        assert [author["given-names"] for author in reference["authors"]] == [
            " ".join(person.first_names + person.middle_names) for person in entry.persons["author"]], key
        cited.append(key)
    assert sorted(cited) == sorted(CITED_PAPERS)


def test_cite_page_points_at_every_method_paper() -> None:
    page = (ROOT / "book" / "cite.md").read_text()
    cited = set(re.findall(r"\{cite:[tp]\}`([^`]+)`", page))
    assert set(CITED_PAPERS) <= cited
