"""The browser check can fail: a tiny synthetic site with one broken thing of each kind, and a clean page."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rendered_site import (Browser, check_page, missing_chromium, missing_prerequisites, screenshot_name, serve,
                           stored_image_outputs, toc_pages)

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def _notebook(n_images: int) -> dict:
    image_output = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "AAAA", "text/plain": ["fig"]}}
    hidden = {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "source": "", "execution_count": 2,
              "outputs": [image_output]}
    shown = {"cell_type": "code", "metadata": {}, "source": "", "execution_count": 1,
             "outputs": [image_output] * n_images}
    return {"cells": [shown, hidden], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = missing_chromium()
    if missing:
        pytest.fail("; ".join(missing), pytrace=False)
    root = tmp_path_factory.mktemp("site")
    (root / "ok.png").write_bytes(PNG_1X1)
    (root / "index.html").write_text("<html><body>home</body></html>")
    (root / "other.html").write_text('<html><body><h1 id="there">Target</h1><a name="legacy"></a></body></html>')
    (root / "good.html").write_text(
        '<html><body><main><img src="ok.png" width="20" height="20">'
        '<a href="other.html#there">a</a> <a href="other.html#legacy">b</a> <a href="./">home</a> '
        '<a href="#top" id="top">self</a> <a href="https://example.invalid/">external link, never followed</a>'
        "</main></body></html>"
    )
    (root / "bad.html").write_text(
        "<html><head>"
        '<script src="https://example.invalid/needed.js"></script>'
        "</head><body><main>"
        '<img src="missing.png"> <img src="ok.png" style="display:none">'
        '<a href="nowhere.html">broken</a> <a href="other.html#not-there">fragment</a> '
        '<a href="../../outside.html">outside</a>'
        '<span class="math">\\(x^2\\)</span>'
        '<script>console.error("boom from the page")</script>'
        "<script>undefinedFunction()</script>"
        "</main></body></html>"
    )
    (root / "bad.ipynb").write_text(json.dumps(_notebook(3)))
    return root


@pytest.fixture(scope="module")
def browser(site: Path):
    with serve(site) as origin, Browser(origin) as chromium:
        yield chromium


def test_clean_page_has_no_problems(browser, site, tmp_path):
    report, problems = check_page(browser, site, "good", None, tmp_path / screenshot_name("sub/good"))
    assert problems == []
    assert len(report.images) == 1 and report.external_requests == []
    assert (tmp_path / "sub__good.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_kind_of_breakage_is_reported(browser, site):
    report, problems = check_page(browser, site, "bad", site / "bad.ipynb")
    text = "\n".join(problems)
    assert "console error: boom from the page" in text
    assert "uncaught exception:" in text and "undefinedFunction" in text
    assert "request failed:" in text and "missing.png: HTTP 404" in text
    assert "external resource (blocked" in text and "https://example.invalid/needed.js" in text
    assert "image not shown: missing.png" in text
    assert "image not shown: ok.png" in text and "rendered 0x0" in text  # decoded but not displayed
    assert "2 images on the page but bad.ipynb stores 3 image outputs" in text
    assert "broken link 'nowhere.html': nowhere.html does not exist" in text
    assert "broken link 'other.html#not-there': other.html has no id 'not-there'" in text
    assert "link '../../outside.html' points outside the site" in text
    assert "formula not typeset by MathJax" in text


def test_page_missing_from_build_is_reported(browser, site):
    _, problems = check_page(browser, site, "chapter/never_built", None)
    assert len(problems) == 1 and "was not built" in problems[0]


def test_stored_image_outputs_skips_hidden_cells(tmp_path):
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps(_notebook(2)))
    assert stored_image_outputs(notebook) == 2
    assert stored_image_outputs(tmp_path / "page.md") == 0 and stored_image_outputs(None) == 0


def test_toc_pages_walks_parts_chapters_and_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro.md\nparts:\n  - caption: A\n    chapters:\n      - file: book/a\n"
        "        sections:\n          - file: book/a/one.ipynb\n          - url: https://example.invalid\n"
        "  - caption: B\n    chapters:\n      - file: book/b\n"
    )
    assert toc_pages(toc) == ["book/intro", "book/a", "book/a/one", "book/b"]
    toc.write_text("format: jb-book\nroot: intro\nchapters:\n  - glob: book/*\n")
    with pytest.raises(ValueError, match="glob"):
        toc_pages(toc)


def test_missing_build_and_browser_say_how_to_fix(tmp_path):
    missing = missing_prerequisites(tmp_path / "html", chromium=tmp_path / "no-chromium")
    assert "make book-check" in missing[0] and "apt-get install chromium chromium-driver" in missing[1]

