"""Partial data end to end: real exports through `cartflow ingest` / `cartflow run` (the engine,
the flows under Prefect's test harness, the derived tables and the reports), into fresh lab homes
without the demo's `cartflow.toml`. Partial data is the normal state of a running trial; each lab
gets the pages its data supports, and a chart with nothing to draw is a one-line note on the page
and in the run's notes, never an exception.

The exports are the demo trial's, written once into a folder that is no lab home (so its
`cartflow.toml` stays out of every lab); the one-timepoint cytokine plate is cut from the demo's
FCAP Array export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import EXIT_OK, EXIT_QUARANTINED, app
from pipelines.demo import trial
from pipelines.demo.cba_files import FCAP_FILE
from pipelines.demo.generate import FAILING_PLATE, write_demo_trial
from pipelines.home import LabHome
from pipelines.ledger import Ledger
from pipelines.settings import SETTINGS_FILE
from pipelines.warehouse import connect
from tests.reports.figure_marks import line_y, marks, panel, plot
from tests.reports.partial_exports import accession, one_sample_cba_plate

pytestmark = [pytest.mark.flow, pytest.mark.slow]

MANIFEST = "sample_manifest_2026-06.csv"
PLATE1 = "2026-04-14_CAR-qPCR_plate1_P001-P002.txt"
NOT_UPDATED = "derived tables and reports not updated"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """The demo's exports, in a folder of their own."""
    inbox = tmp_path_factory.mktemp("demo-exports") / "inbox"
    write_demo_trial(inbox, seed=7)
    return inbox


def _lab(tmp_path: Path) -> LabHome:
    home = LabHome(tmp_path / "lab").ensure()
    assert not (home.root / SETTINGS_FILE).exists()
    return home


def _cli(home: LabHome, *args: str):
    return CliRunner().invoke(app, [*args, "--home", str(home.root)])


def _page(home: LabHome, patient: str) -> str:
    return (home.reports / f"patient_{patient}.html").read_text(encoding="utf-8")


def _one_line(output: str) -> str:
    return " ".join(output.split())


def _settled(result, home: LabHome) -> None:
    """The run ended without a traceback, and its derived tables and reports were written."""
    assert "Traceback" not in result.output
    assert NOT_UPDATED not in _one_line(result.output)
    assert Ledger(home.ledger_path).pending_derive() == []
    assert (home.reports / "cohort.html").is_file() and (home.reports / "qc.html").is_file()


def test_manifest_and_one_baseline_t_cell_tube(harness, exports, tmp_path):
    """Flow before any qPCR: the issue's crash after the commit."""
    home = _lab(tmp_path)
    tube = exports / f"{accession('P001', 'BL')}_TCELL.fcs"
    result = _cli(home, "ingest", str(exports / MANIFEST), str(tube))
    assert result.exit_code == EXIT_OK, result.output
    _settled(result, home)
    page = _page(home, "P001")
    note = (
        "P001: memory subsets of CAR+ T cells: not drawn, no CAR+ T cells to divide into subsets "
        "in any blood tube yet."
    )
    assert plot(page, "P001: memory subsets of CAR+ T cells") is None
    assert f'<p class="absent">{note}</p>' in page
    assert f"report: {note}" in _one_line(result.output)
    assert len(marks(plot(page, "P001: CAR+ % of CD3+ T cells"), "car-of-cd3")) == 1  # BL, 0 %
    assert plot(page, "P001: CD4:CD8 ratio of T cells") is not None
    for said in ("No CAR qPCR results yet.", "No cytokine data yet.", "No B-cell panel data yet.",
                 "No kinetics yet: no CAR qPCR sample"):  # fmt: skip
        assert said in page


def test_only_qpcr(harness, exports, tmp_path):
    home = _lab(tmp_path)
    result = _cli(home, "ingest", str(exports / MANIFEST), str(exports / PLATE1))
    assert result.exit_code == EXIT_OK, result.output
    _settled(result, home)
    copies = connect(home.warehouse).execute(
        "SELECT patient_id, study_day FROM car_copies WHERE target = 'CAR' AND NOT below_loq "
        "ORDER BY patient_id, study_day"
    ).fetchall()  # fmt: skip
    for patient in ("P001", "P002"):
        page = _page(home, patient)
        chart = plot(page, f"{patient}: CAR transgene copies per ug gDNA")
        filled = marks(chart, "quantified")
        assert len(filled) == len([d for p, d in copies if p == patient])
        assert len(filled) == len(trial.TIMEPOINTS) - 1  # every draw after infusion
        # the baseline: not detected, on the LOQ line, left of every draw after infusion
        [(baseline_x, baseline_y)] = marks(chart, "not-detected")
        assert baseline_y == pytest.approx(line_y(chart, "loq"), abs=0.01)
        assert baseline_x < filled[0][0]
        assert "Cmax (copies/ug)" in page
        for said in ("No T-cell panel data yet.", "No cytokine data yet.",
                     "No B-cell panel data yet."):  # fmt: skip
            assert said in page


def test_one_timepoint_of_cytokines(harness, exports, tmp_path):
    home = _lab(tmp_path)
    plate = one_sample_cba_plate(
        exports / FCAP_FILE, accession("P001", "D4"), tmp_path / "cba_fcap_array_one_sample.csv"
    )
    result = _cli(home, "ingest", str(exports / MANIFEST), str(plate))
    assert result.exit_code == EXIT_OK, result.output
    _settled(result, home)
    page = _page(home, "P001")
    chart = plot(page, "P001: plasma cytokines")
    # one panel per analyte, each with the one D4 value (measured or censored at its limit)
    for analyte_id in ("il-6", "ifn", "sgp130", "mcp-1"):
        assert len(marks(panel(chart, analyte_id), None)) == 1
    assert "no baseline (BL or SCREEN) cytokine sample for this patient yet" in page
    assert "No CAR qPCR results yet." in page and "No T-cell panel data yet." in page


def test_the_demo_swept_into_a_new_site_without_its_settings(harness, exports, tmp_path):
    """What the nightly run does at a new site: every demo export into the inbox of a lab home
    that has no `cartflow.toml`. Exit status 3 says a file was quarantined: plate 3, which the
    demo makes fail the efficiency rule, and no other. Plate 4 names its samples by pattern; they
    take the DNA input of the manifest's entry for the same patient and timepoint, so every
    patient's copies chart is drawn without the demo's `default_dna_input_ng`."""
    home = _lab(tmp_path)
    for path in exports.iterdir():
        shutil.copy2(path, home.inbox / path.name)
    result = _cli(home, "run")
    assert result.exit_code == EXIT_QUARANTINED, result.output
    quarantined = {p.name for p in home.quarantine.iterdir() if not p.name.endswith(".reason.txt")}
    assert quarantined <= {FAILING_PLATE} and (home.quarantine / FAILING_PLATE).exists()
    _settled(result, home)
    for patient in trial.PATIENTS:
        page = _page(home, patient)
        title = f"{patient}: CAR transgene copies per ug gDNA"
        assert plot(page, title) is not None, f"{title}: not drawn"
        assert plot(page, f"{patient}: plasma cytokines") is not None
        assert plot(page, f"{patient}: CD19+ B cells per uL") is not None
