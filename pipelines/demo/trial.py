"""The demo trial: four patients followed from baseline to month 3, with the true values every
generated export is built from.

The shapes follow the CD19 CAR-T literature: CAR transgene copies peak around day 10-14 and then
decline; one patient (P003) loses persistence and their B cells come back; one patient (P002)
expands most and develops severe CRS, with IL-6, IFN-gamma, sgp130 and MCP-1 rising more than
75-fold over baseline in the first days. Tests assert that the pipeline recovers these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from validation.timepoints import NOMINAL_STUDY_DAY, PRODUCT

PATIENTS: tuple[str, ...] = ("P001", "P002", "P003", "P004")
TIMEPOINTS: tuple[str, ...] = ("BL", "D1", "D4", "D7", "D10", "D14", "D21", "D28", "M2", "M3")
STUDY_DAY: dict[str, int] = {t: NOMINAL_STUDY_DAY[t] for t in TIMEPOINTS}
"""Each draw on its visit's nominal day."""

INFUSION_DATE: dict[str, date] = {
    "P001": date(2026, 3, 2),
    "P002": date(2026, 3, 9),
    "P003": date(2026, 3, 16),
    "P004": date(2026, 3, 23),
}
SEVERE_CRS_PATIENT = "P002"
LOSES_PERSISTENCE_PATIENT = "P003"

# CAR transgene copies per ug genomic DNA. BL is before infusion: no CAR.
CAR_COPIES_PER_UG: dict[str, dict[str, float]] = {
    "P001": {"BL": 0.0, "D1": 150.0, "D4": 2_500.0, "D7": 21_000.0, "D10": 48_000.0,
             "D14": 36_000.0, "D21": 14_000.0, "D28": 7_500.0, "M2": 2_200.0, "M3": 1_100.0},
    "P002": {"BL": 0.0, "D1": 400.0, "D4": 9_000.0, "D7": 95_000.0, "D10": 210_000.0,
             "D14": 150_000.0, "D21": 60_000.0, "D28": 30_000.0, "M2": 8_000.0, "M3": 4_500.0},
    "P003": {"BL": 0.0, "D1": 90.0, "D4": 800.0, "D7": 6_000.0, "D10": 9_500.0,
             "D14": 11_000.0, "D21": 2_600.0, "D28": 600.0, "M2": 0.0, "M3": 0.0},
    "P004": {"BL": 0.0, "D1": 120.0, "D4": 1_800.0, "D7": 12_000.0, "D10": 26_000.0,
             "D14": 31_000.0, "D21": 11_000.0, "D28": 5_200.0, "M2": 1_600.0, "M3": 900.0},
}  # fmt: skip

# CAR+ cells as % of CD3+ T cells in blood (flow), and the infused product.
CAR_PCT_OF_CD3: dict[str, dict[str, float]] = {
    "P001": {"BL": 0.0, "D1": 0.4, "D4": 3.0, "D7": 14.0, "D10": 28.0, "D14": 22.0,
             "D21": 11.0, "D28": 6.0, "M2": 2.5, "M3": 1.5},
    "P002": {"BL": 0.0, "D1": 0.8, "D4": 8.0, "D7": 35.0, "D10": 52.0, "D14": 44.0,
             "D21": 24.0, "D28": 14.0, "M2": 5.0, "M3": 3.0},
    "P003": {"BL": 0.0, "D1": 0.3, "D4": 1.5, "D7": 6.0, "D10": 9.0, "D14": 10.0,
             "D21": 3.0, "D28": 0.8, "M2": 0.0, "M3": 0.0},
    "P004": {"BL": 0.0, "D1": 0.3, "D4": 2.0, "D7": 9.0, "D10": 19.0, "D14": 21.0,
             "D21": 9.0, "D28": 4.5, "M2": 2.0, "M3": 1.2},
}  # fmt: skip
PRODUCT_CAR_PCT_OF_CD3: dict[str, float] = {"P001": 38.0, "P002": 45.0, "P003": 31.0, "P004": 41.0}

# CD4:CD8 ratio among CD3+ cells.
CD4_CD8_RATIO: dict[str, float] = {"P001": 1.6, "P002": 1.1, "P003": 2.2, "P004": 1.4}

# CD19+ B cells per uL blood: present at baseline, aplasia after infusion, recovery in P003.
B_CELLS_PER_UL: dict[str, dict[str, float]] = {
    p: {"BL": bl, "D1": bl * 0.6, "D4": bl * 0.2, "D7": 2.0, "D10": 0.5, "D14": 0.3,
        "D21": 0.2, "D28": 0.2, "M2": 0.3, "M3": 0.2}
    for p, bl in (("P001", 140.0), ("P002", 95.0), ("P003", 180.0), ("P004", 120.0))
}  # fmt: skip
B_CELLS_PER_UL["P003"].update({"D28": 6.0, "M2": 45.0, "M3": 130.0})
B_CELL_APLASIA_THRESHOLD_PER_UL = 10.0

# Plasma cytokines in pg/mL at baseline, and the fold change over baseline per timepoint.
CYTOKINE_BASELINE_PG_ML: dict[str, float] = {
    "IL-6": 4.0, "IFN-γ": 6.0, "sgp130": 180.0, "MCP-1": 120.0, "IL-8": 10.0,
    "IL-10": 3.0, "TNF": 5.0, "sIL-2Rα": 900.0, "MIP-1α": 15.0, "GM-CSF": 2.0,
}  # fmt: skip
_MILD_FOLD = {"BL": 1.0, "D1": 3.0, "D4": 6.0, "D7": 4.0, "D10": 2.5, "D14": 1.8, "D21": 1.3,
              "D28": 1.1, "M2": 1.0, "M3": 1.0}  # fmt: skip
_SEVERE_FOLD = {"BL": 1.0, "D1": 40.0, "D4": 180.0, "D7": 90.0, "D10": 20.0, "D14": 6.0,
                "D21": 2.0, "D28": 1.3, "M2": 1.0, "M3": 1.0}  # fmt: skip
CRS_DRIVER_CYTOKINES = ("IL-6", "IFN-γ", "sgp130", "MCP-1")


def cytokine_pg_ml(patient: str, timepoint: str, analyte: str) -> float:
    """The true plasma concentration. Only the CRS drivers rise sharply, and only in P002."""
    base = CYTOKINE_BASELINE_PG_ML[analyte]
    if timepoint == PRODUCT:
        raise ValueError("the cell product has no plasma cytokines")
    if patient == SEVERE_CRS_PATIENT and analyte in CRS_DRIVER_CYTOKINES:
        # sgp130 and MCP-1 rise less steeply than IL-6 and IFN-gamma, but still > 75-fold at D4
        fold = _SEVERE_FOLD[timepoint]
        if analyte in ("sgp130", "MCP-1"):
            fold = 1.0 + (fold - 1.0) * 0.5
        return base * fold
    return base * _MILD_FOLD[timepoint]


@dataclass(frozen=True)
class Sample:
    """One blood draw as the lab's accession list knows it."""

    accession: str
    patient_id: str
    timepoint: str
    collection_date: date
    dna_input_ng: float


def study_samples() -> list[Sample]:
    """Every blood draw of the demo trial, with accessions as the lab issues them."""
    samples = []
    for i, patient in enumerate(PATIENTS):
        for j, timepoint in enumerate(TIMEPOINTS):
            collected = INFUSION_DATE[patient] + timedelta(days=STUDY_DAY[timepoint])
            accession = f"S26-{100 + 10 * i + j:04d}"
            samples.append(Sample(accession, patient, timepoint, collected, 200.0))
    return samples
