"""Forecast severe CRS from the trial's own graded patients: `crs_forecasts`, `crs_model_card`,
`crs_rule_performance`. **Research use; not a clinical decision.**

What the model sees. For a forecast at study day *d* of the early window (`forecast_first_day` to
`forecast_last_day`, default days 0-3), each analyte of the panel gives two inputs from the
patient's post-infusion samples collected on or before day *d* (never a later one): the peak log10
concentration and the peak log10 fold change over the patient's own baseline, both taken from
`cytokine_fold_changes`. Censored results enter as the bound `crs.fold_changes` keeps (the LLOQ or
ULOQ, the fold change from it) and every row lists which inputs were bounds and which way; a fold
change whose bound is `unknown` is no input. An input a patient lacks is listed as missing and
contributes nothing (it is set to the cohort's mean before standardising, i.e. 0). Inputs held by
fewer than half of the training patients are left out of that day's model.

The model: one scikit-learn penalised (L2) logistic regression per forecast day, on standardised
inputs, refitted at every recompute on the graded patients.

The outcome. A patient's outcome is severe CRS when `crs_grades` holds a grade of at least
`forecast_severe_grade` (default 3, ASTCT) on a day from 0 to `forecast_follow_up_days` (default
14); its onset is the first such day. The outcome *counts* (the patient is graded) once it is
known: severe as soon as such a grade is recorded, not severe only once the patient's observations
reach day `forecast_follow_up_days` with no such grade. Other patients are forecast but never
trained on.

Leakage. A graded patient's own forecast comes from a leave-one-patient-out fit (a model fitted on
every other graded patient); only patients without an outcome yet get the all-patient model. No
model is fitted while fewer than `forecast_min_severe` severe or `forecast_min_non_severe`
non-severe patients are graded: every row then says so in `note`.

Rules on the same footing. Each rule of the rule file is judged on the model card's patients and
window: an alert at a timepoint of the window counts for a severe patient only on or before the
onset day (a later one forecasts nothing); lead time is onset day minus the first such alert day.
The model is judged the same way, alerting where its leave-one-patient-out forecast reaches
`forecast_alert_probability`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from pipelines.derived.crs import BASELINE_TIMEPOINTS, NOTICE
from pipelines.derived.settings import DerivedSettings

MODEL_KIND = "crs-forecast-1: L2-penalised logistic regression (scikit-learn), standardised inputs"
MIN_INPUT_COVERAGE = 0.5
"""An input enters a day's model only when at least this share of its training patients hold it."""
BOOTSTRAP_SEED = 20190401
"""Fixed, so the same data give the same interval at every recompute."""
LEAVE_ONE_OUT = "leave_one_patient_out"
ALL_GRADED = "all_graded_patients"
MODEL_RULE_ID = "forecast_model"


@dataclass(frozen=True)
class Outcome:
    """What counts as severe CRS and when a patient's outcome is known."""

    severe_grade: int
    follow_up_days: int

    @property
    def definition(self) -> str:
        return (
            f"CRS grade >= {self.severe_grade} (crs_grades) on study day 0-{self.follow_up_days}; "
            f"known once recorded, or once observations reach day {self.follow_up_days}"
        )


def outcome_of(settings: DerivedSettings) -> Outcome:
    return Outcome(settings.forecast_severe_grade, settings.forecast_follow_up_days)


def patient_outcomes(grades: pd.DataFrame, outcome: Outcome) -> pd.DataFrame:
    """One row per patient of `crs_grades`: `outcome_known`, `severe`, `onset_day` (first day
    of a severe grade) and `last_observed_day`; `severe` is missing while the outcome is not
    known."""
    rows = []
    for patient, days in grades.groupby("patient_id"):
        window = days[(days["study_day"] >= 0) & (days["study_day"] <= outcome.follow_up_days)]
        severe_days = window.loc[window["crs_grade"] >= outcome.severe_grade, "study_day"]
        last_day = int(days["study_day"].max())
        severe = len(severe_days) > 0
        known = severe or last_day >= outcome.follow_up_days
        rows.append({
            "patient_id": patient, "outcome_known": known,
            "severe": severe if known else None,
            "onset_day": int(severe_days.min()) if severe else None,
            "last_observed_day": last_day,
        })  # fmt: skip
    columns = ["patient_id", "outcome_known", "severe", "onset_day", "last_observed_day"]
    return pd.DataFrame(rows, columns=columns).set_index("patient_id")


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyInputs:
    """The inputs of every patient as of one study day."""

    day: int
    values: pd.DataFrame
    """patient x input name: log10 values, NaN where the patient has none."""
    bounded: dict[str, list[str]]
    """Per patient: the inputs that are censored bounds, with which way, in words."""
    samples: dict[str, list[str]]
    """Per patient: the timepoints the inputs came from."""
    sources: dict[str, set[str]]
    """Per patient: the source hashes behind the inputs."""


def concentration_input(analyte: str) -> str:
    return f"log10 {analyte} pg/mL"


def fold_input(analyte: str) -> str:
    return f"log10 {analyte} fold over baseline"


_CONCENTRATION_BOUND = {
    "below_lloq": "at most",
    "not_detected": "at most",
    "above_uloq": "at least",
}
_FOLD_BOUND = {"at_most": "at most", "at_least": "at least"}


def _peaks(post: pd.DataFrame, column: str, bound_column: str, name) -> pd.DataFrame:
    """Per patient and analyte, the row of the highest usable `column` (above 0, bound known),
    with its log10 as `value` and the input's name as `input`."""
    usable = post[(post[column] > 0) & (post[bound_column] != "unknown")].dropna(subset=[column])
    peaks = usable.loc[usable.groupby(["patient_id", "analyte"])[column].idxmax()]
    return peaks.assign(
        input=peaks["analyte"].map(name), value=np.log10(peaks[column].astype(float)),
        bound=peaks[bound_column],
    )  # fmt: skip


def early_inputs(folds: pd.DataFrame, day: int) -> EarlyInputs:
    """Peak log10 concentration and peak log10 fold change per analyte over each patient's
    post-infusion samples collected up to `day` (rows of `cytokine_fold_changes`)."""
    post = folds[
        ~folds["timepoint"].isin(BASELINE_TIMEPOINTS)
        & (folds["study_day"] >= 0)
        & (folds["study_day"] <= day)
    ]
    peaks = pd.concat([
        _peaks(post, "concentration_pg_ml", "censoring", concentration_input)
        .assign(bound=lambda f: f["bound"].map(_CONCENTRATION_BOUND)),
        _peaks(post, "fold_change", "fold_change_bound", fold_input)
        .assign(bound=lambda f: f["bound"].map(_FOLD_BOUND)),
    ], ignore_index=True)  # fmt: skip
    values = peaks.pivot(index="patient_id", columns="input", values="value").sort_index(axis=1)
    values.columns.name = None
    censored = peaks[peaks["bound"].notna()].sort_values(["patient_id", "input"])
    bounded = {p: [] for p in values.index}
    for _, row in censored.iterrows():
        bounded[row["patient_id"]].append(
            f"{row['input']} {row['bound']} {row['value']:.3g} ({row['timepoint']})"
        )
    by_patient = post.sort_values("study_day", kind="stable").groupby("patient_id")
    samples = {p: list(dict.fromkeys(rows["timepoint"])) for p, rows in by_patient}
    sources = {
        p: {h for joined in rows["derived_from"] for h in joined.split(",")}
        for p, rows in by_patient
    }
    return EarlyInputs(day, values, bounded, samples, sources)


def chosen_inputs(values: pd.DataFrame) -> list[str]:
    """The inputs held by at least `MIN_INPUT_COVERAGE` of these patients."""
    coverage = values.notna().mean()
    return sorted(coverage.index[coverage >= MIN_INPUT_COVERAGE])


# --- the model ----------------------------------------------------------------------------------


def new_model(penalty_c: float) -> Pipeline:
    """Missing inputs at the training mean (0 once standardised), standardise, L2 logistic."""
    return Pipeline([
        ("missing_at_mean", SimpleImputer(strategy="mean", keep_empty_features=True)),
        ("standardise", StandardScaler()),
        ("logistic", LogisticRegression(C=penalty_c, l1_ratio=0.0, max_iter=1000)),
    ])  # fmt: skip


def fit(values: pd.DataFrame, severe: pd.Series, penalty_c: float) -> Pipeline:
    return new_model(penalty_c).fit(values.to_numpy(float), severe.to_numpy(bool))


def leave_one_patient_out(values: pd.DataFrame, severe: pd.Series, penalty_c: float) -> pd.Series:
    """Each patient's probability of severe CRS from a model fitted on every other patient."""
    probabilities = {}
    matrix, outcome = values.to_numpy(float), severe.to_numpy(bool)
    for index, patient in enumerate(values.index):
        others = np.arange(len(values)) != index
        model = new_model(penalty_c).fit(matrix[others], outcome[others])
        probabilities[patient] = float(model.predict_proba(matrix[[index]])[0, 1])
    return pd.Series(probabilities, name="probability_severe")


def rank_auc(severe: np.ndarray, probability: np.ndarray) -> float:
    """The ROC AUC as the Mann-Whitney statistic (ties count half): the same number as
    scikit-learn's `roc_auc_score`, without its per-call input checks, which dominate a
    bootstrap of a thousand resamples."""
    ranks = pd.Series(probability).rank(method="average").to_numpy()
    positives = int(severe.sum())
    negatives = len(severe) - positives
    return float((ranks[severe].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_auc_interval(
    severe: np.ndarray, probability: np.ndarray, resamples: int, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile 95 % interval of the AUC over patients resampled with replacement (resamples
    holding one class only are skipped)."""
    generator = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        pick = generator.integers(0, len(severe), len(severe))
        if severe[pick].all() or not severe[pick].any():
            continue
        aucs.append(rank_auc(severe[pick], probability[pick]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def reliability_bins(severe: np.ndarray, probability: np.ndarray, bins: int) -> list[dict]:
    """Equal-width bins of forecast probability: patients, mean forecast, observed severe share."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    found = []
    for index in range(bins):
        inside = which == index
        if inside.any():
            found.append({
                "from": round(float(edges[index]), 4), "to": round(float(edges[index + 1]), 4),
                "patients": int(inside.sum()),
                "mean_forecast": float(probability[inside].mean()),
                "observed_severe": float(severe[inside].mean()),
            })  # fmt: skip
    return found


def model_version(
    day: int, inputs: Sequence[str], severe: pd.Series, settings: DerivedSettings
) -> str:
    """The model kind plus a hash of what the fit saw: inputs, patients and outcomes, settings."""
    seen = json.dumps({
        "day": day, "inputs": list(inputs), "c": settings.forecast_penalty_c,
        "outcomes": {str(p): bool(s) for p, s in severe.items()},
        "outcome": [settings.forecast_severe_grade, settings.forecast_follow_up_days],
    }, sort_keys=True)  # fmt: skip
    return f"crs-forecast-1+{hashlib.sha256(seen.encode()).hexdigest()[:12]}"


# --- one forecast day ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayModel:
    """The fit of one forecast day, or why there is none."""

    day: int
    inputs: list[str]
    graded: pd.Series
    """Outcome (True: severe) of the training patients."""
    version: str
    note: str
    lopo: pd.Series | None = None
    """Leave-one-patient-out probability of each graded patient; None when refused."""
    full: Pipeline | None = None

    @property
    def fitted(self) -> bool:
        return self.full is not None


def refusal(n_severe: int, n_non_severe: int, settings: DerivedSettings) -> str | None:
    """Why no model may be fitted on these outcomes, or None."""
    if (
        n_severe >= settings.forecast_min_severe
        and n_non_severe >= settings.forecast_min_non_severe
    ):
        return None
    return (
        f"not fitted: {n_severe} severe and {n_non_severe} non-severe graded patient(s); the model "
        f"needs at least {settings.forecast_min_severe} severe and "
        f"{settings.forecast_min_non_severe} non-severe ([derived] forecast_min_severe, "
        "forecast_min_non_severe)"
    )


def day_model(inputs: EarlyInputs, outcomes: pd.DataFrame, settings: DerivedSettings) -> DayModel:
    """Fit the day's model on the graded patients that have inputs, or refuse with a note."""
    known = outcomes[outcomes["outcome_known"].astype(bool)]
    graded_ids = sorted(set(known.index) & set(inputs.values.index))
    graded = known.loc[graded_ids, "severe"].astype(bool)
    values = inputs.values.loc[graded_ids]
    chosen = chosen_inputs(values) if len(values) else []
    version = model_version(inputs.day, chosen, graded, settings)
    why_not = refusal(int(graded.sum()), int((~graded).sum()), settings)
    if why_not is None and not chosen:
        why_not = "not fitted: no input is held by half of the graded patients"
    if why_not is not None:
        return DayModel(inputs.day, chosen, graded, version, why_not)
    values = values[chosen]
    c = settings.forecast_penalty_c
    return DayModel(
        inputs.day, chosen, graded, version, "fitted",
        lopo=leave_one_patient_out(values, graded, c), full=fit(values, graded, c),
    )  # fmt: skip


def coefficients(model: DayModel) -> list[dict]:
    """The full model's coefficients per standardised input, largest effect first."""
    if model.full is None:
        return []
    weights = model.full.named_steps["logistic"].coef_[0]
    pairs = sorted(zip(model.inputs, weights, strict=True), key=lambda p: -abs(p[1]))
    return [{"input": name, "coefficient": float(w)} for name, w in pairs]


# --- the tables ---------------------------------------------------------------------------------


def forecast_rows(
    folds: pd.DataFrame, inputs: EarlyInputs, model: DayModel, outcomes: pd.DataFrame,
    outcome: Outcome,
) -> list[dict]:  # fmt: skip
    """The `crs_forecasts` rows of the day: one per patient sampled at a timepoint of that day."""
    sampled = folds[
        (folds["study_day"] == model.day) & ~folds["timepoint"].isin(BASELINE_TIMEPOINTS)
    ].drop_duplicates(["patient_id", "timepoint"])
    rows = []
    for _, sample in sampled.sort_values("patient_id").iterrows():
        patient = sample["patient_id"]
        if patient not in inputs.values.index:
            continue
        own = inputs.values.loc[patient]
        used = [n for n in model.inputs if pd.notna(own.get(n))]
        missing = [n for n in model.inputs if pd.isna(own.get(n))]
        known = patient in outcomes.index and bool(outcomes.at[patient, "outcome_known"])
        probability, basis = None, None
        if model.fitted and model.lopo is not None and patient in model.lopo.index:
            probability, basis = float(model.lopo[patient]), LEAVE_ONE_OUT
        elif model.fitted and model.full is not None:
            frame = own.reindex(model.inputs).to_frame().T.to_numpy(float)
            probability, basis = float(model.full.predict_proba(frame)[0, 1]), ALL_GRADED
        rows.append({
            "patient_id": patient, "timepoint": sample["timepoint"], "study_day": model.day,
            "probability_severe": probability, "forecast_basis": basis,
            "status": "forecast" if model.fitted else "not_fitted", "note": model.note,
            "samples_used": ",".join(inputs.samples[patient]),
            "inputs_used": ",".join(used), "inputs_missing": ",".join(missing),
            "inputs_bounded": "; ".join(inputs.bounded[patient]),
            "outcome_definition": outcome.definition, "outcome_known": known,
            "severe_crs": bool(outcomes.at[patient, "severe"]) if known else None,
            "severe_onset_day": outcomes.at[patient, "onset_day"] if known else None,
            "model_version": model.version, "notice": NOTICE,
            "derived_from": ",".join(sorted(inputs.sources[patient])),
        })  # fmt: skip
    return rows


def model_card_row(model: DayModel, outcome: Outcome, settings: DerivedSettings) -> dict:
    """The `crs_model_card` row of one forecast day."""
    row = {
        "timepoint": f"D{model.day}", "study_day": model.day, "model_version": model.version,
        "model_kind": MODEL_KIND, "penalty_c": settings.forecast_penalty_c,
        "status": "fitted" if model.fitted else "not_fitted", "note": model.note,
        "outcome_definition": outcome.definition, "n_patients": len(model.graded),
        "n_severe": int(model.graded.sum()), "n_non_severe": int((~model.graded).sum()),
        "min_severe": settings.forecast_min_severe,
        "min_non_severe": settings.forecast_min_non_severe,
        "inputs": ",".join(model.inputs), "coefficients_json": json.dumps(coefficients(model)),
        "lopo_auc": None, "auc_ci_low": None, "auc_ci_high": None, "brier_score": None,
        "reliability_json": "[]", "notice": NOTICE,
    }  # fmt: skip
    if model.lopo is None:
        return row
    severe = model.graded.loc[model.lopo.index].to_numpy(bool)
    probability = model.lopo.to_numpy(float)
    low, high = bootstrap_auc_interval(severe, probability, settings.forecast_bootstrap_resamples)
    row.update({
        "lopo_auc": float(roc_auc_score(severe, probability)), "auc_ci_low": low,
        "auc_ci_high": high, "brier_score": float(brier_score_loss(severe, probability)),
        "reliability_json": json.dumps(
            reliability_bins(severe, probability, settings.forecast_reliability_bins)
        ),
    })  # fmt: skip
    return row


def first_forecasting_alert(days: Sequence[float], onset_day: float | None) -> float | None:
    """The first alert day that still forecasts: any for a non-severe patient, on or before the
    onset day for a severe one."""
    usable = [d for d in days if onset_day is None or d <= onset_day]
    return min(usable) if usable else None


def judged(
    method_id: str, alert_days: dict[str, list[float]], graded: pd.Series, outcomes: pd.DataFrame
) -> dict:
    """Sensitivity, specificity and lead times of one alerting method on the graded patients."""
    counts = {"true_positives": 0, "false_negatives": 0, "false_positives": 0,
              "true_negatives": 0}  # fmt: skip
    leads = {}
    for patient, severe in graded.items():
        onset = outcomes.at[patient, "onset_day"] if severe else None
        first = first_forecasting_alert(alert_days.get(patient, []), onset)
        if severe:
            counts["true_positives" if first is not None else "false_negatives"] += 1
            if first is not None:
                leads[patient] = float(onset) - first
        else:
            counts["false_positives" if first is not None else "true_negatives"] += 1
    n_severe, n_non = int(graded.sum()), int((~graded).sum())
    return {
        "rule_id": method_id, **counts, "n_patients": len(graded), "n_severe": n_severe,
        "sensitivity": counts["true_positives"] / n_severe if n_severe else None,
        "specificity": counts["true_negatives"] / n_non if n_non else None,
        "median_lead_time_days": float(np.median(list(leads.values()))) if leads else None,
        "lead_times_json": json.dumps(leads, sort_keys=True),
    }  # fmt: skip


def rule_performance(
    signals: pd.DataFrame, forecasts: pd.DataFrame, model: DayModel, outcomes: pd.DataFrame,
    settings: DerivedSettings,
) -> pd.DataFrame:  # fmt: skip
    """`crs_rule_performance`: every rule of `crs_signals`, and the model, on the patients and
    window of the last forecast day's model card."""
    first, last = settings.forecast_first_day, settings.forecast_last_day
    graded = model.graded
    early = signals[(signals["study_day"] >= first) & (signals["study_day"] <= last)]
    rows = []
    rules = signals[["rule_id", "rule_title", "rule_source"]].drop_duplicates("rule_id")
    for rule_id, title, source in rules.sort_values("rule_id").itertuples(index=False):
        fired = early[(early["rule_id"] == rule_id) & early["alert"].fillna(False).astype(bool)]
        days = {p: list(g["study_day"].astype(float)) for p, g in fired.groupby("patient_id")}
        rows.append({**judged(rule_id, days, graded, outcomes), "rule_title": title,
                     "rule_source": source, "method": "rule", "note": "",
                     "model_version": None})  # fmt: skip
    model_row = {"rule_title": f"forecast probability >= {settings.forecast_alert_probability:g}",
                 "rule_source": MODEL_KIND, "method": "model", "model_version": model.version,
                 "note": model.note}  # fmt: skip
    if model.fitted and len(forecasts):
        lopo = forecasts[
            (forecasts["forecast_basis"] == LEAVE_ONE_OUT)
            & (forecasts["probability_severe"] >= settings.forecast_alert_probability)
        ]
        days = {p: list(g["study_day"].astype(float)) for p, g in lopo.groupby("patient_id")}
        rows.append({**judged(MODEL_RULE_ID, days, graded, outcomes), **model_row})
    else:
        rows.append({"rule_id": MODEL_RULE_ID, "n_patients": len(graded),
                     "n_severe": int(graded.sum()), "lead_times_json": "{}", **model_row})  # fmt: skip
    return pd.DataFrame(rows).assign(window_first_day=first, window_last_day=last, notice=NOTICE)


@dataclass(frozen=True)
class ForecastTables:
    forecasts: pd.DataFrame
    model_card: pd.DataFrame
    rule_performance: pd.DataFrame
    sources: set[str]
    """Every source hash behind the three tables."""


def forecast_tables(
    folds: pd.DataFrame, grades: pd.DataFrame, signals: pd.DataFrame, settings: DerivedSettings
) -> ForecastTables:
    """The three forecast tables from the whole cohort's `cytokine_fold_changes`, `crs_grades`
    and `crs_signals`. The fits run on one BLAS thread: their matrices are a few hundred rows,
    and on a shared machine threaded BLAS made each fit 7-15 times slower (0.12 s against
    0.017 s for 200 patients, measured)."""
    with threadpool_limits(limits=1):
        return _forecast_tables(folds, grades, signals, settings)


def _forecast_tables(
    folds: pd.DataFrame, grades: pd.DataFrame, signals: pd.DataFrame, settings: DerivedSettings
) -> ForecastTables:
    outcome = outcome_of(settings)
    outcomes = patient_outcomes(grades, outcome)
    forecasts, models = [], []
    sources: set[str] = {h for joined in grades.get("derived_from", []) for h in joined.split(",")}
    for day in range(settings.forecast_first_day, settings.forecast_last_day + 1):
        inputs = early_inputs(folds, day)
        models.append(day_model(inputs, outcomes, settings))
        forecasts += forecast_rows(folds, inputs, models[-1], outcomes, outcome)
        sources |= {h for patient in models[-1].graded.index for h in inputs.sources[patient]}
    forecast_frame = pd.DataFrame(forecasts)
    cards = pd.DataFrame([model_card_row(m, outcome, settings) for m in models])
    # the settings keep first <= last, so the window has a last day and models[-1] exists
    performance = rule_performance(signals, forecast_frame, models[-1], outcomes, settings)
    return ForecastTables(forecast_frame, cards, performance, sources)
