"""Check a built HTML site the way a reader's browser shows it.

Used by the tests of this folder (``make browser-check``): serve a folder on localhost, open each page in
headless Chromium (Playwright driving Debian's ``/usr/bin/chromium``, never the network) and report

* console messages of type error, uncaught exceptions, and requests to the local server that failed;
* every request to another host (blocked: a page that needs one is not self-contained, e.g. MathJax from a CDN);
* images of the page content that did not decode or have no rendered size, and fewer images than the
  chapter's notebook stores as image outputs;
* formulas MathJax left untypeset or could not typeset;
* internal links (parsed from the HTML, never clicked) to missing files or to ids the target page lacks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
HOW_TO_INSTALL_CHROMIUM = (
    "install Debian's chromium and chromium-driver: `bash tools/install_data.sh` as root (or `make setup`), "
    "or `apt-get install chromium chromium-driver`"
)
PAGE_TIMEOUT_MS = 30_000
# Cells whose outputs the book does not show (Jupyter Book tags), so their images are not expected on the page.
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove_output", "remove-cell", "remove_cell"}
IMAGE_MIME_TYPES = ("image/png", "image/svg+xml")


def toc_pages(toc_file: Path) -> list[str]:
    """Pages of a Jupyter Book ``_toc.yml``, in reading order: the root, then every ``file:`` entry (any depth).

    Paths are as written in the toc (relative to the book root, without suffix); ``url:`` entries are external
    and skipped. ``glob:`` entries are not supported: they raise, so that no page is silently left out.
    """
    toc = yaml.safe_load(toc_file.read_text())
    pages = [_without_suffix(toc["root"])]

    def walk(node: object) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"{toc_file}: `glob: {node['glob']}` entries are not supported by this check; "
                                 "list the pages with `file:` instead")
            if "file" in node:
                pages.append(_without_suffix(node["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk(toc)
    return list(dict.fromkeys(pages))


def _without_suffix(page: str) -> str:
    for suffix in (".ipynb", ".md"):
        if page.endswith(suffix):
            return page[: -len(suffix)]
    return page


def page_source(book_root: Path, page: str) -> Path | None:
    """The source file of a toc page (``.ipynb`` or ``.md``), or None if neither exists."""
    for suffix in (".ipynb", ".md"):
        if (book_root / f"{page}{suffix}").is_file():
            return book_root / f"{page}{suffix}"
    return None


def stored_image_outputs(source: Path | None) -> int:
    """Number of image outputs (PNG or SVG; one per output) a notebook stores in cells the book shows; 0 for .md."""
    if source is None or source.suffix != ".ipynb":
        return 0
    count = 0
    for cell in json.loads(source.read_text())["cells"]:
        if HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            if any(mime in output.get("data", {}) for mime in IMAGE_MIME_TYPES):
                count += 1
    return count


def screenshot_name(page: str) -> str:
    """File name of a page's screenshot: its path with ``/`` replaced by ``__``."""
    return page.replace("/", "__") + ".png"


def missing_chromium(chromium: Path = CHROMIUM) -> list[str]:
    """``[how to install it]`` when the Chromium executable is missing, else ``[]``."""
    if chromium.is_file() and os.access(chromium, os.X_OK):
        return []
    return [f"headless Chromium is missing ({chromium}): {HOW_TO_INSTALL_CHROMIUM}"]


def missing_prerequisites(html_root: Path, chromium: Path = CHROMIUM) -> list[str]:
    """What is missing to check the built book, each with how to fix it (empty when all is there)."""
    missing = []
    if not (html_root / "index.html").is_file():
        missing.append(f"the built book is missing ({html_root}/index.html does not exist): run `make book-check` "
                       "(renders the stored outputs) or `make book` first")
    return missing + missing_chromium(chromium)


# ---------------------------------------------------------------------------------------------------------------
# Internal links, from the HTML alone


class _LinksAndIds(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a":
            if values.get("name"):
                self.ids.add(values["name"])
            if values.get("href") is not None:
                self.hrefs.append(values["href"])


@lru_cache(maxsize=None)
def _parse(html_file: Path) -> _LinksAndIds:
    parser = _LinksAndIds()
    parser.feed(html_file.read_text(encoding="utf-8", errors="replace"))
    return parser


def internal_link_problems(html_root: Path, html_file: Path) -> list[str]:
    """Same-site ``<a href>`` of a page that point to a missing file, outside the site, or to a missing id."""
    root = html_root.resolve()
    problems = []
    for href in _parse(html_file.resolve()).hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:  # another site (http:, mailto:, javascript: …): never followed
            continue
        path, fragment = unquote(parts.path), unquote(parts.fragment)
        if not path:
            target = html_file.resolve()
        elif path.startswith("/"):
            target = Path(os.path.normpath(root / path.lstrip("/")))
        else:
            target = Path(os.path.normpath(html_file.resolve().parent / path))
        if target != root and root not in target.parents:
            problems.append(f"link {href!r} points outside the site")
            continue
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link {href!r}: {target.relative_to(root)} does not exist")
        elif fragment and target.suffix == ".html" and fragment not in _parse(target).ids:
            problems.append(f"broken link {href!r}: {target.relative_to(root)} has no id {fragment!r}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Local server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a browser closing a connection early is not a problem of the site


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port; yields its origin URL (ending with ``/``)."""
    server = _QuietServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ---------------------------------------------------------------------------------------------------------------
# The browser

# Runs in the page: make every content image load now (no lazy loading), wait for it, and measure it.
_IMAGES_JS = """async () => {
    const root = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    const images = [...root.querySelectorAll('img')];
    await Promise.all(images.map((img) => { img.loading = 'eager'; return img.decode().catch(() => null); }));
    return images.map((img) => {
        const box = img.getBoundingClientRect();
        return {src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth,
                width: box.width, height: box.height};
    });
}"""

# Runs in the page: wait for MathJax's first typesetting, then count formulas and whether they were typeset.
_MATH_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
    const formulas = [...document.querySelectorAll('.math')];
    return {formulas: formulas.length,
            untypeset: formulas.filter((f) => !f.querySelector('mjx-container')).map((f) => f.textContent.slice(0, 80)),
            errors: [...document.querySelectorAll('mjx-merror')].map((e) => e.textContent.slice(0, 80))};
}"""


@dataclass
class PageReport:
    """What the browser saw on one page."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    formulas: int = 0
    untypeset_formulas: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)

    def broken_images(self) -> list[dict]:
        return [image for image in self.images
                if not (image["complete"] and image["naturalWidth"] > 0 and image["width"] > 0 and image["height"] > 0)]

    def problems(self) -> list[str]:
        problems = [f"console error: {message}" for message in self.console_errors]
        problems += [f"uncaught exception: {message}" for message in self.page_errors]
        problems += [f"request failed: {request}" for request in self.failed_requests]
        problems += [f"page requested an external resource (blocked; the book must render offline): {url}"
                     for url in self.external_requests]
        problems += [f"image not shown: {image['src']} (complete={image['complete']}, "
                     f"naturalWidth={image['naturalWidth']}, rendered {image['width']:.0f}x{image['height']:.0f})"
                     for image in self.broken_images()]
        problems += [f"formula not typeset by MathJax: {text!r}" for text in self.untypeset_formulas]
        problems += [f"MathJax error: {text!r}" for text in self.math_errors]
        return problems


class Browser:
    """Headless Chromium with a fresh, empty profile that may only reach ``origin``; use as a context manager.

    Requests to any other host are aborted and recorded, so the check never touches the network.
    """

    def __init__(self, origin: str, executable: Path = CHROMIUM, viewport: tuple[int, int] = (1280, 900)) -> None:
        self.origin = origin
        self.executable = executable
        self.viewport = viewport

    def __enter__(self) -> Browser:
        from playwright.sync_api import sync_playwright

        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                self._profile, executable_path=str(self.executable), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": self.viewport[0], "height": self.viewport[1]}, service_workers="block",
            )
        except Exception:
            self._playwright.stop()
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._context.close()
        self._playwright.stop()
        shutil.rmtree(self._profile, ignore_errors=True)

    def check(self, path: str, screenshot: Path | None = None) -> PageReport:
        """Open ``origin + path``, wait for it (and MathJax) to settle, inspect it, optionally save a screenshot."""
        report = PageReport(url=self.origin + path)
        page = self._context.new_page()

        def route(route) -> None:
            if route.request.url.startswith(self.origin):
                route.continue_()
            else:
                report.external_requests.append(route.request.url)
                route.abort("blockedbyclient")

        def on_console(message) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                report.console_errors.append(f"{message.text}" + (f" ({where})" if where else ""))

        def on_request_failed(request) -> None:
            if request.url.startswith(self.origin):
                report.failed_requests.append(f"{request.url}: {request.failure}")

        def on_response(response) -> None:
            if response.url.startswith(self.origin) and response.status >= 400:
                report.failed_requests.append(f"{response.url}: HTTP {response.status}")

        page.route("**/*", route)
        page.on("console", on_console)
        page.on("pageerror", lambda error: report.page_errors.append(str(error)))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        try:
            page.goto(report.url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
            math = page.evaluate(_MATH_JS)
            report.images = page.evaluate(_IMAGES_JS)
            page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)  # fonts, lazily loaded pieces
            report.formulas, report.untypeset_formulas, report.math_errors = (
                math["formulas"], math["untypeset"], math["errors"])
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True, timeout=PAGE_TIMEOUT_MS)
        finally:
            # Forget what the page stored (theme mode …), so that every page is checked as a reader's first visit.
            if page.url.startswith(self.origin):
                page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
            page.close()
        return report


def check_page(browser: Browser, html_root: Path, page: str, source: Path | None,
               screenshot: Path | None = None) -> tuple[PageReport, list[str]]:
    """Every check of one page (``page`` as in the toc, without suffix): the browser's report and all problems."""
    html_file = html_root / f"{page}.html"
    if not html_file.is_file():
        return PageReport(url=browser.origin + f"{page}.html"), [
            f"{html_file} was not built (is it in the toc, and did the build succeed?)"]
    report = browser.check(f"{page}.html", screenshot=screenshot)
    problems = report.problems()
    expected = stored_image_outputs(source)
    if len(report.images) < expected:
        problems.append(f"{len(report.images)} images on the page but {source.name} stores {expected} image "
                        "outputs: a figure did not render")
    problems += internal_link_problems(html_root, html_file)
    return report, problems
