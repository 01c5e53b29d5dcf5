"""The CRS forecast on synthetic cohorts with a known logistic truth (tests/derived/forecast_cohort.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.derived import crs, forecast
from pipelines.derived.settings import SHIPPED_CRS_RULES, DerivedSettings
from tests.derived.forecast_cohort import PREDICTIVE, cohort, grades_of

SETTINGS = DerivedSettings(forecast_bootstrap_resamples=300)


def _signals(folds: pd.DataFrame) -> pd.DataFrame:
    rules = crs.load_rules(SHIPPED_CRS_RULES)
    return pd.concat(
        [crs.evaluate_rules(g, rules).assign(patient_id=p) for p, g in folds.groupby("patient_id")],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def large():
    made = cohort(160, seed=11)
    return made, forecast.forecast_tables(made.folds, made.grades, _signals(made.folds), SETTINGS)


def test_lopo_auc_is_within_what_the_truth_allows(large):
    made, built = large
    bayes = roc_auc_score(made.severe, made.true_probability)
    day3 = built.model_card.set_index("study_day").loc[3]
    assert day3["status"] == "fitted" and day3["n_patients"] == 160
    # the model cannot beat the true probabilities by more than sampling noise, and with 160
    # patients and 16 inputs it comes close to them
    assert bayes - 0.12 <= day3["lopo_auc"] <= bayes + 0.03
    assert day3["auc_ci_low"] < day3["lopo_auc"] < day3["auc_ci_high"]
    assert day3["auc_ci_high"] - day3["auc_ci_low"] < 0.25
    assert 0 < day3["brier_score"] < 0.25  # better than always forecasting 0.5
    bins = json.loads(day3["reliability_json"])
    assert sum(b["patients"] for b in bins) == 160
    # forecasts grow more informative as the rises develop over days 0-3
    card = built.model_card.set_index("study_day")
    assert card.loc[3, "lopo_auc"] > card.loc[0, "lopo_auc"]


def test_the_truly_predictive_analytes_rank_first(large):
    """An analyte's weight is the sum of its two inputs' (concentration and fold change, which
    share what they know): the three analytes of the truth come first, pushing towards severe."""
    _, built = large
    weights = json.loads(built.model_card.set_index("study_day").loc[3, "coefficients_json"])
    by_analyte: dict[str, float] = {}
    for w in weights:
        analyte = w["input"].removeprefix("log10 ").split(" ")[0]
        by_analyte[analyte] = by_analyte.get(analyte, 0.0) + w["coefficient"]
    ranked = sorted(by_analyte, key=lambda a: -abs(by_analyte[a]))
    assert set(ranked[:3]) == set(PREDICTIVE), by_analyte
    assert all(by_analyte[a] > 0 for a in PREDICTIVE)


def test_graded_patients_get_leave_one_out_forecasts_with_their_inputs(large):
    made, built = large
    rows = built.forecasts
    assert set(rows["forecast_basis"]) == {forecast.LEAVE_ONE_OUT}
    assert set(rows["notice"]) == {crs.NOTICE}
    assert len(rows) == 160 * 4 and rows["probability_severe"].between(0, 1).all()
    d1 = rows[(rows["patient_id"] == "P001") & (rows["study_day"] == 1)].iloc[0]
    assert d1["samples_used"] == "D0,D1"
    assert "log10 IL-6 fold over baseline" in d1["inputs_used"].split(",")
    assert bool(d1["severe_crs"]) == bool(made.severe["P001"])


def test_a_forecast_never_uses_a_later_sample():
    made = cohort(40, seed=5)
    before = forecast.forecast_tables(made.folds, made.grades, _signals(made.folds), SETTINGS)
    # every patient's D2 and D3 samples replaced by others' (shuffled), and scaled up
    generator = np.random.default_rng(1)
    later = made.cytokines["study_day"] >= 2
    changed = made.cytokines.copy()
    values = changed.loc[later, "concentration_pg_ml"].to_numpy()
    changed.loc[later, "concentration_pg_ml"] = generator.permutation(values) * 7.0
    folds = pd.concat(
        [crs.fold_changes(g).assign(patient_id=p) for p, g in changed.groupby("patient_id")],
        ignore_index=True,
    )
    after = forecast.forecast_tables(folds, made.grades, _signals(folds), SETTINGS)

    def early(built):
        rows = built.forecasts[built.forecasts["study_day"] <= 1]
        return rows.set_index(["patient_id", "timepoint"])["probability_severe"].sort_index()

    pd.testing.assert_series_equal(early(before), early(after))
    late = before.forecasts["study_day"] == 3
    assert not np.allclose(
        before.forecasts.loc[late, "probability_severe"],
        after.forecasts.loc[late, "probability_severe"],
    )


def test_too_few_outcomes_are_refused_with_the_note():
    made = cohort(12, seed=3)
    n_severe = int(made.severe.sum())
    strict = replace(SETTINGS, forecast_min_severe=n_severe + 1)
    built = forecast.forecast_tables(made.folds, made.grades, _signals(made.folds), strict)
    note = (
        f"not fitted: {n_severe} severe and {12 - n_severe} non-severe graded patient(s); the "
        f"model needs at least {n_severe + 1} severe and 5 non-severe"
    )
    assert (built.forecasts["status"] == "not_fitted").all()
    assert built.forecasts["probability_severe"].isna().all()
    assert built.forecasts["note"].str.startswith(note).all()
    assert (built.model_card["status"] == "not_fitted").all()
    assert built.model_card["lopo_auc"].isna().all()
    model = built.rule_performance.set_index("rule_id").loc[forecast.MODEL_RULE_ID]
    assert model["note"].startswith(note) and pd.isna(model["sensitivity"])


def test_an_outcome_counts_only_once_follow_up_is_complete():
    grades = pd.concat([
        grades_of("P1", severe=False),                  # followed to day 14: not severe
        grades_of("P2", severe=False, last_day=9),      # still in follow-up: not known
        grades_of("P3", severe=True, last_day=6),       # severe on day 5: known already
    ])  # fmt: skip
    outcomes = forecast.patient_outcomes(grades, forecast.outcome_of(SETTINGS))
    assert outcomes["outcome_known"].to_dict() == {"P1": True, "P2": False, "P3": True}
    assert outcomes.loc["P1", "severe"] is False and outcomes.loc["P3", "severe"] is True
    assert outcomes.loc["P3", "onset_day"] == 5 and pd.isna(outcomes.loc["P2", "severe"])


def test_a_patient_without_an_outcome_gets_the_all_patient_model():
    made = cohort(30, seed=8)
    grades = made.grades[~((made.grades["patient_id"] == "P002") & (made.grades["study_day"] > 3))]
    if made.severe["P002"]:
        pytest.skip("P002 must be non-severe for this cohort seed")
    built = forecast.forecast_tables(made.folds, grades, _signals(made.folds), SETTINGS)
    rows = built.forecasts.set_index("patient_id")
    assert set(rows.loc["P002", "forecast_basis"]) == {forecast.ALL_GRADED}
    assert not rows.loc["P002", "outcome_known"].any()
    assert built.model_card.set_index("study_day").loc[3, "n_patients"] == 29


def test_rule_sensitivity_specificity_and_lead_time_by_hand():
    """Window days 0-3. P1 severe from day 2, alerted day 1: true positive, lead 1 day.
    P2 severe from day 1, alerted only on day 3 (after onset): false negative. P3 severe from
    day 3, alerted days 0 and 2: true positive, lead 3 days. P4 not severe, alerted day 0:
    false positive. P5 not severe, alerted on day 5 (outside the window): true negative.
    Sensitivity 2/3, specificity 1/2, median lead time 2 days."""
    outcomes = pd.DataFrame({
        "outcome_known": True, "severe": [True, True, True, False, False],
        "onset_day": [2, 1, 3, None, None],
    }, index=["P1", "P2", "P3", "P4", "P5"])  # fmt: skip
    alerts = [("P1", 1), ("P2", 3), ("P3", 0), ("P3", 2), ("P4", 0), ("P5", 5)]
    signals = pd.DataFrame({
        "patient_id": [p for p, _ in alerts], "study_day": [d for _, d in alerts],
        "rule_id": "r1", "rule_title": "rule one", "rule_source": "a paper", "alert": True,
    })  # fmt: skip
    graded = outcomes["severe"].astype(bool)
    model = forecast.DayModel(3, [], graded, "v", "not fitted: too few")
    table = forecast.rule_performance(signals, pd.DataFrame(), model, outcomes, SETTINGS)
    rule = table.set_index("rule_id").loc["r1"]
    assert (rule["true_positives"], rule["false_negatives"]) == (2, 1)
    assert (rule["false_positives"], rule["true_negatives"]) == (1, 1)
    assert rule["sensitivity"] == pytest.approx(2 / 3) and rule["specificity"] == 0.5
    assert rule["median_lead_time_days"] == 2.0
    assert json.loads(rule["lead_times_json"]) == {"P1": 1.0, "P3": 3.0}


def test_rank_auc_equals_scikit_learns():
    generator = np.random.default_rng(2)
    severe = generator.random(50) < 0.4
    probability = np.round(generator.random(50), 1)  # with ties
    assert forecast.rank_auc(severe, probability) == pytest.approx(
        roc_auc_score(severe, probability)
    )


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="forecast_first_day = 3, forecast_last_day = 1"):
        DerivedSettings(forecast_first_day=3, forecast_last_day=1)
