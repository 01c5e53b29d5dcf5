"""The page shell and table markup shared by every report: one self-contained HTML file with
inline CSS and inline SVG (`svg.py`, `plots.py`), nothing fetched from the network (no CDN, no web fonts, no scripts)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import __version__
from validation import names

NOTICE = "Research use; not a clinical decision."

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 28px; }
h3 { font-size: 14px; margin-bottom: 4px; }
.meta { color: #666; font-size: 12px; }
.notice { background: #fff4ce; border: 1px solid #e0c060; padding: 6px 10px; font-size: 13px; }
.absent { color: #777; font-style: italic; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-reject, .status-FAIL, .alert { color: #b00020; font-weight: bold; }
.status-warning, .status-FLAG { color: #a06000; }
.status-in_control, .status-PASS { color: #1b7a1b; }
code { font-size: 11px; }
svg.plot { display: block; margin: 6px 0 14px; font-family: inherit; font-size: 12px; }
"""


def page(title: str, body: Sequence[str]) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # nothing may be loaded from elsewhere: the page must work offline; the only images are
        # the rasterized event clouds matplotlib embeds in its SVG as data: addresses
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">cartflow {escape(__version__)}, generated {generated}</p>',
        f'<p class="notice">{escape(NOTICE)}</p>',
        *body, "</body>", "</html>",
    ])  # fmt: skip


def section(title: str, *content: str) -> str:
    return "\n".join([f"<section><h2>{escape(title)}</h2>", *content, "</section>"])


def absent(what: str) -> str:
    return f'<p class="absent">{escape(what)}</p>'


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def cell(value: object) -> str:
    """One table cell; missing values (None, NaN, NA, NaT) are left empty. Text goes through
    `names.shown`: a file name or reason cannot reorder the page (U+202E) nor hide in it."""
    if value is None or (not isinstance(value, str | bytes) and pd.isna(value)):
        return "<td></td>"
    if isinstance(value, bool | np.bool_):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, pd.Timestamp | datetime):
        shown = value.date() if (value.hour, value.minute, value.second) == (0, 0, 0) else value
        return f"<td>{escape(str(shown))}</td>"
    if isinstance(value, int | float | np.integer | np.floating):
        return f'<td class="num">{number(float(value))}</td>'
    text = names.shown(str(value))
    css = f' class="status-{escape(text)}"' if text.isidentifier() else ""
    return f"<td{css}>{escape(text)}</td>"


def number(value: float) -> str:
    """Whole numbers as such, large ones with thousands separators, others to 4 digits."""
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_page(path: Path, html: str) -> Path:
    """Write atomically: a browser or the lab's file share never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, path)
    return path
