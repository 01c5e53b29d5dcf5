"""The suites check a qPCR run marked PASS against the thresholds the pipeline hands in, which
come from the same `[qpcr]` settings the library decides QC with."""

from __future__ import annotations

from pipelines.thresholds import suite_thresholds
from qpcr.settings import QpcrSettings
from validation.suites import suite_expectations


def _passed_run_rules(settings: QpcrSettings) -> dict[str, tuple[object, object, str]]:
    """Per column of qpcr_runs: the limits and the rule of its PASS-only range check."""
    rules = {}
    for expectation in suite_expectations("qpcr_runs", suite_thresholds(settings)):
        kwargs = expectation.configuration.kwargs
        if kwargs.get("row_condition") is not None and "min_value" in kwargs:
            rules[kwargs["column"]] = (
                kwargs["min_value"],
                kwargs["max_value"],
                expectation.meta["rule"],
            )
    return rules


def test_a_passed_run_is_held_to_the_labs_qc_window():
    settings = QpcrSettings(
        efficiency_min_pct=92.5, efficiency_max_pct=105.0, r_squared_min=0.99, ntc_max_amplified=1
    )
    assert _passed_run_rules(settings) == {
        "efficiency_pct": (
            92.5,
            105.0,
            "a run that passed QC has its amplification efficiency within 92.5-105 %",
        ),
        "r_squared": (0.99, 1.0, "a run that passed QC has its standard curve R2 >= 0.99"),
        "ntc_amplified": (
            0,
            1,
            "a run that passed QC has at most 1 no-template control(s) amplified",
        ),
    }


def test_the_default_window_is_the_published_one():
    rules = _passed_run_rules(QpcrSettings())
    assert rules["efficiency_pct"][:2] == (90.0, 110.0)
    assert rules["r_squared"][:2] == (0.98, 1.0)
