"""The gating page of each flow tube (pipelines/reports/tube.py): one drawn plot per gate of the
template, in hierarchy order, with the numbers `flow_populations` holds; linked from the patient
page; written again only when missing or stale."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest

from gating.templates import load_template
from pipelines.demo.generate import write_demo_trial
from pipelines.derived.recompute import recompute_patients
from pipelines.home import LabHome
from pipelines.ingest import Processor
from pipelines.reports.figures import LeftOut
from pipelines.reports.gate_panels import MAX_EVENTS_DRAWN, gates_in_hierarchy_order
from pipelines.reports.tube import (
    PARALLEL_FROM,
    patient_tubes,
    tube_page_name,
    write_tube_pages,
)
from pipelines.settings import Settings
from pipelines.warehouse import connect
from tests.browser import inspect, png_is_blank
from tests.reports.partial_exports import accession

pytestmark = pytest.mark.slow

TUBES = (("BL", "TCELL"), ("D14", "TCELL"), ("D14", "BCELL"))
"""P002's baseline T-cell tube has no CAR+ T cells (an empty gate, and empty parents under
it); at day 14 a third of its T cells are CAR+."""
PLOT = re.compile(r'<svg class="plot" role="img" aria-label="([^"]*)"')


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabHome:
    home = LabHome(tmp_path_factory.mktemp("tube-lab")).ensure()
    demo = write_demo_trial(home.inbox)
    processor = Processor(home)
    files = [demo.files[0]] + [
        home.inbox / f"{accession('P002', timepoint)}_{panel}.fcs" for timepoint, panel in TUBES
    ]
    for path in files:
        assert processor.process(path).status == "ingested", path.name
    processor.export_ledger()
    outcome = recompute_patients(home, ["P002"], processor.validator)
    assert outcome.failures == []
    return home


@pytest.fixture(scope="module")
def flow(lab):
    """flow_samples joined with the file names, one row per tube."""
    return (
        connect(lab.warehouse)
        .execute(
            "SELECT s.source_sha256, s.panel, s.template, s.timepoint, s.event_count, l.original_name "
            "FROM flow_samples s JOIN ingest_log l USING (source_sha256) ORDER BY l.original_name"
        )
        .fetchdf()
    )


def plot_labels(page: Path) -> list[str]:
    return [unescape(label) for label in PLOT.findall(page.read_text(encoding="utf-8"))]


def tube_page(lab: LabHome, sha256: str) -> Path:
    return lab.reports / tube_page_name(sha256)


def test_every_gate_of_the_template_has_a_plot_titled_parent_to_gate_in_hierarchy_order(lab, flow):
    settings = Settings.load(lab.root).flow
    assert len(flow) == len(TUBES)
    for tube in flow.itertuples():
        template = load_template(settings.templates[tube.panel], tube.original_name)
        gates = gates_in_hierarchy_order(template.strategy)
        labels = plot_labels(tube_page(lab, tube.source_sha256))
        titles = [label.split(":")[0] for label in labels]
        expected = [
            f"{'All events' if path == ('root',) else template.population_name(path[-1])} → "
            f"{template.population_name(name)}"
            for name, path in gates
        ]
        assert titles == expected
        # a gate is drawn before the gates under it
        assert titles.index("Singlets → Live") < titles.index("Live → CD3+ T cells")
    tcell_titles = [
        label.split(":")[0]
        for label in plot_labels(tube_page(lab, flow[flow.panel == "tcell"].source_sha256.iloc[0]))
    ]
    assert len(tcell_titles) == 19  # the gates of tcell_panel.xml, a quadrant gate once
    assert "CD3+ T cells → CD4 x CD8" in tcell_titles


def test_the_numbers_on_each_plot_are_those_of_flow_populations(lab, flow):
    populations = (
        connect(lab.warehouse)
        .execute("SELECT source_sha256, population, count, pct_parent FROM flow_populations")
        .fetchdf()
    )
    for tube in flow.itertuples():
        text = " ".join(plot_labels(tube_page(lab, tube.source_sha256)))
        rows = populations[populations.source_sha256 == tube.source_sha256]
        assert len(rows) >= 7
        for row in rows.itertuples():
            share = "—" if row.pct_parent != row.pct_parent else f"{row.pct_parent:.1f} %"
            assert f"{row.population} {row.count:,} events, {share} of parent" in text, row


def test_a_gate_with_no_events_gets_an_honest_plot(lab, flow):
    baseline = flow[(flow.timepoint == "BL") & (flow.panel == "tcell")].source_sha256.iloc[0]
    page = tube_page(lab, baseline).read_text(encoding="utf-8")
    labels = plot_labels(tube_page(lab, baseline))
    car = next(label for label in labels if label.startswith("CD3+ T cells → CAR+ T cells"))
    assert "CAR+ T cells 0 events, 0.0 % of parent" in car
    below = [label for label in labels if label.startswith("CAR+ T cells → ")]
    assert len(below) == 6 and all("0 events, — of parent" in label for label in below)
    assert page.count("no events in CAR+ T cells") == 6
    assert "0 of 0 parent events drawn" in page


def test_tube_pages_open_offline_and_draw_every_plot(browser, lab, flow, tmp_path):
    for tube in flow.itertuples():
        page = tube_page(lab, tube.source_sha256)
        screenshot = tmp_path / f"{tube.timepoint}_{tube.panel}.png"
        check = inspect(browser, page, screenshot=screenshot)
        assert check.errors == []
        assert all(url.startswith(("file://", "data:")) for url in check.requested)
        assert check.plots == len(plot_labels(page)) and check.undrawn == []
        assert not png_is_blank(screenshot.read_bytes())


def test_the_patient_page_links_every_tube_page(lab, flow):
    patient_page = lab.reports / "patient_P002.html"
    links = re.findall(r'href="(tubes/[^"]+)"', patient_page.read_text(encoding="utf-8"))
    assert sorted(links) == sorted(tube_page_name(sha) for sha in flow.source_sha256)
    for link in links:
        page = (patient_page.parent / link).resolve()
        assert page.is_file()
        assert 'href="../patient_P002.html"' in page.read_text(encoding="utf-8")


def test_the_page_says_how_many_events_are_drawn(lab, flow):
    for tube in flow.itertuples():
        page = tube_page(lab, tube.source_sha256).read_text(encoding="utf-8")
        assert f"at most {MAX_EVENTS_DRAWN:,} of them" in page
        assert tube.event_count > MAX_EVENTS_DRAWN
        assert f"{MAX_EVENTS_DRAWN:,} of {tube.event_count:,} parent events drawn" in page


def test_a_page_is_written_again_only_when_missing_or_stale(lab, flow):
    con = connect(lab.warehouse)
    tubes = patient_tubes(con, "P002")
    settings = Settings.load(lab.root).flow
    assert write_tube_pages(lab, tubes, settings, LeftOut()) == []  # each page holds its key
    missing = tube_page(lab, tubes[0].sha256)
    missing.unlink()
    assert write_tube_pages(lab, tubes, settings, LeftOut()) == [missing]
    other_settings = replace(settings, beads_per_test=12_345.0)
    assert len(write_tube_pages(lab, tubes, other_settings, LeftOut())) == len(tubes)
    assert len(write_tube_pages(lab, tubes, settings, LeftOut())) == len(tubes)  # the lab's


def test_a_page_drawn_with_another_template_than_at_ingest_says_its_counts_differ(lab, tmp_path):
    settings = Settings.load(lab.root).flow
    tubes = [
        t for t in patient_tubes(connect(lab.warehouse), "P002") if "tcell" in t.panels.values()
    ]
    original = Path(settings.templates["tcell"])
    moved = tmp_path / original.name
    moved.write_text(
        original.read_text(encoding="utf-8").replace('gating:min="0.45"><data-type:fcs-dimension '
                                                     'data-type:name="CD3"', 'gating:min="0.7">'
                                                     '<data-type:fcs-dimension data-type:name="CD3"'),
        encoding="utf-8",
    )  # fmt: skip
    assert moved.read_text(encoding="utf-8") != original.read_text(encoding="utf-8")
    changed = replace(settings, templates={**settings.templates, "tcell": moved})
    pages = write_tube_pages(lab, tubes, changed, LeftOut())
    assert len(pages) == len(tubes) == 2
    for page in pages:
        assert "these counts differ from the ones in flow_populations" in page.read_text(
            encoding="utf-8"
        )
    for page in write_tube_pages(lab, tubes, settings, LeftOut()):
        assert "counts differ" not in page.read_text(encoding="utf-8")


def test_a_tube_whose_bytes_are_gone_gets_a_page_saying_so(lab, flow, tmp_path):
    home = LabHome(tmp_path / "copy").ensure()
    tubes = patient_tubes(connect(lab.warehouse), "P002")[:1]
    left_out = LeftOut()
    [page] = write_tube_pages(home, tubes, Settings.load(lab.root).flow, left_out)
    assert "bytes are missing from the raw store" in page.read_text(encoding="utf-8")
    assert left_out.lines == [
        f"{tubes[0].original_name}: gating plots not drawn, its bytes are missing from the raw "
        "store (run cartflow verify)."
    ]


def test_pages_drawn_on_every_core_come_back_in_order_with_their_notes(lab, flow, tmp_path):
    """Three stale pages are drawn by processes of their own (PARALLEL_FROM): each page is
    returned in the tubes' order and what each left out reaches the run's notes."""
    home = LabHome(tmp_path / "copy").ensure()
    tubes = patient_tubes(connect(lab.warehouse), "P002")
    assert len(tubes) >= PARALLEL_FROM
    left_out = LeftOut()
    pages = write_tube_pages(home, tubes, Settings.load(lab.root).flow, left_out)
    assert pages == [tube_page(home, tube.sha256) for tube in tubes]
    assert left_out.lines == [
        f"{tube.original_name}: gating plots not drawn, its bytes are missing from the raw "
        "store (run cartflow verify)."
        for tube in tubes
    ]
