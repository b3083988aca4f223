"""Sphinx fixes for a book that is read from disk, offline (loaded by ``_config.yml``).

The offline assets themselves are configured in ``_config.yml`` (MathJax from the
``sphinx-mathjax-offline`` package, ipywidgets' ``embed.js`` from ``book/_static/ipywidgets``);
``tools/browser_check.py`` checks the result in a real browser with the network off.

This extension removes duplicated inline scripts from every page. Extensions that add an inline
script after the HTML builder is initialised (sphinx-thebe's ``const THEBE_JS_URL = ...``,
sphinx-togglebutton's selector) reach the page twice under Sphinx 7.4, once with the file name
``None`` and once with ``''``; the second ``const`` declaration is a ``SyntaxError`` in the
console of every page.
"""
from __future__ import annotations

from typing import Any


def dedupe_inline_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of several identical inline ``<script>`` bodies in ``context['script_files']``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    kept = []
    for js in scripts:
        attrs = getattr(js, "attributes", {})
        if not getattr(js, "filename", None) and "body" in attrs:
            key = (getattr(js, "priority", None), tuple(sorted(attrs.items())))
            if key in seen:
                continue
            seen.add(key)
        kept.append(js)
    scripts[:] = kept  # in place: the builder restores its own list after each page


def setup(app: Any) -> dict:
    app.connect("html-page-context", dedupe_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
