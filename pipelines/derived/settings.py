"""Settings of the derived tables: the `[derived]` table of `cartflow.toml`, every key optional.

```toml
[derived]
aplasia_threshold_cells_per_ul = 10
crs_rules = "crs_rules.toml"          # relative to the lab home; default: the shipped rule file
clinical_observations = "clinical/crs_observations.csv"
forecast_first_day = 0                # the early window the CRS forecast is made in (study days)
forecast_last_day = 3
forecast_severe_grade = 3             # outcome: CRS grade >= this (crs_grades, ASTCT 2019) ...
forecast_follow_up_days = 14          # ... on days 0-14; a non-severe outcome counts from day 14
forecast_min_severe = 5               # no model is fitted with fewer severe graded patients
forecast_min_non_severe = 5           # ... or fewer non-severe ones (the note says so)
forecast_penalty_c = 0.5              # inverse L2 penalty of the logistic regression
forecast_bootstrap_resamples = 1000   # for the 95 % interval of the leave-one-patient-out AUC
forecast_reliability_bins = 5
forecast_alert_probability = 0.5      # the model "alerts" at this forecast, to compare with rules

[derived.qc_targets."qpcr:CAR:slope"]  # optional fixed Levey-Jennings mean and SD of a control
mean = -3.33
sd = 0.05
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assaykit import settings_from_dict

SHIPPED_CRS_RULES = Path(__file__).resolve().parent.parent / "rules" / "crs_rules.toml"


@dataclass(frozen=True)
class ControlTarget:
    """A control's assigned Levey-Jennings mean and SD (e.g. from the lab's QC material sheet)."""

    mean: float
    sd: float

    def __post_init__(self) -> None:
        if self.sd <= 0:
            raise ValueError(f"sd = {self.sd:g}: expected a number above 0")


@dataclass(frozen=True)
class DerivedSettings:
    aplasia_threshold_cells_per_ul: float = 10.0
    """CD19+ B cells/uL below which a patient counts as B-cell aplastic."""
    aplasia_threshold_pct_of_lymphocytes: float = 1.0
    """Used only where a tube had no counting beads, so cells/uL are unknown."""
    b_cell_populations: tuple[str, ...] = ("CD19+ B cells", "CD19+", "B cells")
    """Population names (from the gating template) that mean CD19+ B cells; the first present wins."""
    lymphocyte_populations: tuple[str, ...] = ("Lymphocytes",)
    car_positive_populations: tuple[str, ...] = ("CAR+ T cells", "CAR+")
    cd3_populations: tuple[str, ...] = ("CD3+ T cells", "CD3+")
    auc_end_day: int = 28
    crs_rules: str | None = None
    """A rule file relative to the lab home; None uses the shipped `pipelines/rules/crs_rules.toml`."""
    clinical_observations: str = "clinical/crs_observations.csv"
    qc_min_runs_for_limits: int = 5
    """Without assigned targets, Levey-Jennings limits come from the first runs of a series once
    there are at least this many; fewer runs are charted but not judged."""
    qc_baseline_runs: int = 20
    flow_control_pattern: str = r"^(QC|CTRL|CONTROL)[-_ ]?"
    """Flow tubes whose sample name matches are control material, trended in qc_trends."""
    qc_targets: dict[str, ControlTarget] = field(default_factory=dict)
    forecast_first_day: int = 0
    """First study day of the early window the CRS forecast is made in (pipelines/derived/forecast.py)."""
    forecast_last_day: int = 3
    forecast_severe_grade: int = 3
    """Severe CRS: a `crs_grades` grade of at least this (ASTCT 2019)."""
    forecast_follow_up_days: int = 14
    """Severe CRS counts on study days 0 to this; a patient without it is graded non-severe only
    once their observations reach this day."""
    forecast_min_severe: int = 5
    """No model is fitted while fewer severe graded patients exist (the rows say so)."""
    forecast_min_non_severe: int = 5
    forecast_penalty_c: float = 0.5
    """Inverse strength of the logistic regression's L2 penalty (scikit-learn's C)."""
    forecast_bootstrap_resamples: int = 1000
    forecast_reliability_bins: int = 5
    forecast_alert_probability: float = 0.5
    """The forecast counts as an alert from this probability on, to compare it with the rules."""

    def __post_init__(self) -> None:
        positive = {
            "aplasia_threshold_cells_per_ul": self.aplasia_threshold_cells_per_ul,
            "aplasia_threshold_pct_of_lymphocytes": self.aplasia_threshold_pct_of_lymphocytes,
            "auc_end_day": self.auc_end_day,
            "forecast_severe_grade": self.forecast_severe_grade,
            "forecast_follow_up_days": self.forecast_follow_up_days,
            "forecast_min_severe": self.forecast_min_severe,
            "forecast_min_non_severe": self.forecast_min_non_severe,
            "forecast_penalty_c": self.forecast_penalty_c,
            "forecast_bootstrap_resamples": self.forecast_bootstrap_resamples,
            "forecast_reliability_bins": self.forecast_reliability_bins,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} = {value:g}: expected a number above 0")
        if not 2 <= self.qc_min_runs_for_limits <= self.qc_baseline_runs:
            raise ValueError(
                f"qc_min_runs_for_limits = {self.qc_min_runs_for_limits}, qc_baseline_runs = "
                f"{self.qc_baseline_runs}: expected 2 <= qc_min_runs_for_limits <= qc_baseline_runs"
            )
        if not 0 <= self.forecast_first_day <= self.forecast_last_day:
            raise ValueError(
                f"forecast_first_day = {self.forecast_first_day}, forecast_last_day = "
                f"{self.forecast_last_day}: expected 0 <= forecast_first_day <= forecast_last_day"
            )
        if not 0 < self.forecast_alert_probability < 1:
            raise ValueError(
                f"forecast_alert_probability = {self.forecast_alert_probability:g}: expected a "
                "number between 0 and 1"
            )
        try:
            re.compile(self.flow_control_pattern)
        except re.error as err:
            raise ValueError(
                f"flow_control_pattern = {self.flow_control_pattern!r}: not a valid regular "
                f"expression ({err})"
            ) from err

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DerivedSettings:
        """Settings from a `[derived]` table (lists become tuples, each `qc_targets` table a
        ControlTarget; an unknown key is an error)."""
        return settings_from_dict(
            cls,
            values,
            {
                "qc_targets": lambda given: {
                    n: settings_from_dict(ControlTarget, t) for n, t in given.items()
                }
            },
        )

    @classmethod
    def load(cls, home: Path) -> DerivedSettings:
        """The `[derived]` section of the lab's settings, the whole file checked."""
        from pipelines.settings import Settings  # it holds this class: imported when called

        return Settings.load(home).derived

    def crs_rules_path(self, home: Path) -> Path:
        return home / self.crs_rules if self.crs_rules else SHIPPED_CRS_RULES
