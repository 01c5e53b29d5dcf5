"""The exports and records of the demo's CRS cohort (`crs_cohort.py`), as the lab would have them.

- a sample manifest for the cohort's blood draws (accession `C001-D2`: patient and timepoint);
- LEGENDplex-style bead-array workbooks, `PATIENTS_PER_PLATE` patients per plate as a lab batches
  them, every sample in duplicate: baseline, the early days 0-3 and the follow-up D7, D14, D28;
- the clinical observation CSV the `crs_grades` table is derived from
  (`<home>/clinical/crs_observations.csv`, the `[derived] clinical_observations` default), one row
  per patient and day from infusion to day 14.

No flow or qPCR files: the cohort exists for the CRS forecast, which reads cytokines and grades.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np

from pipelines.demo.cba_files import legendplex_standards, plate_rows, write_legendplex_workbook
from pipelines.demo.crs_cohort import TIMEPOINTS, CohortPatient, CrsCohort

PATIENTS_PER_PLATE = 5
"""8 standards and 5 patients x 8 draws, all in duplicate: the 96 wells of a plate."""
MANIFEST_FILE = "sample_manifest_crs_cohort.csv"
OBSERVATION_COLUMNS = ("patient_id", "study_day", "temperature_c", "hypotension", "vasopressors",
                       "oxygen_support", "fever_masked")  # fmt: skip


def write_cohort_manifest(path: Path, cohort: CrsCohort) -> Path:
    """The accession list of every cohort blood draw."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["accession", "patient_id", "timepoint", "collection_date",
                         "infusion_date"])  # fmt: skip
        for patient in cohort.patients:
            for timepoint in TIMEPOINTS:
                writer.writerow([
                    patient.accession(timepoint), patient.patient_id, timepoint,
                    patient.collection_date(timepoint).isoformat(),
                    patient.infusion_date.isoformat(),
                ])  # fmt: skip
    return path


def plate_batches(cohort: CrsCohort) -> Iterator[list[CohortPatient]]:
    """The cohort's patients in plate-sized batches, in the order they were infused."""
    for start in range(0, len(cohort.patients), PATIENTS_PER_PLATE):
        yield cohort.patients[start : start + PATIENTS_PER_PLATE]


def write_cohort_plate(
    folder: Path, number: int, patients: list[CohortPatient], rng: np.random.Generator
) -> Path:
    """One LEGENDplex workbook with every draw of `patients`, run after their last day-28 draw."""
    samples = [
        (patient.accession(timepoint), _true_pg_ml(patient, timepoint))
        for patient in patients
        for timepoint in TIMEPOINTS
    ]
    rows = plate_rows(legendplex_standards, samples, rng)
    acquired = max(p.collection_date("D28") for p in patients) + timedelta(days=3)
    first, last = patients[0].patient_id, patients[-1].patient_id
    path = folder / f"{acquired.isoformat()}_crs-cohort_plate{number:03d}_{first}-{last}.xlsx"
    experiment = f"CARTFLOW-CRS-COHORT-PLATE{number:03d}"
    return write_legendplex_workbook(path, experiment, acquired.isoformat(), rows)


def _true_pg_ml(patient: CohortPatient, timepoint: str) -> Callable[[str], float]:
    return lambda analyte: patient.pg_ml(timepoint, analyte)


def write_observations(path: Path, cohort: CrsCohort) -> Path:
    """The clinical observation CSV (columns as `pipelines/derived/crs.py` reads them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(OBSERVATION_COLUMNS)
        for patient in cohort.patients:
            for day in patient.observations:
                writer.writerow([
                    patient.patient_id, day.study_day, f"{day.temperature_c:.1f}",
                    "yes" if day.hypotension else "no", day.vasopressors, day.oxygen_support,
                    "no",
                ])  # fmt: skip
    return path


def write_cohort_files(
    inbox: Path, observations: Path, cohort: CrsCohort, on_written: Callable[[Path], None]
) -> list[Path]:
    """Write the cohort's manifest and plates into `inbox` and its clinical observations to
    `observations`; returns the inbox files, manifest first."""
    files = [write_cohort_manifest(inbox / MANIFEST_FILE, cohort)]
    on_written(files[-1])
    for number, patients in enumerate(plate_batches(cohort), start=1):
        rng = np.random.default_rng([cohort.seed, number, PATIENTS_PER_PLATE])
        files.append(write_cohort_plate(inbox, number, patients, rng))
        on_written(files[-1])
    write_observations(observations, cohort)
    return files
