"""Sphinx extension: stop Sphinx 7 from writing inline scripts twice.

Sphinx before 8.2.2 writes an inline ``<script>`` that an extension adds after the builder has started
(``app.add_js_file(None, body=...)``) twice into every page (sphinx-doc/sphinx#13402). sphinx-thebe's
``const THEBE_JS_URL = ...`` then raises "Identifier has already been declared" in the reader's browser.
Passing ``""`` instead of ``None`` as the file name makes Sphinx's de-duplication see the two as one.
"""

from __future__ import annotations

from typing import Any


def _deduplicate_inline_scripts(app: Any) -> None:
    add_js_file = getattr(app.builder, "add_js_file", None)
    if add_js_file is not None:
        app.builder.add_js_file = lambda filename, **kwargs: add_js_file(filename or "", **kwargs)


def setup(app: Any) -> dict[str, bool]:
    app.connect("builder-inited", _deduplicate_inline_scripts, priority=0)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
