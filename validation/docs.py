"""The lab's validation pages: cartflow's own Data Docs, built from Great Expectations' results.

GX's Data Docs load Bootstrap, jQuery, Vega and Font Awesome from CDNs and a logo from a cloud
bucket (its templates under `great_expectations/render/view/templates` hold the addresses, and its
wheel ships none of those files), so offline they were unstyled and without pass/fail icons, and
online they reached outside the machine. Its site builder also renders every stored result again
on each build. These pages instead use a shell of their own (`pages.py`: inline CSS, no
scripts, a Content-Security-Policy that lets nothing be loaded), so they open offline and make no
request. They read only the JSON form of GX's validation result (`to_json_dict()`), not
GX's templates or renderers, which change between patch releases.

Under `<home>/gx/docs/`:

- `runs/<time>-<name>-<id>.html`: one page per suite run, written when the run happens (a run
  never changes): the file(s) validated, the verdict, and per expectation its rule, column,
  pass or fail and what was observed (failed rows and examples, or the observed value);
- `runs/<same>.json`: the run's summary, what the index is built from;
- `index.html`: the latest month's runs, newest first, and a line per earlier month linking
  `months/<YYYY-MM>.html`, that month's runs; rebuilt by `build_index`.

A run is named after what it validated (`plate1.txt (qpcr_runs)`,
`plate1.txt and 11 more files (qpcr_runs)` for a sweep's batch), in GX's own store as here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from validation import names, pages

INDEX = "index.html"
RUNS = "runs"
MONTHS = "months"
PASSED = "✓\u00a0passed"
FAILED = "✗\u00a0failed"
"""The verdicts, icon and word kept on one line."""
ARGUMENTS_NAMING_WHAT = frozenset({"batch_id", "column", "column_list", "column_A", "column_B"})
"""Expectation arguments that say what is checked, not what it should be (shown as the column)."""


@dataclass(frozen=True)
class ExpectationLine:
    """One expectation's outcome in a run, as a technician reads it."""

    rule: str
    """The rule in the lab's words (the suite's `meta.rule`), else GX's expectation type."""
    expectation: str
    column: str
    expected: str
    """The expectation's own arguments (limits, allowed values, pattern), as `name = value`."""
    success: bool
    unexpected_count: int | None
    details: str
    """Failed rows with examples, the observed value, or what went wrong."""


@dataclass(frozen=True)
class RunSummary:
    """What the index shows of a run; kept beside its page as JSON."""

    run_name: str
    table_name: str
    files: list[str]
    validated_at: str
    """ISO 8601, UTC: sorts as text."""
    success: bool
    evaluated: int
    failed: int
    page: str
    """The run page, relative to the docs folder."""


def run_name(table_name: str, files: Sequence[str]) -> str:
    """The run's name, after the file it validated (or the first of a batch and how many more).

    GX makes the run name a folder of its results store, so the file name part is made safe and
    short the way a quarantined file's name is (`names.quarantine_name`: control characters
    escaped, no `/`, within a file name's 255 bytes together with the table's name), and the
    table's name is put in parentheses: a `:` would be refused by a lab home on an SMB share.
    """
    first = files[0] if files else "(no file)"
    label = first if len(files) <= 1 else f"{first} and {len(files) - 1} more files"
    suffix = f" ({table_name})"
    return names.quarantine_name(label, reserve=len(suffix.encode("utf-8"))) + suffix


def expectation_lines(result: Mapping[str, Any]) -> list[ExpectationLine]:
    """Each expectation of a validation result (GX's `to_json_dict()` form), in suite order."""
    lines = []
    for item in result.get("results", []):
        config = item.get("expectation_config") or {}
        outcome = item.get("result") or {}
        lines.append(
            ExpectationLine(
                rule=(config.get("meta") or {}).get("rule", config.get("type", "")),
                expectation=config.get("type", ""),
                column=_column_of(config.get("kwargs") or {}),
                expected=_expected(config.get("kwargs") or {}),
                success=bool(item.get("success")),
                unexpected_count=outcome.get("unexpected_count"),
                details=_details(outcome, item.get("exception_info") or {}),
            )
        )
    return lines


def write_run_page(
    docs: Path,
    table_name: str,
    files: Sequence[str],
    validated_at: datetime,
    result: Mapping[str, Any],
) -> RunSummary:
    """Write the run's page and its summary (the page first: the index never links a missing
    page). The name carries the time and a random part, so processes validating at once never
    write the same page."""
    name = run_name(table_name, files)
    lines = expectation_lines(result)
    stamp = validated_at.strftime("%Y%m%dT%H%M%S%fZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
    stem = f"{stamp}-{slug}-{uuid.uuid4().hex[:8]}"
    summary = RunSummary(
        run_name=name,
        table_name=table_name,
        files=list(files),
        validated_at=validated_at.isoformat(),
        success=bool(result.get("success")),
        evaluated=len(lines),
        failed=sum(not line.success for line in lines),
        page=f"{RUNS}/{stem}.html",
    )
    version = (result.get("meta") or {}).get("great_expectations_version", "")
    pages.write_page(docs / summary.page, _run_page(summary, lines, version))
    pages.write_page(docs / RUNS / f"{stem}.json", json.dumps(asdict(summary)))
    return summary


def build_index(docs: Path) -> Path:
    """The index: the latest month's runs newest first, and a page per earlier month (`months/`), so
    the index stays a page a browser opens at once after years of nightly sweeps."""
    summaries = [
        RunSummary(**json.loads(path.read_text(encoding="utf-8")))
        for path in (docs / RUNS).glob("*.json")
    ]
    summaries.sort(key=lambda s: s.validated_at, reverse=True)
    by_month: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        by_month.setdefault(summary.validated_at[:7], []).append(summary)
    months = list(by_month)  # newest first, as the summaries
    for month in months[1:]:
        body = [
            f'<p><a href="../{INDEX}">All validation runs</a></p>',
            _runs_table(by_month[month], "../"),
        ]
        pages.write_page(
            docs / MONTHS / f"{month}.html", pages.page(f"Validation runs of {month}", body)
        )
    failed = sum(not s.success for s in summaries)
    body = [
        pages.paragraph(
            f"{len(summaries)} validation run(s) by Great Expectations, {failed} failed. "
            "A run checks one table of one file (or of a sweep's batch of files) against the "
            "table's suite; a failed file is quarantined with the rules it broke."
        ),
    ]
    if not months:
        body.append(pages.absent("No file has been validated yet."))
    else:
        body.append(pages.section(f"Runs of {months[0]}", _runs_table(by_month[months[0]], "")))
    if len(months) > 1:
        body.append(pages.section("Earlier months", _months_list(by_month, months[1:])))
    return pages.write_page(docs / INDEX, pages.page("Validation runs", body))


def _runs_table(summaries: list[RunSummary], to_docs: str) -> str:
    """Runs with links to their pages; `to_docs` leads from the page holding it to the docs."""
    return _table(
        ["Validated (UTC)", "Run", "Table", "Result", "Expectations failed"],
        [
            [
                pages.cell(_shown_time(s.validated_at)),
                f'<td><a href="{escape(to_docs + s.page)}">{escape(names.shown(s.run_name))}</a></td>',
                pages.cell(s.table_name),
                _verdict_cell(s.success),
                pages.cell(f"{s.failed} of {s.evaluated}"),
            ]
            for s in summaries
        ],
    )


def _months_list(by_month: Mapping[str, list[RunSummary]], months: Sequence[str]) -> str:
    return _table(
        ["Month", "Runs", "Failed"],
        [
            [
                f'<td><a href="{MONTHS}/{month}.html">{month}</a></td>',
                pages.cell(len(by_month[month])),
                pages.cell(sum(not s.success for s in by_month[month])),
            ]
            for month in months
        ],
    )


def _run_page(summary: RunSummary, lines: list[ExpectationLine], gx_version: str) -> str:
    verdict = PASSED if summary.success else FAILED
    css = "status-PASS" if summary.success else "status-FAIL"
    facts = [
        ("Expectations not met", f"{summary.failed} of {summary.evaluated}"),
        ("Table (suite)", summary.table_name),
        ("Validated (UTC)", _shown_time(summary.validated_at)),
        ("Files", "\n".join(summary.files)),
        ("Great Expectations", gx_version),
    ]
    ordered = sorted(lines, key=lambda line: line.success)  # failures first, else suite order
    body = [
        f'<p><a href="../{INDEX}">All validation runs</a></p>',
        f'<p class="{css}">{escape(verdict)}</p>',
        _table([], [[f"<th>{escape(k)}</th>", _multiline_cell(v)] for k, v in facts]),
        pages.section(
            "Expectations",
            _table(
                ["Result", "Rule", "Expectation", "Column", "Expected", "Observed"],
                [
                    [
                        _verdict_cell(line.success),
                        pages.cell(line.rule),
                        f"<td><code>{escape(line.expectation)}</code></td>",
                        pages.cell(line.column.replace(",", ", ")),  # a column list wraps
                        pages.cell(line.expected),
                        pages.cell(line.details),
                    ]
                    for line in ordered
                ],
            ),
        ),
    ]
    return pages.page(summary.run_name, body)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of cells already rendered (`pages.cell` or markup of their own); no header row
    when `headers` is empty."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if headers else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _verdict_cell(success: bool) -> str:
    return (
        f'<td class="status-PASS">{PASSED}</td>'
        if success
        else (f'<td class="status-FAIL">{FAILED}</td>')
    )


def _multiline_cell(text: str) -> str:
    return "<td>" + "<br>".join(escape(names.shown(part)) for part in text.split("\n")) + "</td>"


def _shown_time(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _column_of(kwargs: Mapping[str, Any]) -> str:
    for key in ("column", "column_list"):
        if key in kwargs:
            value = kwargs[key]
            return ",".join(value) if isinstance(value, list) else str(value)
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return ""


def _expected(kwargs: Mapping[str, Any]) -> str:
    """The arguments that say what was expected: all but the batch and the column(s)."""
    shown = [
        f"{key} = {_short(value)}"
        for key, value in kwargs.items()
        if key not in ARGUMENTS_NAMING_WHAT and value is not None
    ]
    return "; ".join(shown)


def _details(result: Mapping[str, Any], exception: Mapping[str, Any]) -> str:
    if exception.get("raised_exception"):
        return f"could not be checked: {_short(exception.get('exception_message') or '')}"
    if result.get("unexpected_count"):
        examples = result.get("partial_unexpected_list") or []
        shown = ", ".join(_short(v) for v in examples[:3])
        return f"{result['unexpected_count']} row(s) failed, e.g. {shown}"
    if "observed_value" in result and result["observed_value"] is not None:
        return f"observed {_short(result['observed_value'])}"
    if "details" in result and result["details"]:
        return _short(result["details"])
    return "ok"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, float):
        text = f"{value:.4g}"
    return text if len(text) <= 200 else text[:197] + "..."
