"""The HTML reports in headless Chromium (tests/browser.py): no console errors, nothing fetched
from the network (the network is switched off), and every plot drawn (a screenshot that is not
blank)."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from pipelines.demo import trial
from pipelines.demo.cba_files import FCAP_FILE
from pipelines.demo.generate import write_demo_trial
from pipelines.derived.recompute import recompute_patients
from pipelines.home import LabHome
from pipelines.ingest import Processor
from tests.browser import inspect, png_is_blank
from tests.plates import qpcr_plate
from tests.reports.partial_exports import accession, one_sample_cba_plate

pytestmark = pytest.mark.slow

PATIENTS = ("P001", "P002")
"""P002 gets every assay; P001 only qPCR and cytokines, so its flow sections must say so."""


def _subset(files: list[Path]) -> list[Path]:
    """The manifest, P001/P002's qPCR plate, the bead-array plates and P002's FCS tubes."""
    accessions = {s.accession for s in trial.study_samples() if s.patient_id == "P002"}

    def wanted(path: Path) -> bool:
        if path.suffix.lower() == ".fcs":
            return path.name.split("_")[0] in accessions or path.name.startswith("P002_")
        return "plate3" not in path.name and "plate4" not in path.name

    return [p for p in files if wanted(p)]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    home = LabHome(tmp_path_factory.mktemp("report-lab")).ensure()
    demo = write_demo_trial(home.inbox)
    processor = Processor(home)
    for path in _subset(demo.files):
        assert processor.process(path).status == "ingested", path.name
    processor.export_ledger()
    outcome = recompute_patients(home, PATIENTS, processor.validator)
    assert outcome.failures == []
    return {p.stem: p for p in outcome.reports}


@pytest.fixture(scope="module")
def partial_reports(tmp_path_factory) -> dict[str, Path]:
    """Pages of partial data: P001 has one baseline T-cell tube and one day-4 cytokine sample,
    P009 (in no manifest) only a qPCR plate named by pattern, so no DNA input and no copies per ug."""
    exports = tmp_path_factory.mktemp("partial-exports")
    demo = write_demo_trial(exports / "inbox")
    home = LabHome(tmp_path_factory.mktemp("partial-lab")).ensure()
    tube = exports / "inbox" / f"{accession('P001', 'BL')}_TCELL.fcs"
    cytokines = one_sample_cba_plate(
        exports / "inbox" / FCAP_FILE, accession("P001", "D4"), exports / "one_sample.csv"
    )
    plate = qpcr_plate(exports / "pattern_plate.txt", "P009", "partial-1")
    processor = Processor(home)
    for path in (demo.files[0], tube, cytokines, plate):
        assert processor.process(path).status == "ingested", path.name
    processor.export_ledger()
    outcome = recompute_patients(home, ["P001", "P009"], processor.validator)
    assert outcome.failures == [] and len(outcome.notes) == 2
    return {p.stem: p for p in outcome.reports}


def test_blank_detection_works():
    white = zlib.compress(b"\x00" + b"\xff" * 30)
    chunk = len(white).to_bytes(4, "big") + b"IDAT" + white + b"\x00" * 4
    assert png_is_blank(b"\x89PNG\r\n\x1a\n" + chunk)


@pytest.mark.parametrize("page", ["patient_P002", "patient_P001", "cohort", "qc", "crs_model"])
def test_report_opens_offline_without_errors_and_draws_every_plot(browser, reports, page):
    check = inspect(browser, reports[page])
    assert check.errors == []
    assert all(url.startswith("file://") for url in check.requested), check.requested
    # the demo's two plates are too few runs for a Levey-Jennings chart: qc.html lists them;
    # it writes no clinical observations, so no patient is graded and no model is fitted
    assert check.plots >= (0 if page in ("qc", "crs_model") else 1) and check.undrawn == []
    assert not png_is_blank(check.screenshot)


@pytest.mark.parametrize("page", ["patient_P001", "patient_P009", "cohort"])
def test_pages_of_partial_data_draw_every_plot_they_show(browser, partial_reports, page):
    check = inspect(browser, partial_reports[page])
    assert check.errors == []
    assert check.undrawn == []
    assert not png_is_blank(check.screenshot)


def test_the_checks_catch_a_page_that_reaches_out(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="https://cdn.example.org/x.png">'
        '<svg class="plot" width="300" height="200"></svg>'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    check = inspect(browser, page)
    assert check.errors and check.undrawn
    assert any(url.startswith("https://") for url in check.requested)


def test_absent_data_is_said_not_broken(reports):
    p001 = reports["patient_P001"].read_text(encoding="utf-8")
    assert "No T-cell panel data yet." in p001
    assert "No B-cell panel data yet." in p001
    p002 = reports["patient_P002"].read_text(encoding="utf-8")
    assert "B-cell aplasia" in p002 and ">CRS rule alert</text>" in p002


PATIENT_FIGURES = (
    "P002: CAR transgene copies per ug gDNA", "P002: CAR+ % of CD3+ T cells",
    "P002: CAR+ T cells per uL blood", "P002: CD4:CD8 ratio of T cells",
    "P002: memory subsets of CAR+ T cells", "P002: plasma cytokines",
    "P002: CD19+ B cells per uL",
)  # fmt: skip


def test_every_patient_figure_is_drawn(browser, reports, tmp_path):
    """The screenshot (in `tmp_path`) is the one to judge by eye for labels and overlaps."""
    check = inspect(browser, reports["patient_P002"], screenshot=tmp_path / "patient_P002.png")
    assert check.errors == [] and check.undrawn == []
    markup = reports["patient_P002"].read_text(encoding="utf-8")
    labels = re.findall(r'<svg class="plot" role="img" aria-label="([^"]*)"', markup)
    assert [label for label in labels if "CRS grade" not in label] == list(PATIENT_FIGURES)
    assert check.plots == len(labels)
