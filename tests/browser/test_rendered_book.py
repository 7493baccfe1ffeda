"""The rendered book as a reader sees it: every page of _toc.yml opened in headless Chromium (offline).

Runs after the book is built (`make browser-check`, part of `make test`); the main pytest run ignores this folder.
Each page must load without console errors, failed requests or external requests, show every figure (at least as
many images as its notebook stores image outputs), typeset its math, and have no broken internal link. A
full-page screenshot of each page goes to _build/screenshots/<page path with / replaced by __>.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rendered_site import Browser, check_page, missing_prerequisites, page_source, screenshot_name, serve, toc_pages

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = toc_pages(ROOT / "_toc.yml")


@pytest.fixture(scope="module")
def browser():
    missing = missing_prerequisites(HTML)
    if missing:
        pytest.fail("cannot check the rendered book: " + "; ".join(missing), pytrace=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with serve(HTML) as origin, Browser(origin) as chromium:
        yield chromium


def test_toc_has_pages():
    assert len(PAGES) > 1 and PAGES[0] == "book/intro", PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(browser, page):
    source = page_source(ROOT, page)
    assert source is not None, f"_toc.yml lists {page} but neither {page}.ipynb nor {page}.md exists"
    report, problems = check_page(browser, HTML, page, source, SCREENSHOTS / screenshot_name(page))
    print(f"{page}: {len(report.images)} images checked, {report.formulas} formulas")
    if problems:
        pytest.fail(f"{page}.html:\n  " + "\n  ".join(problems), pytrace=False)
