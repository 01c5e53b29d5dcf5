"""The CRS forecast's pages (model card, patient and cohort sections) built through the real
recompute step (`recompute_forecasts`, validated by Great Expectations) from a synthetic cohort,
then opened in headless Chromium."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipelines.derived import crs
from pipelines.derived.recompute import (
    DERIVED_FILE,
    RecomputeOutcome,
    _with_provenance,
    recompute_forecasts,
)
from pipelines.derived.settings import SHIPPED_CRS_RULES, DerivedSettings
from pipelines.home import LabHome
from pipelines.reports import write_cohort_reports, write_patient_reports
from pipelines.reports.crs_model import observed_outcome
from pipelines.thresholds import suite_thresholds
from pipelines.warehouse import conform, connect, write_source
from qpcr.analysis import QpcrSettings
from tests.browser import inspect, png_is_blank
from tests.derived.forecast_cohort import cohort
from validation.runner import Validator
from validation.schemas import TABLES

SETTINGS = DerivedSettings(forecast_bootstrap_resamples=200)


def _lab(root: Path, patients: int, settings: DerivedSettings) -> tuple[LabHome, RecomputeOutcome]:
    """A lab home whose warehouse holds a synthetic cohort's per-patient CRS tables, with the
    forecast recomputed over them and the pages written."""
    home = LabHome(root)
    made = cohort(patients, seed=4)
    rules = crs.load_rules(SHIPPED_CRS_RULES)
    frames = {"cytokine_fold_changes": [], "crs_signals": [], "crs_grades": []}
    for patient, folds in made.folds.groupby("patient_id"):
        frames["cytokine_fold_changes"].append(folds)
        frames["crs_signals"].append(crs.evaluate_rules(folds, rules).assign(patient_id=patient))
    frames["crs_grades"].append(made.grades.assign(
        timepoint=[f"D{d}" for d in made.grades["study_day"]],
        fever=made.grades["crs_grade"] > 0, hypotension="none", oxygen_support="none",
        grade_scale=crs.ASTCT_2019, notice=crs.NOTICE,
    ))  # fmt: skip
    now = datetime.now(UTC)
    tables = {
        name: conform(_with_provenance(pd.concat(parts, ignore_index=True), now), TABLES[name])
        for name, parts in frames.items()
    }
    write_source(home.warehouse, DERIVED_FILE, tables)
    outcome = RecomputeOutcome(patients=sorted(made.folds["patient_id"].unique()))
    validator = Validator(home.gx, suite_thresholds(QpcrSettings()))
    recompute_forecasts(connect(home.warehouse), settings, validator, outcome, [], now,
                        home.warehouse)  # fmt: skip
    write_patient_reports(home, outcome.patients[:2])
    write_cohort_reports(home)
    return home, outcome


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[LabHome, RecomputeOutcome]:
    return _lab(tmp_path_factory.mktemp("fitted"), 40, SETTINGS)


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[LabHome, RecomputeOutcome]:
    strict = replace(SETTINGS, forecast_min_severe=100)
    home = tmp_path_factory.mktemp("refused")
    (home / "cartflow.toml").write_text("[derived]\nforecast_min_severe = 100\n")
    return _lab(home, 12, strict)


def test_the_recompute_writes_validated_forecast_tables(fitted):
    home, outcome = fitted
    assert outcome.failures == []
    assert outcome.rows == {"crs_forecasts": 160, "crs_model_card": 4, "crs_rule_performance": 3}
    con = connect(home.warehouse)
    card = con.execute("SELECT status, n_patients FROM crs_model_card").fetchall()
    assert card == [("fitted", 40)] * 4
    # a forecast traces to the patient's own samples up to its timepoint, no later one
    (derived_from,) = con.execute(
        "SELECT derived_from FROM crs_forecasts WHERE patient_id = 'P001' AND timepoint = 'D0'"
    ).fetchone()
    assert derived_from.split(",") == [f"P001-{t}".ljust(64, "0") for t in ("BL", "D0")]


@pytest.mark.parametrize("page", ["crs_model", "cohort", "patient_P001"])
def test_forecast_pages_open_offline_and_draw_every_plot(browser, fitted, page):
    home, _ = fitted
    check = inspect(browser, home.reports / f"{page}.html")
    assert check.errors == []
    assert all(url.startswith("file://") for url in check.requested), check.requested
    assert check.plots >= 1 and check.undrawn == []
    assert not png_is_blank(check.screenshot)


def test_the_pages_say_what_the_model_is_and_link_to_each_other(fitted):
    home, _ = fitted
    card = (home.reports / "crs_model.html").read_text()
    assert "Published rules on the same patients and early window" in card
    assert "&gt;= 75-fold rise over baseline in at least two cytokines" in card
    assert "forecast probability &gt;= 0.5" in card
    assert 'href="crs_model.html"' in (home.reports / "cohort.html").read_text()
    patient = (home.reports / "patient_P001.html").read_text()
    assert "CRS forecast" in patient and 'href="crs_model.html"' in patient
    assert "P001: CRS forecast, rule alerts and observed grade" in patient


def test_a_refused_model_says_so_on_every_page(browser, refused):
    home, outcome = refused
    assert outcome.failures == []
    card = (home.reports / "crs_model.html").read_text()
    assert "The model was not fitted:" in card and "needs at least 100 severe" in card
    assert "needs at least 100 severe" in (home.reports / "patient_P001.html").read_text()
    for page in ("crs_model", "cohort", "patient_P001"):
        check = inspect(browser, home.reports / f"{page}.html")
        assert check.errors == [] and check.undrawn == []


@pytest.mark.parametrize(
    ("known", "severe", "onset", "words"),
    [
        (False, pd.NA, pd.NA, "not known yet (follow-up not complete)"),
        (True, True, 5, "severe CRS from day 5"),
        (True, False, pd.NA, "no severe CRS"),
    ],
)
def test_the_observed_outcome_in_words(known, severe, onset, words):
    row = pd.Series({"outcome_known": known, "severe_crs": severe, "severe_onset_day": onset})
    assert observed_outcome(row) == words
