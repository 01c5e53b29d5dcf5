"""The lab's QC thresholds the suites check a table against, handed in by the caller.

Acceptance is decided in the assay libraries; the suites check that what a library marked as
passed really lies within the same thresholds, so a bug in a library is caught before its rows
reach the warehouse. The pipeline builds these from the lab's settings
(`pipelines.thresholds.suite_thresholds`), so the suites and the libraries use one set of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QpcrRunThresholds:
    """The standard-curve and NTC window a qPCR run marked PASS lies in."""

    efficiency_min_pct: float
    efficiency_max_pct: float
    r_squared_min: float
    ntc_max_amplified: int
    """No-template controls allowed to amplify on a passing plate."""


@dataclass(frozen=True)
class SuiteThresholds:
    """Every threshold a suite takes, by the table it checks."""

    qpcr_runs: QpcrRunThresholds
