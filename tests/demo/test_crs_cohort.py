"""The demo's generated CRS cohort (`pipelines/demo/crs_cohort.py`): its truth is consistent with
the outcomes it draws, and the clinical observations it writes grade as the truth says."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines import cli
from pipelines.demo import crs_cohort
from pipelines.demo.cohort_files import write_observations
from pipelines.demo.crs_cohort import (
    EARLY_DAYS,
    GENERATOR,
    PREDICTIVE_ANALYTES,
    RISE_SHAPE,
    cohort_truth,
    early_probabilities,
    expected_auc,
    generate_cohort,
)
from pipelines.demo.generate import COHORT_TRUTH_FILE, write_crs_cohort
from pipelines.derived import crs
from pipelines.home import LabHome


@pytest.fixture(scope="module")
def large():
    return generate_cohort(999, seed=11)


def test_same_seed_same_cohort_and_a_small_cohort_is_the_start_of_a_larger_one():
    small, again, larger = generate_cohort(40), generate_cohort(40), generate_cohort(200)
    assert small.truth() == again.truth()
    assert larger.truth()["patients"]["C040"] == small.truth()["patients"]["C040"]
    assert generate_cohort(40, seed=8).truth()["patients"] != small.truth()["patients"]


def test_prevalence_agrees_with_the_risks_it_was_drawn_with(large):
    risks = np.array([p.risk for p in large.patients])
    spread = math.sqrt((risks * (1 - risks)).sum())
    assert abs(large.severe_count - risks.sum()) < 4 * spread
    assert 0.15 < large.severe_count / len(large.patients) < 0.40


@pytest.mark.parametrize("timepoint", list(EARLY_DAYS))
def test_early_probabilities_are_calibrated_on_the_drawn_outcomes(large, timepoint):
    """P(severe | data so far) averages to the outcome rate, overall and among the highest."""
    probability = np.array([p.early_probability[timepoint] for p in large.patients])
    severe = np.array([p.severe for p in large.patients])
    for chosen in (np.ones_like(severe), probability >= np.quantile(probability, 0.75)):
        expected, spread = (
            probability[chosen].sum(),
            math.sqrt((probability[chosen] * (1 - probability[chosen])).sum()),
        )
        assert abs(severe[chosen].sum() - expected) < 4 * spread


def test_the_forecast_sharpens_over_the_early_days(large):
    expected = [large.expected_bayes_optimal_auc(t) for t in EARLY_DAYS]
    assert expected == sorted(expected)
    assert expected[0] < 0.65 and expected[-1] > 0.75
    assert large.bayes_optimal_auc("D3") == pytest.approx(expected[-1], abs=0.04)


def test_early_probability_agrees_with_monte_carlo_over_the_prior():
    """The quadrature posterior against sampling peaks from the prior and weighting each by the
    likelihood of the observed early rises."""
    rng = np.random.default_rng(3)
    high = {a: GENERATOR[a].mean_log_fold + 1.5 * GENERATOR[a].sd_log_fold for a in GENERATOR}
    observed = {t: {a: RISE_SHAPE[d] * high[a] for a in high} for t, d in EARLY_DAYS.items()}
    draws = 400_000
    peaks = {a: rng.normal(GENERATOR[a].mean_log_fold, GENERATOR[a].sd_log_fold, draws)
             for a in PREDICTIVE_ANALYTES}  # fmt: skip
    score = sum(
        GENERATOR[a].weight * (peaks[a] - GENERATOR[a].mean_log_fold) / GENERATOR[a].sd_log_fold
        for a in PREDICTIVE_ANALYTES
    )
    risk = 1 / (1 + np.exp(-(crs_cohort.RISK_INTERCEPT + score)))
    quadrature = early_probabilities(observed)
    log_weight = np.zeros(draws)
    for timepoint, day in EARLY_DAYS.items():
        for a in PREDICTIVE_ANALYTES:
            residual = observed[timepoint][a] - RISE_SHAPE[day] * peaks[a]
            log_weight -= residual**2 / (2 * crs_cohort.DAY_NOISE_SD**2)
        weight = np.exp(log_weight - log_weight.max())
        assert quadrature[timepoint] == pytest.approx(
            (weight * risk).sum() / weight.sum(), abs=0.01
        )
    prior_rate = risk.mean()
    assert quadrature["D3"] > quadrature["D1"] > quadrature["D0"] > prior_rate


def test_expected_auc_by_hand():
    assert expected_auc(np.array([1.0, 0.0])) == 1.0
    assert expected_auc(np.array([0.5, 0.5])) == 0.5
    # pairs: first severe and second not 0.8 * 0.8 (concordant), the reverse 0.2 * 0.2
    assert expected_auc(np.array([0.8, 0.2])) == pytest.approx(0.64 / 0.68)


def test_bayes_optimal_auc_counts_concordant_pairs():
    cohort = generate_cohort(40)
    scores = {p.patient_id: p.early_probability["D2"] for p in cohort.patients}
    severe = [p.patient_id for p in cohort.patients if p.severe]
    other = [p.patient_id for p in cohort.patients if not p.severe]
    concordant = sum(
        1.0 if scores[s] > scores[o] else 0.5 if scores[s] == scores[o] else 0.0
        for s in severe
        for o in other
    )
    assert cohort.bayes_optimal_auc("D2") == pytest.approx(concordant / (len(severe) * len(other)))


def test_observations_grade_as_the_truth_says(tmp_path):
    """The written CSV, read and graded by the pipeline's own ASTCT code: each patient's worst
    grade and the first day of grade >= 3 are the generator's, after the early window."""
    cohort = generate_cohort(200)
    frame = crs.read_observations(write_observations(tmp_path / "obs.csv", cohort))
    for patient in cohort.patients:
        grades = crs.crs_grades(frame[frame["patient_id"] == patient.patient_id], None)
        assert list(grades["study_day"]) == list(crs_cohort.OBSERVED_DAYS)
        assert grades["crs_grade"].max() == patient.max_grade
        severe_days = grades.loc[grades["crs_grade"] >= 3, "study_day"]
        first = int(severe_days.min()) if len(severe_days) else None
        assert first == patient.severe_onset_day
        assert (first is not None) == patient.severe
        if patient.severe:
            assert first > max(EARLY_DAYS.values())


def test_truth_file_and_summary_line(tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    cohort, files = write_crs_cohort(home.inbox, 12, 7, lambda path: None)
    truth = json.loads((home.root / COHORT_TRUTH_FILE).read_text(encoding="utf-8"))
    assert truth == json.loads(json.dumps(cohort_truth(12, 7)))
    assert truth["predictive_analytes"] == ["IL-6", "IFN-γ", "sgp130"]
    assert set(truth["patients"]) == {f"C{k:03d}" for k in range(1, 13)}
    assert set(truth["patients"]["C001"]["early_probability"]) == set(EARLY_DAYS)
    assert [f.name for f in files[1:]] == sorted(f.name for f in files[1:])
    assert len(files) == 1 + 3  # the manifest, then plates of 5, 5 and 2 patients
    severe = sum(p["severe"] for p in truth["patients"].values())
    line = cohort.summary_line()
    assert line.startswith(f"CRS cohort: 12 patients, {severe} with severe CRS; Bayes-optimal AUC")
    assert f"{truth['bayes_optimal_auc']['D3']:.2f} at D3" in line
    assert (home.root / "clinical" / "crs_observations.csv").is_file()


@pytest.mark.parametrize("patients", ["-1", "1000"])
def test_demo_refuses_a_cohort_size_out_of_range(tmp_path, patients):
    result = CliRunner().invoke(
        cli.app, ["demo", "--home", str(tmp_path / "lab"), "--patients", patients]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "lab" / "inbox").exists()


def test_observation_rows_are_one_per_patient_and_day(tmp_path):
    cohort = generate_cohort(3)
    frame = pd.read_csv(write_observations(tmp_path / "obs.csv", cohort))
    assert len(frame) == 3 * len(crs_cohort.OBSERVED_DAYS)
    assert not frame.duplicated(["patient_id", "study_day"]).any()
