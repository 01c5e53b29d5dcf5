"""Bead-array exports for the demo trial, built from the trial's true cytokine concentrations.

Two plates, every sample in duplicate, all ten demo analytes on each:

- `cba_fcap_array_plate1.csv`: BD FCAP Array-style MFI table for P001 and P003; BD CBA standards,
  5000 pg/mL top, 1:2 dilutions to 19.5 pg/mL, plus a zero standard (NOTES.md, "Bead arrays").
- `cba_legendplex_plate2.xlsx`: LEGENDplex-style workbook for P002 and P004 (an MFI sheet with
  bead-ID headers, a Standards sheet); C7 top, 1:4 dilutions to C1, C0 = 0.

Concentrations come from `trial.cytokine_pg_ml`; each becomes an MFI through the analyte's known
5PL (`TRUE_CURVES`) with small multiplicative noise (CV `MFI_NOISE_CV`), so that back-calculated
concentrations land within 10 % of the truth inside the quantifiable range. The truth is kept
here, not written beside the exports: `true_concentrations()` and `TRUE_CURVES` are what the
tests compare against.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl

from pipelines.demo import trial

MFI_NOISE_CV = 0.02


@dataclass(frozen=True)
class TrueCurve:
    """MFI = d + (a - d) / (1 + (x / c) ** b) ** g, x in pg/mL."""

    a: float
    b: float
    c: float
    d: float
    g: float

    def mfi(self, pg_ml: np.ndarray | float) -> np.ndarray:
        x = np.asarray(pg_ml, dtype=float)
        return self.d + (self.a - self.d) / (1 + (x / self.c) ** self.b) ** self.g


TRUE_CURVES: dict[str, TrueCurve] = {
    "IL-6": TrueCurve(35.0, 1.05, 1800.0, 32000.0, 0.8),
    "IFN-γ": TrueCurve(42.0, 1.10, 2500.0, 28000.0, 1.0),
    "sgp130": TrueCurve(55.0, 0.95, 9000.0, 36000.0, 0.9),
    "MCP-1": TrueCurve(60.0, 1.00, 8000.0, 30000.0, 1.2),
    "IL-8": TrueCurve(38.0, 1.15, 2200.0, 34000.0, 0.7),
    "IL-10": TrueCurve(30.0, 1.00, 2000.0, 26000.0, 1.1),
    "TNF": TrueCurve(33.0, 1.20, 2400.0, 30000.0, 0.9),
    "sIL-2Rα": TrueCurve(50.0, 1.00, 9500.0, 33000.0, 1.0),
    "MIP-1α": TrueCurve(40.0, 1.05, 2100.0, 29000.0, 0.85),
    "GM-CSF": TrueCurve(28.0, 1.10, 2300.0, 27000.0, 1.05),
}
"""The 5PL each demo analyte's MFI is generated from (same curve on both plates)."""

ANALYTES = tuple(TRUE_CURVES)
LEGENDPLEX_BEAD_IDS = dict(
    zip(ANALYTES, ("A4", "A5", "A6", "A7", "A8", "B2", "B3", "B4", "B5", "B6"), strict=True)
)
LEGENDPLEX_TOP_PG_ML = {
    a: 50_000.0 if a in ("sgp130", "MCP-1", "sIL-2Rα") else 10_000.0 for a in ANALYTES
}
FCAP_TOP_PG_ML = 5000.0

FCAP_FILE = "cba_fcap_array_plate1.csv"
LEGENDPLEX_FILE = "cba_legendplex_plate2.xlsx"
FCAP_PATIENTS = ("P001", "P003")
LEGENDPLEX_PATIENTS = ("P002", "P004")


def fcap_standards() -> list[tuple[str, float]]:
    """(name, pg/mL): Standard 1 = 5000 down to Standard 9 = 19.5, then the zero standard."""
    levels = [(f"Standard {i + 1}", FCAP_TOP_PG_ML / 2**i) for i in range(9)]
    return levels + [("Standard 0", 0.0)]


def legendplex_standards(analyte: str) -> list[tuple[str, float]]:
    """(name, pg/mL): C7 = the top, 1:4 down to C1, and C0 = 0."""
    top = LEGENDPLEX_TOP_PG_ML[analyte]
    return [(f"C{level}", top / 4 ** (7 - level)) for level in range(7, 0, -1)] + [("C0", 0.0)]


def _samples(patients: tuple[str, ...]) -> list[trial.Sample]:
    return [s for s in trial.study_samples() if s.patient_id in patients]


def true_concentrations() -> dict[str, dict[str, float]]:
    """Accession -> analyte -> the true plasma concentration (pg/mL) behind every demo well."""
    return {
        s.accession: {a: trial.cytokine_pg_ml(s.patient_id, s.timepoint, a) for a in ANALYTES}
        for s in trial.study_samples()
    }


def _wells() -> list[str]:
    return [f"{row}{col}" for col in range(1, 13) for row in "ABCDEFGH"]


PlateRow = tuple[str, str, str, dict[str, float]]
"""(well, name, type, analyte -> MFI) of one well of a plate."""


def noisy_mfi(curve: TrueCurve, pg_ml: float, rng: np.random.Generator) -> float:
    """The MFI a well of this concentration reads, with the demo's multiplicative noise."""
    return round(float(curve.mfi(pg_ml)) * float(rng.lognormal(0.0, MFI_NOISE_CV)), 1)


def plate_rows(
    standards_of: Callable[[str], list[tuple[str, float]]],
    samples: list[tuple[str, Callable[[str], float]]],
    rng: np.random.Generator,
) -> list[PlateRow]:
    """Duplicate standards, then each sample (name, analyte -> true pg/mL) in duplicate."""
    wells = iter(_wells())
    rows = []
    for index in range(len(standards_of(ANALYTES[0]))):
        for _ in range(2):
            levels = {a: standards_of(a)[index] for a in ANALYTES}
            name = levels[ANALYTES[0]][0]
            mfi = {a: noisy_mfi(TRUE_CURVES[a], levels[a][1], rng) for a in ANALYTES}
            rows.append((next(wells), name, "Standard", mfi))
    for name, pg_ml in samples:
        for _ in range(2):
            mfi = {a: noisy_mfi(TRUE_CURVES[a], pg_ml(a), rng) for a in ANALYTES}
            rows.append((next(wells), name, "Sample", mfi))
    return rows


def _plate_rows(
    standards_of: Callable[[str], list[tuple[str, float]]],
    patients: tuple[str, ...],
    rng: np.random.Generator,
) -> list[PlateRow]:
    """The rows of a plate of the core demo patients' samples, named by accession."""
    truth = true_concentrations()
    samples = [(s.accession, truth[s.accession].__getitem__) for s in _samples(patients)]
    return plate_rows(standards_of, samples, rng)


def write_fcap_csv(path: Path, rng: np.random.Generator) -> Path:
    standards = dict(fcap_standards())
    rows = _plate_rows(lambda _analyte: fcap_standards(), FCAP_PATIENTS, rng)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["FCAP Array v3.0.1"])
        out.writerow(["Experiment Name", "CARTFLOW-CBA-PLATE1"])
        out.writerow(["Export Date", "2026-06-15"])
        out.writerow([])
        out.writerow(["Well", "Sample ID", "Sample Type", "Dilution", "Standard Conc. (pg/mL)"]
                     + [f"{a} MFI" for a in ANALYTES])  # fmt: skip
        for well, name, kind, mfi in rows:
            conc = standards[name] if kind == "Standard" else ""
            out.writerow([well, name, kind, 1, conc] + [mfi[a] for a in ANALYTES])
    return path


def write_legendplex_xlsx(path: Path, rng: np.random.Generator) -> Path:
    rows = _plate_rows(legendplex_standards, LEGENDPLEX_PATIENTS, rng)
    return write_legendplex_workbook(path, "CARTFLOW-LPX-PLATE2", "2026-06-16", rows)


def write_legendplex_workbook(
    path: Path, experiment: str, acquired: str, rows: list[PlateRow]
) -> Path:
    """A LEGENDplex-style workbook: an MFI sheet with bead-ID headers, a Standards sheet. The
    experiment name identifies the plate (a re-export with the same name supersedes it)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "MFI"
    sheet.append(["LEGENDplex Data Analysis Software"])
    sheet.append(["Experiment Name", experiment])
    sheet.append(["Acquisition Date", acquired])
    sheet.append([])
    headers = [f"{a} ({LEGENDPLEX_BEAD_IDS[a]})" for a in ANALYTES]
    sheet.append(["Well", "Sample ID", "Sample Type", "Dilution Factor", *headers])
    for well, name, kind, mfi in rows:
        sheet.append([well, name, kind, 1, *[mfi[a] for a in ANALYTES]])
    standards = book.create_sheet("Standards")
    standards.append(["Analyte", "Standard", "Concentration (pg/mL)"])
    for analyte, header in zip(ANALYTES, headers, strict=True):
        for level, pg_ml in legendplex_standards(analyte):
            standards.append([header, level, pg_ml])
    book.save(path)
    return path


def write_cba_files(folder: Path, seed: int = 7) -> list[Path]:
    """Write the demo's bead-array exports into `folder`; same seed, same bytes of MFI."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [
        write_fcap_csv(folder / FCAP_FILE, rng),
        write_legendplex_xlsx(folder / LEGENDPLEX_FILE, rng),
    ]
