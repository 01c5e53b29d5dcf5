"""The gating page of one flow tube: `<home>/reports/tubes/<sha256>.html`, one plot per gate of
the template in hierarchy order (FlowJo's layout, `gate_panels`), and the table of populations.

The events are read again from the raw store (the file's bytes as received, kept by hash) and
gated with the same engine, template and settings as at ingest, so the numbers on the page are
those of `flow_populations`. Drawing a tube takes seconds (the 19 gates of a T-cell tube about
4 s on two cores), so a page is written only when it is missing or stale: its key (file hash,
template content, flow settings, page layout) is kept in the page, and a page holding the
current key is left as it is. Several stale pages (a nightly backfill) are drawn by one process
per core (`PARALLEL_FROM`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import duckdb
import pandas as pd

from gating import FlowFormatError, FlowTemplateError, read_fcs
from gating.analysis import gate_dataset, population_rows
from gating.settings import FlowSettings
from gating.templates import load_template
from pipelines.home import LabHome, under_original_name
from pipelines.reports import html
from pipelines.reports.figures import LeftOut
from pipelines.reports.gate_panels import (
    MAX_EVENTS_DRAWN,
    draw_gate_plot,
    gate_plots,
    undrawable,
)
from pipelines.reports.parallel import on_every_core
from validation import names

TUBES_FOLDER = "tubes"
PAGE_LAYOUT = "1"
"""Changed whenever what the page shows changes, so pages written before are drawn again."""
KEY_MARK = "<!-- cartflow tube page key: {key} -->"
KEY_SEARCH_CHARS = 8192
"""The key is written just after the page's head (its style sheet), well within this."""
GRID = '<div style="display:flex;flex-wrap:wrap;gap:0 10px">'
PARALLEL_FROM = 3
"""Stale pages from which they are drawn on every core (`on_every_core`): a page costs about a
second of CPU, reading and gating the file again, then drawing ~20 plots."""


@dataclass(frozen=True)
class Tube:
    """One FCS file of a patient, as `flow_samples` and the ledger know it."""

    sha256: str
    original_name: str
    patient: str
    timepoint: str
    panels: dict[int, str]
    """Dataset number (1-based) -> panel it was gated with."""
    counts: dict[tuple[int, str], int]
    """(dataset, gate path) -> count, as `flow_populations` holds them."""


def tube_page_name(sha256: str) -> str:
    """The page's address relative to the reports folder (the patient page links to it)."""
    return f"{TUBES_FOLDER}/{sha256}.html"


def patient_tubes(con: duckdb.DuckDBPyConnection, patient: str) -> list[Tube]:
    """The patient's FCS files in timepoint order, each with the panel of each dataset."""
    rows = con.execute(
        "SELECT s.source_sha256, s.dataset, s.panel, s.timepoint, min(s.study_day) AS day, "
        "any_value(l.original_name) AS original_name FROM flow_samples s "
        "LEFT JOIN ingest_log l USING (source_sha256) WHERE s.patient_id = ? "
        "GROUP BY ALL ORDER BY day NULLS FIRST, original_name, s.dataset",
        [patient],
    ).fetchdf()
    counts = con.execute(
        "SELECT source_sha256, dataset, gate_path, count FROM flow_populations "
        "WHERE patient_id = ?",
        [patient],
    ).fetchdf()
    tubes: dict[str, Tube] = {}
    for row in rows.itertuples():
        name = row.original_name if isinstance(row.original_name, str) else row.source_sha256
        tube = tubes.setdefault(
            row.source_sha256, Tube(row.source_sha256, name, patient, row.timepoint, {}, {})
        )
        tube.panels[int(row.dataset)] = row.panel
    for row in counts.itertuples():
        if row.source_sha256 in tubes:
            tubes[row.source_sha256].counts[int(row.dataset), row.gate_path] = int(row.count)
    return list(tubes.values())


def tube_links(tubes: Sequence[Tube]) -> str:
    """One link per tube to its gating page, for the patient page."""
    if not tubes:
        return ""
    items = "".join(
        f'<li><a href="{tube_page_name(t.sha256)}">{escape(names.shown(t.original_name))}</a>'
        f" ({escape(t.timepoint)}, {escape(', '.join(sorted(set(t.panels.values()))))})</li>"
        for t in tubes
    )
    return f"<h3>Gating plots per flow tube</h3><ul>{items}</ul>"


def write_tube_pages(
    home: LabHome, tubes: list[Tube], settings: FlowSettings, left_out: LeftOut
) -> list[Path]:
    """The gating page of every tube whose page is missing or stale; the pages written, in the
    order of `tubes`. What could not be drawn is noted in `left_out`."""
    stale = [
        PageJob(home, tube, settings, key)
        for tube in tubes
        if KEY_MARK.format(key=(key := page_key(tube, settings)))
        not in page_start(home.reports / tube_page_name(tube.sha256))
    ]
    written = []
    for path, notes in on_every_core(draw_page, stale, PARALLEL_FROM):
        written.append(path)
        left_out.lines.extend(notes)
    return written


@dataclass(frozen=True)
class PageJob:
    """One stale tube page to draw, as handed to a drawing process."""

    home: LabHome
    tube: Tube
    settings: FlowSettings
    key: str


def draw_page(job: PageJob) -> tuple[Path, list[str]]:
    """Draw and write one tube's page; its path and the notes of what was left out."""
    left_out = LeftOut()
    path = job.home.reports / tube_page_name(job.tube.sha256)
    html.write_page(path, tube_page(job.home, job.tube, job.settings, job.key, left_out))
    return path, left_out.lines


def page_start(path: Path) -> str:
    """The head of a page written before, where its key is (empty if there is none)."""
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8", errors="replace") as page:
        return page.read(KEY_SEARCH_CHARS)


def page_key(tube: Tube, settings: FlowSettings) -> str:
    """What the page depends on: the file's bytes, the templates' bytes, the flow settings and
    the page's layout."""
    digest = hashlib.sha256(f"{tube.sha256}\n{PAGE_LAYOUT}\n{settings!r}\n".encode())
    for panel in sorted(set(tube.panels.values())):
        template = Path(settings.templates[panel]) if panel in settings.templates else None
        digest.update(template.read_bytes() if template and template.is_file() else b"-")
    return digest.hexdigest()[:32]


def tube_page(
    home: LabHome, tube: Tube, settings: FlowSettings, key: str, left_out: LeftOut
) -> str:
    """The page: per dataset, the grid of gate plots and the population table. A file that
    cannot be gated again gets a page saying why (and no key, so it is tried again)."""
    title = f"Gating of flow tube {names.shown(tube.original_name)}"
    back = f'<p><a href="../patient_{escape(tube.patient)}.html">Patient {escape(tube.patient)}</a></p>'
    raw = home.raw_copy(tube.sha256)
    if raw is None:
        why = "its bytes are missing from the raw store (run cartflow verify)"
        left_out.lines.append(f"{tube.original_name}: gating plots not drawn, {why}.")
        return html.page(title, [back, html.absent(f"Not drawn: {why}.")])
    try:
        with under_original_name(raw, tube.original_name) as named:
            sections = [dataset_section(dataset, tube, settings)
                        for dataset in read_fcs(named) if dataset.index + 1 in tube.panels]  # fmt: skip
    except (FlowFormatError, FlowTemplateError) as err:
        left_out.lines.append(f"{tube.original_name}: gating plots not drawn, {err}")
        return html.page(title, [back, html.absent(f"Not drawn: {err}")])
    intro = html.paragraph(
        f"Patient {tube.patient}, {tube.timepoint}; file SHA-256 {tube.sha256}. Each plot shows "
        f"the parent population's events on the gate's dimensions (at most "
        f"{MAX_EVENTS_DRAWN:,} of them, picked at random; counts and percentages are of all "
        "events), with the gate drawn in black, scales as the template transforms them."
    )
    return html.page(title, [KEY_MARK.format(key=key), back, intro, *sections])


def dataset_section(dataset: object, tube: Tube, settings: FlowSettings) -> str:
    """The grid of one dataset's gate plots, then its populations as `flow_populations` has
    them."""
    panel = tube.panels[dataset.index + 1]
    template = load_template(settings.templates[panel], tube.original_name)
    gating = gate_dataset(dataset, template, settings)
    populations = population_rows(gating, panel, settings)
    plots = [
        html.absent(f"{plot.title}: not drawn, {why}.")
        if (why := undrawable(template.strategy, plot.gate))
        else draw_gate_plot(gating, plot)
        for plot in gate_plots(gating, populations)
    ]
    heading = (
        f"Dataset {dataset.index + 1}: {panel} panel, template {template.path.name}, "
        f"{dataset.event_count:,} events"
    )
    changed = differing_counts(populations, tube, dataset.index + 1)
    table = html.table(
        ["population", "gate path", "parent", "count", "% of parent", "% of total"],
        population_table(populations),
    )
    return html.section(heading, changed, GRID, *plots, "</div>", "<h3>Populations</h3>", table)


def differing_counts(populations: pd.DataFrame, tube: Tube, dataset: int) -> str:
    """A warning when the gating drawn here does not give the counts `flow_populations` holds
    for the file (its template or the flow settings changed since it was ingested)."""
    drawn = {(dataset, r.gate_path): int(r.count) for r in populations.itertuples()}
    stored = {key: n for key, n in tube.counts.items() if key[0] == dataset}
    if drawn == stored:
        return ""
    return html.paragraph(
        "Warning: these counts differ from the ones in flow_populations for this file: its "
        "template or the flow settings changed after it was ingested. Ingest the file again "
        "(cartflow ingest) to bring the tables up to date."
    )


def population_table(populations: pd.DataFrame) -> list[list[object]]:
    return [
        [r.population, r.gate_path, r.parent, r.count, r.pct_parent, r.pct_total]
        for r in populations.itertuples()
    ]
