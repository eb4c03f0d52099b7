"""What the UI ships, checked without a browser: under 300 KB of JavaScript and CSS in all, each
vendored library beside its licence, and no inline script in any template (the CSP allows none;
a data block, <script type="application/json">, is not executed)."""

from __future__ import annotations

import re
from pathlib import Path

import modelworks.ui

UI = Path(modelworks.ui.__file__).parent
BUDGET = 300 * 1024


def test_javascript_and_css_stay_under_300_kb():
    files = [p for p in (UI / "static").rglob("*") if p.suffix in (".js", ".css")]
    total = sum(p.stat().st_size for p in files)
    assert {p.name for p in files} >= {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "ui.js", "ui.css"}
    assert total < BUDGET, f"{total} bytes of JS and CSS: {sorted((p.stat().st_size, p.name) for p in files)}"


def test_vendored_libraries_carry_their_licences():
    vendor = UI / "static" / "vendor"
    assert "Zero-Clause BSD" in (vendor / "htmx.LICENSE").read_text()
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text()
    assert "htmx.org 2." in (vendor / "VERSIONS.txt").read_text()


def test_no_template_has_an_inline_script_or_handler():
    for path in (UI / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{path.name}: inline script {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: an inline event handler"
        assert "style=" not in text, f"{path.name}: an inline style (the CSP allows none)"
