"""CRS signals: censored fold changes, rules read from a file, ASTCT 2019 grades."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.derived.crs import (
    NOTICE,
    RuleFileError,
    astct_grade,
    crs_grades,
    evaluate_rules,
    fold_bound,
    fold_changes,
    load_rules,
)
from pipelines.derived.settings import SHIPPED_CRS_RULES


def _cytokines(rows: list[tuple[str, int, str, float | None, str, float | None]]) -> pd.DataFrame:
    """(timepoint, day, analyte, pg/mL, censoring, censor limit)"""
    return pd.DataFrame([
        {"timepoint": t, "study_day": d, "analyte": a, "concentration_pg_ml": c,
         "censoring": cens, "censor_limit_pg_ml": lim, "source_sha256": "a" * 64,
         "processed_at": pd.Timestamp("2026-06-01", tz="UTC")}
        for t, d, a, c, cens, lim in rows
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("post", "baseline", "bound"),
    [
        ("none", "none", "exact"),
        ("none", "below_lloq", "at_least"),  # baseline taken at its LLOQ, an upper bound
        ("above_uloq", "none", "at_least"),
        ("above_uloq", "below_lloq", "at_least"),
        ("below_lloq", "none", "at_most"),
        ("below_lloq", "below_lloq", "unknown"),
        ("none", "above_uloq", "at_most"),
    ],
)
def test_fold_change_bounds(post, baseline, bound):
    assert fold_bound(post, baseline) == bound


def test_censored_baseline_uses_the_lloq_and_gives_a_lower_bound():
    folds = fold_changes(_cytokines([
        ("BL", -7, "IL-6", None, "below_lloq", 2.0),
        ("D4", 4, "IL-6", 400.0, "none", None),
        ("D7", 7, "IL-6", None, "below_lloq", 2.0),
    ]))  # fmt: skip
    d4 = folds[folds["timepoint"] == "D4"].iloc[0]
    assert d4["baseline_pg_ml"] == 2.0 and d4["fold_change"] == 200.0
    assert d4["fold_change_bound"] == "at_least"
    assert folds[folds["timepoint"] == "D7"].iloc[0]["fold_change_bound"] == "unknown"


def test_no_baseline_no_fold_changes():
    assert fold_changes(_cytokines([("D4", 4, "IL-6", 40.0, "none", None)])).empty


def _rule_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_fold_rule_needs_two_analytes_in_its_window():
    rules = load_rules(SHIPPED_CRS_RULES)
    assert {r.id for r in rules} == {"fold75_two_cytokines", "fold250_one_cytokine"}
    assert all(r.source for r in rules)
    folds = fold_changes(_cytokines([
        ("BL", -7, "IL-6", 4.0, "none", None), ("BL", -7, "IFN-γ", 5.0, "none", None),
        ("D4", 4, "IL-6", 400.0, "none", None), ("D4", 4, "IFN-γ", 450.0, "none", None),
        ("D14", 14, "IL-6", 400.0, "none", None), ("D14", 14, "IFN-γ", 450.0, "none", None),
        ("D7", 7, "IL-6", 400.0, "none", None), ("D7", 7, "IFN-γ", 50.0, "none", None),
    ]))  # fmt: skip
    signals = evaluate_rules(folds, rules).set_index(["timepoint", "rule_id"])
    assert signals.loc[("D4", "fold75_two_cytokines"), "alert"]
    assert not signals.loc[("D7", "fold75_two_cytokines"), "alert"]  # only IL-6 >= 75
    assert not signals.loc[("D14", "fold75_two_cytokines"), "alert"]  # outside days 0-7
    assert not signals.loc[("D4", "fold250_one_cytokine"), "alert"]  # 100-fold, 90-fold
    assert set(signals["notice"]) == {NOTICE}


def test_concentration_rule_ignores_values_below_lloq(tmp_path):
    path = _rule_file(tmp_path, """
[[rule]]
id = "early_il6"
title = "IL-6 high early"
kind = "concentration"
source = "a test source"
window_days = [0, 2]
thresholds_pg_ml = { "IL-6" = 100 }
""")  # fmt: skip
    folds = fold_changes(_cytokines([
        ("BL", -7, "IL-6", 4.0, "none", None),
        ("D1", 1, "IL-6", None, "above_uloq", 500.0),
        ("D2", 2, "IL-6", None, "below_lloq", 200.0),
    ]))  # fmt: skip
    signals = evaluate_rules(folds, load_rules(path)).set_index("timepoint")
    assert signals.loc["D1", "alert"] and not signals.loc["D2", "alert"]


def test_a_rule_without_a_source_is_refused(tmp_path):
    path = _rule_file(tmp_path, """
[[rule]]
id = "x"
title = "no source"
kind = "fold_change"
window_days = [0, 3]
min_fold = 10
""")  # fmt: skip
    with pytest.raises(RuleFileError, match="source"):
        load_rules(path)


@pytest.mark.parametrize(
    ("fever", "hypotension", "oxygen", "grade"),
    [
        (False, "one_vasopressor", "none", 0),
        (True, "none", "none", 1),
        (True, "fluids", "none", 2),
        (True, "none", "low_flow", 2),
        (True, "one_vasopressor", "low_flow", 3),
        (True, "none", "high_flow", 3),
        (True, "multiple_vasopressors", "none", 4),
        (True, "fluids", "positive_pressure", 4),
    ],
)
def test_astct_2019_grade(fever, hypotension, oxygen, grade):
    assert astct_grade(fever, False, hypotension, oxygen)[0] == grade


def test_grades_from_observations_keep_their_scale():
    observations = pd.DataFrame({
        "patient_id": ["P1", "P1"], "study_day": [1, 3], "temperature_c": [38.6, 39.2],
        "hypotension": ["no", "yes"], "vasopressors": [0, 1],
        "oxygen_support": ["none", "low_flow"], "fever_masked": ["no", "no"],
    })  # fmt: skip
    grades = crs_grades(observations, date(2026, 3, 9))
    assert list(grades["crs_grade"]) == [1, 3]
    assert list(grades["hypotension"]) == ["none", "one_vasopressor"]
    assert grades["grade_scale"].str.startswith("ASTCT 2019").all()
    assert list(grades["observation_date"]) == [date(2026, 3, 10), date(2026, 3, 12)]


def test_unrecognised_and_unmeasured_analytes_are_left_out_of_fold_changes_and_rules():
    cytokines = _cytokines([
        ("BL", -7, "IL-6", 5.0, "none", None),
        ("D4", 4, "IL-6", 500.0, "none", None),
        ("BL", -7, "Zorbin", 1.0, "none", None),
        ("D4", 4, "Zorbin", 900.0, "none", None),
        ("BL", -7, "IL-8", None, "not_measured", None),
        ("D4", 4, "IL-8", 300.0, "none", None),
    ]).assign(analyte_recognised=[True, True, False, False, True, True])  # fmt: skip
    folds = fold_changes(cytokines)
    assert folds["analyte"].tolist() == ["IL-6", "IL-6"]
    assert folds.set_index("timepoint").loc["D4", "fold_change"] == 100.0
    only_unknown = cytokines[cytokines["analyte"] == "Zorbin"]
    assert fold_changes(only_unknown).empty
    assert evaluate_rules(fold_changes(only_unknown), load_rules(SHIPPED_CRS_RULES)).empty
