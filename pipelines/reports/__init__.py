"""HTML reports written to `<home>/reports/`: one page per patient (`patient_<id>.html`), the
gating plots of each of the patient's flow tubes (`tubes/<sha256>.html`), the cohort overview
(`cohort.html`), the CRS forecast's model card (`crs_model.html`), the QC page (`qc.html`) and
one page per qPCR run (`qpcr/<run>.html`). Each page is a single self-contained file (inline CSS
and SVG) that opens offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.derived.crs import load_rules
from pipelines.derived.settings import DerivedSettings
from pipelines.home import LabHome
from pipelines.reports.cohort import cohort_page
from pipelines.reports.crs_model import MODEL_PAGE, crs_model_page
from pipelines.reports.figures import LeftOut
from pipelines.reports.html import write_page
from pipelines.reports.parallel import on_every_core, shared_out
from pipelines.reports.patient import patient_page
from pipelines.reports.qc import qc_page
from pipelines.reports.qpcr_run import write_run_pages
from pipelines.reports.tube import Tube, patient_tubes, write_tube_pages
from pipelines.settings import Settings
from pipelines.warehouse import connect


def patient_report_path(home: LabHome, patient: str) -> Path:
    return home.reports / f"patient_{patient}.html"


PATIENTS_PARALLEL_FROM = 4
"""Patients from whose pages on they are drawn on every core (`on_every_core`): a patient page
costs one to two seconds of CPU, most of it matplotlib drawing the cytokine panels."""


def write_patient_reports(
    home: LabHome, patients: list[str], con: duckdb.DuckDBPyConnection | None = None,
    left_out: LeftOut | None = None,
) -> list[Path]:  # fmt: skip
    """The patients' pages, in the order given, from `con` (a `connect` of the warehouse made
    after the last write) or a new connection: opening one costs ~0.15 s, so a recompute shares
    it between patients. Charts left out for want of data are noted in `left_out`. The gating
    pages of the patients' flow tubes that are missing or stale are written first, all
    together, so that a backfill's are drawn on every core (the patient pages link to them);
    many patients' pages are shared out between the cores too, each process with a connection
    of its own."""
    con = con or connect(home.warehouse)
    left_out = left_out or LeftOut()
    settings = Settings.load(home.root)
    tubes = {patient: patient_tubes(con, patient) for patient in patients}
    write_tube_pages(home, [t for p in patients for t in tubes[p]], settings.flow, left_out)
    if len(patients) < PATIENTS_PARALLEL_FROM:
        return _patient_pages(home, patients, tubes, left_out, con)
    shares = [PatientPages(home, share, tubes) for share in shared_out(patients)]
    drawn = on_every_core(_draw_share, shares, from_jobs=2)
    pages = {}
    for share, (paths, notes) in zip(shares, drawn, strict=True):
        pages.update(zip(share.patients, paths, strict=True))
        left_out.lines.extend(notes)
    return [pages[patient] for patient in patients]


@dataclass(frozen=True)
class PatientPages:
    """The pages of some patients, as handed to a drawing process."""

    home: LabHome
    patients: list[str]
    tubes: dict[str, list[Tube]]


def _draw_share(share: PatientPages) -> tuple[list[Path], list[str]]:
    left_out = LeftOut()
    return _patient_pages(share.home, share.patients, share.tubes, left_out), left_out.lines


def _patient_pages(
    home: LabHome, patients: list[str], tubes: dict[str, list[Tube]], left_out: LeftOut,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[Path]:  # fmt: skip
    con = con or connect(home.warehouse)
    settings, derived = Settings.load(home.root), DerivedSettings.load(home.root)
    rules = load_rules(derived.crs_rules_path(home.root))
    return [
        write_page(
            patient_report_path(home, patient),
            patient_page(con, patient, settings, derived, rules, left_out, tubes[patient]),
        )
        for patient in patients
    ]


def write_cohort_reports(
    home: LabHome, con: duckdb.DuckDBPyConnection | None = None, left_out: LeftOut | None = None
) -> list[Path]:
    """The cohort overview, the CRS forecast's model card, the QC page and the pages of qPCR
    runs that are new or changed (from `con` and into `left_out`, as `write_patient_reports`)."""
    con = con or connect(home.warehouse)
    left_out = left_out or LeftOut()
    settings = Settings.load(home.root)
    patients = sorted(p.stem.removeprefix("patient_") for p in home.reports.glob("patient_*.html"))
    car_targets = list(settings.qpcr.car_targets)
    return [
        write_page(home.reports / "cohort.html", cohort_page(con, patients, car_targets, left_out)),
        write_page(home.reports / MODEL_PAGE, crs_model_page(con, left_out)),
        write_page(home.reports / "qc.html", qc_page(con, DerivedSettings.load(home.root))),
        *write_run_pages(home, con, settings.qpcr, left_out),
    ]
