"""The thresholds the validation suites check, from the same settings the assay libraries use."""

from __future__ import annotations

from qpcr.settings import QpcrSettings
from validation.thresholds import QpcrRunThresholds, SuiteThresholds


def suite_thresholds(qpcr: QpcrSettings) -> SuiteThresholds:
    """What the suites hold a table to, taken from the lab's qPCR QC settings."""
    return SuiteThresholds(
        qpcr_runs=QpcrRunThresholds(
            efficiency_min_pct=qpcr.efficiency_min_pct,
            efficiency_max_pct=qpcr.efficiency_max_pct,
            r_squared_min=qpcr.r_squared_min,
            ntc_max_amplified=qpcr.ntc_max_amplified,
        )
    )
