"""Levey-Jennings limits and Westgard outcomes over run series built like qpcr_runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.derived.qc_trends import (
    cba_measurements,
    levey_jennings,
    mean_recovery_pct,
    qpcr_measurements,
)
from pipelines.derived.settings import ControlTarget, DerivedSettings


def _runs(slopes: list[float], verdicts: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [f"run{i:02d}" for i in range(len(slopes))], "target": "CAR",
        "run_started": pd.date_range("2026-04-01", periods=len(slopes), freq="D", tz="UTC"),
        "processed_at": pd.Timestamp("2026-06-01", tz="UTC"), "slope": slopes,
        "efficiency_pct": None, "positive_control_copies_per_reaction": None,
        "source_sha256": "b" * 64, "qc_verdict": verdicts or ["PASS"] * len(slopes),
    })  # fmt: skip


def test_assigned_targets_judge_every_run():
    settings = DerivedSettings(qc_targets={"qpcr:CAR:slope": ControlTarget(-3.33, 0.05)})
    trends = levey_jennings(qpcr_measurements(_runs([-3.33, -3.32, -3.10, -3.34])), settings)
    assert list(trends["limits_basis"].unique()) == ["settings"]
    assert trends.loc[2, "westgard_status"] == "reject"
    assert "1-3s" in trends.loc[2, "westgard_violations"]
    assert list(trends["run_index"]) == [1, 2, 3, 4]


def test_limits_from_the_series_first_runs_catch_a_drift():
    baseline = [-3.33, -3.35, -3.31, -3.34, -3.32, -3.33, -3.36, -3.30]
    drift = [-3.29, -3.28, -3.29, -3.28]
    settings = DerivedSettings(qc_baseline_runs=8)
    trends = levey_jennings(qpcr_measurements(_runs(baseline + drift)), settings)
    assert set(trends["limits_basis"]) == {"series"}
    assert "4-1s" in trends["westgard_violations"].iloc[-1]
    assert trends["westgard_status"].iloc[-1] == "reject"


def test_a_failed_run_is_charted_and_judged_with_its_verdict_but_never_sets_the_limits():
    baseline = [-3.33, -3.35, -3.31, -3.34, -3.32, -3.33, -3.36, -3.30]
    slopes = baseline[:2] + [-4.15] + baseline[2:]
    verdicts = ["PASS", "PASS", "FAIL"] + ["PASS"] * 6
    trends = levey_jennings(qpcr_measurements(_runs(slopes, verdicts)), DerivedSettings())
    assert trends["run_verdict"].tolist() == verdicts
    assert trends["target_mean"].iloc[0] == pytest.approx(sum(baseline) / 8)
    assert trends.loc[2, "value"] == -4.15 and trends.loc[2, "westgard_status"] == "reject"


def test_short_series_are_charted_not_judged():
    trends = levey_jennings(qpcr_measurements(_runs([-3.33, -3.40])), DerivedSettings())
    assert set(trends["westgard_status"]) == {"not_evaluated"}
    assert trends["target_sd"].isna().all()


def test_bead_array_recovery_series():
    recovery = json.dumps([{"recovery_pct": 96.0}, {"recovery_pct": 104.0}, {"recovery_pct": None}])
    assert mean_recovery_pct(recovery) == pytest.approx(100.0)
    curves = pd.DataFrame({
        "run_id": ["p1"], "instrument_format": ["legendplex-xlsx"], "analyte": ["IL-6"],
        "recovery_json": [recovery], "r_squared": [0.999], "verdict": ["PASS"],
        "processed_at": [pd.Timestamp("2026-06-01", tz="UTC")], "source_sha256": ["c" * 64],
    })  # fmt: skip
    controls = set(cba_measurements(curves)["control"])
    assert controls == {
        "cba:legendplex-xlsx:IL-6:mean_recovery_pct",
        "cba:legendplex-xlsx:IL-6:r_squared",
    }


def test_a_standard_recovered_at_zero_counts_in_the_mean():
    """0 % recovery is a standard that read nothing: the worst value, not a missing one."""
    recovery = json.dumps([{"recovery_pct": 0.0}, {"recovery_pct": 90.0}, {"recovery_pct": None}])
    assert mean_recovery_pct(recovery) == pytest.approx(45.0)
    assert mean_recovery_pct(json.dumps([{"recovery_pct": None}])) is None


def test_a_series_of_failed_runs_only_has_no_limits():
    trends = levey_jennings(
        qpcr_measurements(_runs([-4.1, -4.2], ["FAIL", "FAIL"])), DerivedSettings()
    )
    slope = trends[trends["control"] == "qpcr:CAR:slope"]
    assert slope["target_mean"].isna().all() and slope["target_sd"].isna().all()
    assert set(slope["westgard_status"]) == {"not_evaluated"}
