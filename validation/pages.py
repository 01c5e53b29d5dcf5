"""The shell of the validation pages (`docs.py`): one self-contained HTML file each, inline CSS,
no scripts, and a Content-Security-Policy that lets nothing be loaded, so a page opens offline and
makes no request. Text from files and results goes through `names.shown`, so a file name cannot
reorder the page (U+202E) nor hide in it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from validation import names

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 28px; }
.meta { color: #666; font-size: 12px; }
.absent { color: #777; font-style: italic; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-FAIL { color: #b00020; font-weight: bold; }
.status-PASS { color: #1b7a1b; }
code { font-size: 11px; }
"""


def page(title: str, body: Sequence[str]) -> str:
    """A whole page: its title as heading, which cartflow made it and when, then `body`."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{escape(names.shown(title))}</h1>",
        f'<p class="meta">cartflow {escape(_cartflow_version())}, generated {generated}</p>',
        *body, "</body>", "</html>",
    ])  # fmt: skip


def section(title: str, *content: str) -> str:
    return "\n".join([f"<section><h2>{escape(title)}</h2>", *content, "</section>"])


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def absent(what: str) -> str:
    return f'<p class="absent">{escape(what)}</p>'


def cell(value: str | int) -> str:
    """One table cell: a count right-aligned, text made safe to show."""
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{escape(names.shown(value))}</td>"


def write_page(path: Path, text: str) -> Path:
    """Write atomically: a browser or the lab's file share never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _cartflow_version() -> str:
    try:
        return version("cartflow")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+source"
