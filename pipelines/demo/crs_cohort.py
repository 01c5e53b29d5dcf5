"""The demo's CRS cohort: generated patients whose early cytokine rises forecast severe CRS by a
known rule, so a forecast learned from them can be judged against the truth.

The rule (every number is in `GENERATOR`, and written into the truth JSON):

- Each patient has a true early rise per analyte: the log fold change over their own baseline
  that the analyte reaches by study day 3, `peak ~ Normal(mean, sd)` (natural log). On study days
  0-3 the log fold change is `RISE_SHAPE[day] * peak + Normal(0, DAY_NOISE_SD)`: the rise builds
  up over the early days, and day-to-day biology blurs it.
- Severe CRS (ASTCT grade >= 3) is drawn once per patient with probability
  `sigmoid(intercept + sum(weight * (peak - mean) / sd))` over the predictive analytes only
  (IL-6, IFN-γ, sgp130); the other analytes rise too, by the same law, but say nothing about it.
- Severe CRS begins on study day 4-8, after the early window, so a forecast on days 0-3 has a
  lead time. Later samples (D7, D14, D28) carry the CRS itself: every analyte is higher in
  severe patients then, which is what a forecast that peeked at them would learn from.

The true probability of severe CRS at an early timepoint is the Bayes-optimal forecast from the
true fold changes measured so far: the Gaussian posterior of the peaks given days 0..t, pushed
through the logistic risk (Gauss-Hermite quadrature). It sharpens as the days pass. The
Bayes-optimal AUC is the AUC of those probabilities against the outcomes drawn; its expectation
(over the outcome draws, given the probabilities) is the expected share of concordant pairs.

Patient k's draws depend only on the seed and k, so the 40-patient cohort is the first 40
patients of the 200-patient one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from pipelines.demo import trial
from pipelines.demo.cba_files import ANALYTES


@dataclass(frozen=True)
class EarlyRise:
    """How one analyte rises over the patient's baseline by study day 3 (natural log fold)."""

    mean_log_fold: float
    sd_log_fold: float
    weight: float = 0.0
    """Weight of the standardised rise in the severe-CRS risk; 0 for an analyte that predicts nothing."""


GENERATOR: dict[str, EarlyRise] = {
    "IL-6": EarlyRise(math.log(20.0), 1.0, weight=1.2),
    "IFN-γ": EarlyRise(math.log(15.0), 1.0, weight=0.9),
    "sgp130": EarlyRise(math.log(3.0), 0.5, weight=0.6),
    "MCP-1": EarlyRise(math.log(6.0), 0.8),
    "IL-8": EarlyRise(math.log(8.0), 0.9),
    "IL-10": EarlyRise(math.log(10.0), 1.0),
    "TNF": EarlyRise(math.log(3.0), 0.6),
    "sIL-2Rα": EarlyRise(math.log(4.0), 0.7),
    "MIP-1α": EarlyRise(math.log(3.0), 0.6),
    "GM-CSF": EarlyRise(math.log(2.0), 0.5),
}
"""Every analyte of the demo's bead-array panel; those with a weight are the truly predictive."""
PREDICTIVE_ANALYTES = tuple(a for a, rise in GENERATOR.items() if rise.weight)
RISK_INTERCEPT = -1.4
"""Sets the share of severe CRS (about a quarter of patients)."""

EARLY_DAYS: dict[str, int] = {"D0": 0, "D1": 1, "D2": 2, "D3": 3}
RISE_SHAPE: dict[int, float] = {0: 0.1, 1: 0.4, 2: 0.75, 3: 1.0}
"""Share of the day-3 rise reached on each early day (day 0 = infusion)."""
DAY_NOISE_SD = 0.35
BASELINE_SD = 0.3
"""Spread between patients of the baseline concentration (natural log), around trial.py's."""

FOLLOW_UP_DAYS: dict[str, int] = {"D7": 7, "D14": 14, "D28": 28}
FOLLOW_UP_SHAPE: dict[int, tuple[float, float]] = {7: (0.8, 1.5), 14: (0.3, 0.6), 28: (0.1, 0.0)}
"""Per follow-up day: (share of the early rise still there, log fold added by severe CRS)."""
TIMEPOINTS: tuple[str, ...] = ("BL", *EARLY_DAYS, *FOLLOW_UP_DAYS)
STUDY_DAY: dict[str, int] = {"BL": -7, **EARLY_DAYS, **FOLLOW_UP_DAYS}

OBSERVED_DAYS = range(0, 15)
"""Clinical observations: one row per day from infusion to day 14."""
SEVERE_ONSET_DAYS = (4, 8)
"""First and last study day on which severe CRS may begin (after the early window)."""
FIRST_INFUSION = date(2024, 1, 8)
PATIENT_PREFIX = "C"


@dataclass(frozen=True)
class DayObservation:
    """One day's clinical observation, as the ward records it for ASTCT grading."""

    study_day: int
    temperature_c: float
    hypotension: bool
    vasopressors: int
    oxygen_support: str


@dataclass(frozen=True)
class CohortPatient:
    """One generated patient: their true cytokine course and CRS course."""

    patient_id: str
    infusion_date: date
    baseline_pg_ml: dict[str, float]
    log_fold: dict[str, dict[str, float]]
    """Timepoint -> analyte -> true natural-log fold change over baseline (BL is 0)."""
    risk: float
    """The probability severe CRS was drawn with (from the true early peaks)."""
    early_probability: dict[str, float]
    """Early timepoint -> Bayes-optimal probability of severe CRS from the days so far."""
    severe: bool
    max_grade: int
    fever_onset_day: int | None
    severe_onset_day: int | None
    observations: tuple[DayObservation, ...]

    def pg_ml(self, timepoint: str, analyte: str) -> float:
        """The true plasma concentration behind the bead-array well."""
        return self.baseline_pg_ml[analyte] * math.exp(self.log_fold[timepoint][analyte])

    def accession(self, timepoint: str) -> str:
        return f"{self.patient_id}-{timepoint}"

    def collection_date(self, timepoint: str) -> date:
        return self.infusion_date + timedelta(days=STUDY_DAY[timepoint])


@dataclass(frozen=True)
class CrsCohort:
    seed: int
    patients: list[CohortPatient]

    @property
    def severe_count(self) -> int:
        return sum(p.severe for p in self.patients)

    def bayes_optimal_auc(self, timepoint: str) -> float | None:
        """AUC of the true probabilities at `timepoint` against the drawn outcomes (None while
        only one outcome occurs)."""
        from sklearn.metrics import (
            roc_auc_score,
        )  # 2-5 s to import: only when a cohort is asked for

        outcomes = [p.severe for p in self.patients]
        if len(set(outcomes)) < 2:
            return None
        scores = [p.early_probability[timepoint] for p in self.patients]
        return float(roc_auc_score(outcomes, scores))

    def expected_bayes_optimal_auc(self, timepoint: str) -> float:
        return expected_auc(np.array([p.early_probability[timepoint] for p in self.patients]))

    def summary_line(self) -> str:
        """One line for the demo's closing summary."""
        last = tuple(EARLY_DAYS)[-1]
        auc = self.bayes_optimal_auc(last)
        shown = "undefined (one outcome only)" if auc is None else f"{auc:.2f}"
        return (
            f"CRS cohort: {len(self.patients)} patients, {self.severe_count} with severe CRS; "
            f"Bayes-optimal AUC {shown} at {last} "
            f"(expected {self.expected_bayes_optimal_auc(last):.2f})"
        )

    def truth(self) -> dict:
        """The truth as JSON-ready data (written to the lab home as `crs-cohort-truth.json`)."""
        return {
            "seed": self.seed,
            "outcome": "severe CRS: ASTCT 2019 grade >= 3",
            "predictive_analytes": list(PREDICTIVE_ANALYTES),
            "generator": {
                "risk_intercept": RISK_INTERCEPT,
                "early_rise": {a: vars(r) for a, r in GENERATOR.items()},
                "rise_shape": RISE_SHAPE,
                "day_noise_sd": DAY_NOISE_SD,
                "severe_onset_days": list(SEVERE_ONSET_DAYS),
            },
            "early_timepoints": EARLY_DAYS,
            "bayes_optimal_auc": {t: self.bayes_optimal_auc(t) for t in EARLY_DAYS},
            "expected_bayes_optimal_auc": {
                t: self.expected_bayes_optimal_auc(t) for t in EARLY_DAYS
            },
            "patients": {
                p.patient_id: {
                    "severe": p.severe,
                    "max_grade": p.max_grade,
                    "severe_onset_day": p.severe_onset_day,
                    "fever_onset_day": p.fever_onset_day,
                    "risk": p.risk,
                    "early_probability": p.early_probability,
                    "infusion_date": p.infusion_date.isoformat(),
                }
                for p in self.patients
            },
        }


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


_NODES, _NODE_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)


def early_probabilities(early_log_folds: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per early timepoint t, P(severe | the true predictive log fold changes of days 0..t).

    Each predictive peak has a Normal prior and each day a Normal observation of
    `RISE_SHAPE[day] * peak`, so the posterior is Normal; the risk score, a weighted sum of
    standardised peaks, is then Normal too, and the logistic risk is averaged over it."""
    probabilities = {}
    for last_index, timepoint in enumerate(EARLY_DAYS):
        seen = [(EARLY_DAYS[t], early_log_folds[t]) for t in list(EARLY_DAYS)[: last_index + 1]]
        score_mean, score_var = 0.0, 0.0
        for analyte in PREDICTIVE_ANALYTES:
            rise = GENERATOR[analyte]
            precision = (
                1 / rise.sd_log_fold**2
                + sum(RISE_SHAPE[day] ** 2 for day, _ in seen) / DAY_NOISE_SD**2
            )
            weighted = (
                rise.mean_log_fold / rise.sd_log_fold**2
                + sum(RISE_SHAPE[day] * folds[analyte] for day, folds in seen) / DAY_NOISE_SD**2
            )
            scale = rise.weight / rise.sd_log_fold
            score_mean += scale * (weighted / precision - rise.mean_log_fold)
            score_var += scale**2 / precision
        risk = _sigmoid(RISK_INTERCEPT + score_mean + math.sqrt(score_var) * _NODES)
        probabilities[timepoint] = float(risk @ _NODE_WEIGHTS / _NODE_WEIGHTS.sum())
    return probabilities


def expected_auc(probabilities: np.ndarray) -> float:
    """The AUC expected when each patient's outcome is drawn with their probability: expected
    concordant (severe, non-severe) pairs over expected pairs, ties counted half."""
    p = np.asarray(probabilities, dtype=float)
    pair = np.outer(p, 1 - p)  # i severe and j not
    np.fill_diagonal(pair, 0.0)
    higher = (p[:, None] > p[None, :]) + 0.5 * (p[:, None] == p[None, :])
    return float((pair * higher).sum() / pair.sum())


def _grade_course(rng: np.random.Generator, severe: bool) -> tuple[int, int | None, int | None]:
    """(max ASTCT grade, fever onset day, severe onset day) of one patient."""
    if severe:
        onset = int(rng.integers(SEVERE_ONSET_DAYS[0], SEVERE_ONSET_DAYS[1] + 1))
        fever = int(rng.integers(1, 4))
        return (4 if rng.random() < 0.25 else 3), fever, onset
    grade = int(rng.choice([0, 1, 2], p=[0.25, 0.45, 0.30]))
    return grade, (int(rng.integers(1, 7)) if grade else None), None


_SIGNS_BY_GRADE: dict[str, dict[int, tuple[bool, int, str]]] = {
    # grade -> (hypotension, vasopressors, oxygen support), for a patient whose CRS shows in the
    # circulation or in the lungs
    "circulation": {1: (False, 0, "none"), 2: (True, 0, "none"), 3: (True, 1, "none"),
                    4: (True, 2, "none")},
    "lungs": {1: (False, 0, "none"), 2: (False, 0, "low_flow"), 3: (False, 0, "high_flow"),
              4: (False, 0, "positive_pressure")},
}  # fmt: skip


def _daily_grades(max_grade: int, fever_onset: int | None, severe_onset: int | None) -> dict:
    """Study day -> the ASTCT grade the generator means that day to have (0 when absent).

    Mild CRS: three days of fever from its onset, grade 2 on the last two if the patient reaches
    it. Severe CRS: fever from its onset, the severe grade on the two days from the severe onset,
    grade 2 the day after, then resolved."""
    grades = dict.fromkeys(OBSERVED_DAYS, 0)
    if fever_onset is None:
        return grades
    if severe_onset is None:
        for day in range(fever_onset, fever_onset + 3):
            grades[day] = 2 if max_grade == 2 and day > fever_onset else 1
        return grades
    for day in range(fever_onset, severe_onset):
        grades[day] = 1
    grades.update({severe_onset: max_grade, severe_onset + 1: max_grade, severe_onset + 2: 2})
    return grades


def _clinical_course(
    rng: np.random.Generator, grades: dict[int, int]
) -> tuple[DayObservation, ...]:
    """Daily observations that ASTCT 2019 grades as `grades` (fever >= 38 degC whenever CRS)."""
    route = "circulation" if rng.random() < 0.5 else "lungs"
    course = []
    for day, grade in grades.items():
        if grade == 0:
            temperature = round(min(37.6, rng.normal(36.9, 0.25)), 1)  # afebrile
            course.append(DayObservation(day, temperature, False, 0, "none"))
            continue
        hypotension, vasopressors, oxygen = _SIGNS_BY_GRADE[route][grade]
        temperature = round(38.1 + rng.uniform(0.0, 1.6), 1)
        course.append(DayObservation(day, temperature, hypotension, vasopressors, oxygen))
    return tuple(course)


def generate_patient(seed: int, index: int) -> CohortPatient:
    """Patient number `index` (from 1) of the cohort of `seed`."""
    rng = np.random.default_rng([seed, index])
    peaks = {a: rng.normal(r.mean_log_fold, r.sd_log_fold) for a, r in GENERATOR.items()}
    baseline = {
        a: trial.CYTOKINE_BASELINE_PG_ML[a] * math.exp(rng.normal(0.0, BASELINE_SD))
        for a in ANALYTES
    }
    log_fold: dict[str, dict[str, float]] = {"BL": dict.fromkeys(ANALYTES, 0.0)}
    for timepoint, day in EARLY_DAYS.items():
        log_fold[timepoint] = {
            a: RISE_SHAPE[day] * peaks[a] + rng.normal(0.0, DAY_NOISE_SD) for a in ANALYTES
        }
    score = sum(
        r.weight * (peaks[a] - r.mean_log_fold) / r.sd_log_fold for a, r in GENERATOR.items()
    )
    risk = float(_sigmoid(RISK_INTERCEPT + score))
    severe = bool(rng.random() < risk)
    for timepoint, day in FOLLOW_UP_DAYS.items():
        share, added = FOLLOW_UP_SHAPE[day]
        log_fold[timepoint] = {
            a: share * peaks[a] + added * severe + rng.normal(0.0, DAY_NOISE_SD) for a in ANALYTES
        }
    max_grade, fever_onset, severe_onset = _grade_course(rng, severe)
    grades = _daily_grades(max_grade, fever_onset, severe_onset)
    return CohortPatient(
        patient_id=f"{PATIENT_PREFIX}{index:03d}",
        infusion_date=FIRST_INFUSION + timedelta(days=index),
        baseline_pg_ml=baseline,
        log_fold=log_fold,
        risk=risk,
        early_probability=early_probabilities({t: log_fold[t] for t in EARLY_DAYS}),
        severe=severe,
        max_grade=max_grade,
        fever_onset_day=fever_onset,
        severe_onset_day=severe_onset,
        observations=_clinical_course(rng, grades),
    )


MAX_PATIENTS = 999
"""Patient IDs are C001 ... C999."""


def generate_cohort(patients: int, seed: int = 7) -> CrsCohort:
    """The cohort of `patients` generated patients (C001, C002, ...) for `seed`."""
    if not 1 <= patients <= MAX_PATIENTS:
        raise ValueError(f"--patients {patients}: expected a number from 1 to {MAX_PATIENTS}")
    return CrsCohort(seed, [generate_patient(seed, k) for k in range(1, patients + 1)])


def cohort_truth(patients: int, seed: int = 7) -> dict:
    """Per patient the true early probabilities, the outcome drawn and the CRS course; the
    predictive analytes; the Bayes-optimal AUC per early timepoint and its expectation."""
    return generate_cohort(patients, seed).truth()
