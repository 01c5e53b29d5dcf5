"""Levey-Jennings series of run controls, judged with Westgard rules: the `qc_trends` table.

Controls followed across runs (one series each, in run order):

- qPCR, per target: standard-curve slope, amplification efficiency and, where the plate had one,
  the positive control's copies per reaction (`qpcr_runs`);
- bead arrays, per kit format and analyte: mean back-calculated recovery of the standards and the
  curve's R2 (`cba_curves`);
- flow, per panel and population: % of parent in control-material tubes, recognised by their
  sample name (`flow_control_pattern` setting).

Limits are the control's assigned mean and SD from the settings when given; otherwise the mean and
SD of the series' first runs (up to `qc_baseline_runs`) once it has `qc_min_runs_for_limits`
runs. Shorter series are charted but not judged (`not_evaluated`).

Runs that failed QC are in their series with `run_verdict` FAIL (a qPCR plate quarantined for its
curve or NTC keeps its figures in `qpcr_runs`), so a drift shows where it began; they are judged
against the limits but never make them: only runs that did not fail count towards a series' own
mean and SD.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from pipelines.derived import westgard
from pipelines.derived.settings import DerivedSettings

MEASUREMENT_COLUMNS = [
    "control", "assay", "metric", "unit", "run_id", "run_time", "value", "source_sha256",
    "run_verdict",
]  # fmt: skip
FAILED_RUN = "FAIL"
"""The `run_verdict` of a run that failed its QC (qPCR plate, bead-array curve)."""
QPCR_METRICS = {
    "slope": "Cq per log10 copies",
    "efficiency_pct": "%",
    "positive_control_copies_per_reaction": "copies per reaction",
}


def _run_time(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """When the run happened: the instrument's start time, else when the file was processed."""
    processed = pd.to_datetime(frame["processed_at"], utc=True)
    if column is None or column not in frame:
        return processed
    return pd.to_datetime(frame[column], utc=True).fillna(processed)


def qpcr_measurements(runs: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for metric, unit in QPCR_METRICS.items():
        rows = runs[runs[metric].notna()]
        parts.append(pd.DataFrame({
            "control": "qpcr:" + rows["target"] + ":" + metric, "assay": "qpcr",
            "metric": metric, "unit": unit, "run_id": rows["run_id"],
            "run_time": _run_time(rows, "run_started"), "value": rows[metric].astype(float),
            "source_sha256": rows["source_sha256"], "run_verdict": rows["qc_verdict"],
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def mean_recovery_pct(recovery_json: str | None) -> float | None:
    """Mean back-calculated recovery (%) over a curve's standards, from `cba_curves`."""
    if not recovery_json:
        return None
    values = [s.get("recovery_pct") for s in json.loads(recovery_json)]
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def cba_measurements(curves: pd.DataFrame) -> pd.DataFrame:
    prefix = "cba:" + curves["instrument_format"] + ":" + curves["analyte"] + ":"
    recovery = curves["recovery_json"].map(mean_recovery_pct)
    common = {"assay": "cba", "run_id": curves["run_id"], "run_time": _run_time(curves, None),
              "source_sha256": curves["source_sha256"],
              "run_verdict": curves["verdict"]}  # fmt: skip
    parts = [
        pd.DataFrame({**common, "control": prefix + "mean_recovery_pct",
                      "metric": "mean_recovery_pct", "unit": "%", "value": recovery}),
        pd.DataFrame({**common, "control": prefix + "r_squared", "metric": "r_squared",
                      "unit": "", "value": curves["r_squared"]}),
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def flow_measurements(
    populations: pd.DataFrame, samples: pd.DataFrame, control_pattern: str
) -> pd.DataFrame:
    pattern = re.compile(control_pattern, re.IGNORECASE)
    is_control = samples["sample_name"].fillna("").map(lambda n: bool(pattern.search(n)))
    tubes = samples.loc[is_control.astype(bool)]
    tube_keys = ["source_sha256", "dataset"]
    rows = populations.merge(tubes[[*tube_keys, "sample_name", "acquired_at"]], on=tube_keys)
    rows = rows[rows["pct_parent"].notna()]
    return pd.DataFrame({
        "control": "flow:" + rows["panel"] + ":" + rows["population"] + ":pct_parent",
        "assay": "flow", "metric": "pct_parent", "unit": "% of parent",
        "run_id": rows["sample_name"] + "@" + rows["source_sha256"].str[:12],
        "run_time": _run_time(rows, "acquired_at"), "value": rows["pct_parent"],
        "source_sha256": rows["source_sha256"], "run_verdict": None,
    })  # fmt: skip


def limits(
    control: str, values: np.ndarray, settings: DerivedSettings
) -> tuple[float | None, float | None, str]:
    """(mean, SD, basis) the series is judged against."""
    if control in settings.qc_targets:
        target = settings.qc_targets[control]
        return target.mean, target.sd, "settings"
    if len(values) >= settings.qc_min_runs_for_limits:
        baseline = values[: settings.qc_baseline_runs]
        sd = float(np.std(baseline, ddof=1))
        if sd > 0:
            return float(np.mean(baseline)), sd, "series"
    return (float(np.mean(values)) if len(values) else None), None, "insufficient_history"


def levey_jennings(measurements: pd.DataFrame, settings: DerivedSettings) -> pd.DataFrame:
    """The `qc_trends` assay columns: run order, limits, z-scores and Westgard outcome."""
    series = []
    for control, group in measurements.groupby("control", sort=True):
        group = group.sort_values(["run_time", "run_id"], kind="stable").reset_index(drop=True)
        not_failed = group.loc[group["run_verdict"] != FAILED_RUN, "value"]
        mean, sd, basis = limits(control, not_failed.to_numpy(float), settings)
        # no limit is NaN, not None: series with and without limits then concatenate as floats
        group = group.assign(
            run_index=np.arange(1, len(group) + 1), target_mean=np.nan if mean is None else mean,
            target_sd=np.nan if sd is None else sd, limits_basis=basis,
        )  # fmt: skip
        if sd is None:
            series.append(group.assign(z_score=np.nan, westgard_violations="",
                                       westgard_status="not_evaluated"))  # fmt: skip
            continue
        z = ((group["value"] - mean) / sd).to_list()
        found = westgard.westgard(z)
        series.append(group.assign(
            z_score=z, westgard_violations=[",".join(v) for v in found],
            westgard_status=[westgard.status(v) for v in found],
        ))  # fmt: skip
    return pd.concat(series, ignore_index=True) if series else pd.DataFrame()
