"""Synthetic cohorts with a known logistic truth, for the CRS forecast tests.

Each patient has a hidden rise per analyte (standard normal); the chance of severe CRS is the
logistic of a linear combination of the rises of the `PREDICTIVE` analytes only. Cytokines rise
over the patient's baseline by that hidden amount, growing over days 0-3, with assay noise, and
go through the real fold-change code (`crs.fold_changes`) and rules (`crs.evaluate_rules`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.derived import crs

PREDICTIVE = {"IFN-γ": 1.6, "IL-6": 1.2, "sgp130": 0.9}
"""Analyte -> weight of its hidden rise in the true log-odds of severe CRS."""
NOISE_ANALYTES = ("IL-8", "MCP-1", "IL-10", "TNF", "GM-CSF")
INTERCEPT = -0.6
EARLY_DAYS = (0, 1, 2, 3)
ONSET_DAY = 5
FOLLOW_UP_DAYS = 14
LLOQ_PG_ML = 2.0


@dataclass(frozen=True)
class Cohort:
    cytokines: pd.DataFrame
    folds: pd.DataFrame
    grades: pd.DataFrame
    true_probability: pd.Series
    severe: pd.Series


def _cytokine_row(patient: str, timepoint: str, day: int, analyte: str, value: float) -> dict:
    censored = value < LLOQ_PG_ML
    return {
        "patient_id": patient, "timepoint": timepoint, "study_day": day, "analyte": analyte,
        "concentration_pg_ml": None if censored else value,
        "censoring": "below_lloq" if censored else "none",
        "censor_limit_pg_ml": LLOQ_PG_ML, "analyte_recognised": True,
        "source_sha256": f"{patient}-{timepoint}".ljust(64, "0"),
        "processed_at": pd.Timestamp("2026-01-01", tz="UTC"),
    }  # fmt: skip


def patient_cytokines(patient: str, rises: dict[str, float], generator) -> list[dict]:
    rows = []
    for analyte, rise in rises.items():
        baseline = 10 ** (1.0 + 0.2 * generator.standard_normal())
        rows.append(_cytokine_row(patient, "BL", -7, analyte, baseline))
        for day in EARLY_DAYS:
            log_fold = 0.8 * rise * (day + 1) / len(EARLY_DAYS) + 0.15 * generator.standard_normal()
            rows.append(_cytokine_row(patient, f"D{day}", day, analyte, baseline * 10**log_fold))
    return rows


def grades_of(patient: str, severe: bool, last_day: int = FOLLOW_UP_DAYS) -> pd.DataFrame:
    days = np.arange(0, last_day + 1)
    grade = np.where(severe & (days >= ONSET_DAY), 3, np.where(days >= 2, 1, 0))
    return pd.DataFrame({
        "patient_id": patient, "study_day": days, "crs_grade": grade,
        "derived_from": "observations".ljust(64, "0"),
    })  # fmt: skip


def cohort(patients: int, seed: int) -> Cohort:
    """A cohort of `patients` with the known truth of the module docstring."""
    generator = np.random.default_rng(seed)
    analytes = (*PREDICTIVE, *NOISE_ANALYTES)
    cytokines, folds, grades, truth, outcome = [], [], [], {}, {}
    for number in range(1, patients + 1):
        patient = f"P{number:03d}"
        rises = {a: float(generator.standard_normal()) for a in analytes}
        log_odds = INTERCEPT + sum(w * rises[a] for a, w in PREDICTIVE.items())
        truth[patient] = 1 / (1 + np.exp(-log_odds))
        outcome[patient] = bool(generator.random() < truth[patient])
        rows = pd.DataFrame(patient_cytokines(patient, rises, generator))
        cytokines.append(rows)
        folds.append(crs.fold_changes(rows).assign(patient_id=patient))
        grades.append(grades_of(patient, outcome[patient]))
    return Cohort(
        pd.concat(cytokines, ignore_index=True), pd.concat(folds, ignore_index=True),
        pd.concat(grades, ignore_index=True), pd.Series(truth), pd.Series(outcome),
    )  # fmt: skip
