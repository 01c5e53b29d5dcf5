"""From a plate's wells to the `cba_curves` and `cytokines` tables.

Per analyte: check that the standards form a dilution series, fit the 4PL/5PL the settings ask
for, back-calculate every standard level, take LLOQ and ULOQ from the lowest and highest levels
whose recovery is inside the window, and judge the curve. Per sample: average the replicate MFIs
(reporting their CV), read the concentration off the curve, apply the sample dilution, and censor
anything outside LLOQ..ULOQ at that limit instead of extrapolating.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cba.curves import Curve, choose_curve
from cba.errors import CbaAnalysisError, StandardSeriesError
from cba.model import CbaPlate, ReportedValue, parse_reported_value
from cba.settings import CbaSettings

MIN_STANDARD_LEVELS = 4
"""Non-zero standard levels below which no 4PL/5PL is fitted."""


@dataclass
class CbaResult:
    """The analysed plate: one `curves` row per analyte, one `cytokines` row per sample x analyte,
    each with the assay columns of its table as the table registry (`validation/schemas.py`)
    names them; the pipeline orders and types them by that registry.

    `sample_names` are the names of the sample wells as exported, for the pipeline to resolve
    patient and timepoint from. `series_breaks` maps each standard-series fault found (e.g.
    "Standard3 is 1000x the series") to the analytes it touches.
    """

    run_id: str
    curves: pd.DataFrame
    cytokines: pd.DataFrame
    sample_names: list[str]
    warnings: list[str] = field(default_factory=list)
    series_breaks: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class StandardLevel:
    level: str
    expected_pg_ml: float
    mean_mfi: float


@dataclass(frozen=True)
class LevelRecovery:
    level: str
    expected_pg_ml: float
    back_calculated_pg_ml: float | None
    recovery_pct: float | None
    passed: bool


@dataclass(frozen=True)
class AnalyteCurve:
    """The judged curve of one analyte; `curve` is None when the standards were not fitted."""

    curve: Curve | None
    recoveries: list[LevelRecovery]
    dilution_factor: float | None
    lloq_pg_ml: float | None
    uloq_pg_ml: float | None
    verdict: str
    verdict_reason: str
    series_break: str | None = None  # the short fault of a broken standard series


def analyse_plate(plate: CbaPlate, settings: CbaSettings | None = None) -> CbaResult:
    """Fit every analyte's standard curve and compute every sample's concentration."""
    settings = settings or CbaSettings()
    wells = plate.wells
    has_reported = (wells["reported_concentration"] != "").any()
    has_standards = ((wells["type"] == "standard") & wells["standard_pg_ml"].notna()).any()
    if not has_standards and not has_reported:
        raise CbaAnalysisError(
            f"{plate.source or plate.run_id}: the plate has no standard wells with a known "
            "concentration, so no curve can be fitted; export the plate with its standards "
            "(and their concentrations) or give the standard layout"
        )
    curve_rows, cytokine_rows = [], []
    series_breaks: dict[str, list[str]] = {}
    for analyte, analyte_wells in wells.groupby("analyte", sort=False):
        judged = _judge_analyte(analyte_wells, settings, vendor_only=not has_standards)
        curve_rows.append(_curve_row(plate, str(analyte), analyte_wells, judged))
        cytokine_rows.extend(_sample_rows(plate.run_id, str(analyte), analyte_wells, judged))
        if judged.series_break:
            series_breaks.setdefault(judged.series_break, []).append(str(analyte))
    warnings = list(plate.warnings)
    if series_breaks:
        warnings.append(
            f"{describe_series_breaks(series_breaks)}; these analytes have no curve and no "
            "concentrations. Correct the standard concentrations in the instrument software and "
            "export the plate again"
        )
    return CbaResult(
        run_id=plate.run_id,
        curves=pd.DataFrame(curve_rows),
        cytokines=_cytokines_frame(cytokine_rows),
        sample_names=plate.sample_names,
        warnings=warnings,
        series_breaks=series_breaks,
    )


def describe_series_breaks(series_breaks: dict[str, list[str]]) -> str:
    """One line naming every standard-series fault and each analyte it touches."""
    parts = [f"{fault} for {', '.join(analytes)}" for fault, analytes in series_breaks.items()]
    return "standard series broken: " + "; ".join(parts)


def _judge_analyte(wells: pd.DataFrame, settings: CbaSettings, vendor_only: bool) -> AnalyteCurve:
    if vendor_only:
        return AnalyteCurve(None, [], None, None, None, "PASS",
                            "concentrations as computed by the vendor software; the export "
                            "has no standards to fit")  # fmt: skip
    standards = wells[(wells["type"] == "standard") & wells["standard_pg_ml"].notna()]
    standards = standards[standards["mfi"].notna()]
    if standards.empty:
        return AnalyteCurve(None, [], None, None, None, "FAIL", "no standard wells with an MFI")
    levels = standard_levels(standards)
    try:
        factor = check_standard_series(levels, settings)
    except StandardSeriesError as error:
        return AnalyteCurve(None, [], None, None, None, "FAIL", error.reason, error.fault)
    nonzero = [lv for lv in levels if lv.expected_pg_ml > 0]
    if len(nonzero) < MIN_STANDARD_LEVELS:
        return AnalyteCurve(None, [], factor, None, None, "FAIL",
                            f"only {len(nonzero)} non-zero standard levels; a curve needs "
                            f"at least {MIN_STANDARD_LEVELS}")  # fmt: skip
    curve = choose_curve(
        standards["standard_pg_ml"].to_numpy(), standards["mfi"].to_numpy(),
        settings.model, settings.weighting,
    )  # fmt: skip
    recoveries = back_calculate(levels, curve, settings)
    return _verdict(curve, recoveries, factor, settings)


def standard_levels(standards: pd.DataFrame) -> list[StandardLevel]:
    """Standard wells grouped by level (replicates averaged), highest concentration first."""
    grouped = standards.groupby(["standard_level", "standard_pg_ml"], sort=False)["mfi"].mean()
    levels = [
        StandardLevel(str(name), float(conc), float(mfi)) for (name, conc), mfi in grouped.items()
    ]
    return sorted(levels, key=lambda lv: -lv.expected_pg_ml)


def _level_number(name: str) -> int | None:
    match = re.search(r"(\d+)\s*$", name)
    return int(match.group(1)) if match else None


def _times(ratio: float) -> str:
    """`1000x`, `0.001x`, `0.354x`: how far a standard is from where the series puts it."""
    return f"{float(f'{ratio:.3g}'):g}x"


def check_standard_series(levels: list[StandardLevel], settings: CbaSettings) -> float:
    """The dilution factor of the series; raises `StandardSeriesError` when the series is broken.

    Standards numbered by the software (C1..C7, Standard1..8) are taken in their numbered order:
    the dilution step is the median step, each standard's place on the series is predicted from
    the median of all standards (so one wrong standard cannot move the prediction), and a
    standard further than the tolerance from its place is named with the factor it is off by
    (a decimal slip shows as 1000x or 0.001x). Unnumbered standards are taken highest first and
    each must equal the previous one divided by the dilution factor.
    """
    nonzero = [lv for lv in levels if lv.expected_pg_ml > 0]
    if len(nonzero) < 2:
        raise StandardSeriesError("fewer than two non-zero standard levels")
    names = [lv.level for lv in nonzero]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        values = ", ".join(f"{lv.expected_pg_ml:g}" for lv in nonzero if lv.level == repeated[0])
        raise StandardSeriesError(
            f"standard {repeated[0]} has more than one expected concentration ({values} pg/mL); "
            "correct the standard concentrations in the software and export again",
            f"{repeated[0]} has two concentrations",
        )
    numbered = sorted(
        ((n, lv) for lv in nonzero if (n := _level_number(lv.level)) is not None),
        key=lambda item: item[0],
    )
    numbers = [n for n, _ in numbered]
    if len(numbered) == len(nonzero) >= 3 and len(set(numbers)) == len(numbers):
        return _check_numbered_series(numbered, settings)
    return _check_consecutive_steps(nonzero, settings)


def _check_numbered_series(
    numbered: list[tuple[int, StandardLevel]], settings: CbaSettings
) -> float:
    """The series by the standards' numbers; a standard left out (masked in the software) leaves
    a gap in the numbers, not a broken step."""
    ordered = [lv for _, lv in numbered]
    positions = np.array([n for n, _ in numbered]) - numbered[0][0]
    values = np.array([lv.expected_pg_ml for lv in ordered])
    per_step = (values[:-1] / values[1:]) ** (1 / np.diff(positions))
    median_ratio = float(np.median(per_step))  # > 1 when numbered top first
    factor = settings.dilution_factor or max(median_ratio, 1 / median_ratio)
    tolerance = settings.dilution_tolerance_pct / 100
    if factor < 1 + tolerance:
        raise StandardSeriesError(
            "standard series broken: the standards do not fall step by step (median step "
            f"{factor:.3g}); check the standard concentrations entered in the software",
            "no dilution steps",
        )
    step = math.log(factor) * (1.0 if median_ratio < 1 else -1.0)
    logs = np.log(values)
    anchor = float(np.median(logs - positions * step))
    off_by = np.exp(logs - (anchor + positions * step))
    wrong = [
        (lv, float(r)) for lv, r in zip(ordered, off_by, strict=True) if abs(r - 1) > tolerance
    ]
    if wrong:
        listing = ", ".join(
            f"{lv.level} = {lv.expected_pg_ml:.10g} pg/mL is {_times(r)} what the series predicts "
            f"({lv.expected_pg_ml / r:.4g})"
            for lv, r in wrong
        )
        fault = ", ".join(f"{lv.level} {_times(r)} the series" for lv, r in wrong)
        raise StandardSeriesError(
            f"standard series broken: {listing}; a decimal or unit slip in the standard "
            "concentrations? Correct them in the software and export again",
            fault,
        )
    return factor


def _check_consecutive_steps(nonzero: list[StandardLevel], settings: CbaSettings) -> float:
    ratios = [
        hi.expected_pg_ml / lo.expected_pg_ml for hi, lo in zip(nonzero, nonzero[1:], strict=False)
    ]
    factor = settings.dilution_factor or float(np.median(ratios))
    tolerance = settings.dilution_tolerance_pct / 100
    for (higher, lower), ratio in zip(zip(nonzero, nonzero[1:], strict=False), ratios, strict=True):
        if abs(ratio / factor - 1) > tolerance:
            raise StandardSeriesError(
                f"standard series broken: {lower.level} = {lower.expected_pg_ml:g} pg/mL but "
                f"{higher.level} ({higher.expected_pg_ml:g} pg/mL) divided by the dilution factor "
                f"{factor:g} is {higher.expected_pg_ml / factor:g} (ratio {ratio:g}); a decimal or "
                "unit slip in the standard concentrations? Correct them and re-export",
                f"step {higher.level} -> {lower.level} is {_times(factor / ratio)} the series",
            )
    return factor


def back_calculate(
    levels: list[StandardLevel], curve: Curve, settings: CbaSettings
) -> list[LevelRecovery]:
    """Back-calculated concentration and recovery of each non-zero standard level."""
    recoveries = []
    for level in levels:
        if level.expected_pg_ml <= 0:
            continue
        found = float(curve.concentration(level.mean_mfi))
        if math.isnan(found):
            recoveries.append(LevelRecovery(level.level, level.expected_pg_ml, None, None, False))
            continue
        recovery = 100.0 * found / level.expected_pg_ml
        passed = settings.recovery_low_pct <= recovery <= settings.recovery_high_pct
        recoveries.append(LevelRecovery(level.level, level.expected_pg_ml, found, recovery, passed))
    return recoveries


def _verdict(
    curve: Curve, recoveries: list[LevelRecovery], factor: float, settings: CbaSettings
) -> AnalyteCurve:
    passed = [r for r in recoveries if r.passed]
    window = f"{settings.recovery_low_pct:g}-{settings.recovery_high_pct:g} %"
    if len(passed) < 2:
        return AnalyteCurve(curve, recoveries, factor, None, None, "FAIL",
                            f"{len(passed)} of {len(recoveries)} standards recovered within "
                            f"{window}; no quantifiable range")  # fmt: skip
    lloq = min(r.expected_pg_ml for r in passed)
    uloq = max(r.expected_pg_ml for r in passed)
    fraction = len(passed) / len(recoveries)
    if fraction < settings.min_fraction_standards_passed:
        reason = (f"only {len(passed)} of {len(recoveries)} standards recovered within {window} "
                  f"(at least {settings.min_fraction_standards_passed:.0%} required)")  # fmt: skip
        return AnalyteCurve(curve, recoveries, factor, lloq, uloq, "FAIL", reason)
    reason = f"{len(passed)} of {len(recoveries)} standards recovered within {window}"
    return AnalyteCurve(curve, recoveries, factor, lloq, uloq, "PASS", reason)


def _recovery_json(recoveries: list[LevelRecovery]) -> str:
    return json.dumps([
        {"level": r.level, "expected_pg_ml": r.expected_pg_ml,
         "back_calculated_pg_ml": r.back_calculated_pg_ml, "recovery_pct": r.recovery_pct,
         "pass": r.passed}
        for r in recoveries
    ], ensure_ascii=False)  # fmt: skip


def _curve_row(
    plate: CbaPlate, analyte: str, wells: pd.DataFrame, judged: AnalyteCurve
) -> dict[str, object]:
    curve = judged.curve
    params = (curve.a, curve.b, curve.c, curve.d, curve.g) if curve else (None,) * 5
    return {
        "run_id": plate.run_id,
        "instrument_format": plate.instrument_format,
        "analyte": analyte,
        "analyte_as_exported": wells["analyte_as_exported"].iloc[0],
        "analyte_recognised": bool(wells["analyte_recognised"].iloc[0]),
        "model": curve.model if curve else "NONE",
        "param_a": params[0], "param_b": params[1], "param_c": params[2],
        "param_d": params[3], "param_g": params[4],
        "r_squared": curve.r_squared if curve else None,
        "n_standards": len(judged.recoveries),
        "n_standards_passed": sum(r.passed for r in judged.recoveries),
        "dilution_factor": judged.dilution_factor,
        "recovery_json": _recovery_json(judged.recoveries),
        "lloq_pg_ml": judged.lloq_pg_ml,
        "uloq_pg_ml": judged.uloq_pg_ml,
        "verdict": judged.verdict,
        "verdict_reason": judged.verdict_reason,
    }  # fmt: skip


def _replicate_cv_pct(mfi: np.ndarray) -> float | None:
    if mfi.size < 2 or np.mean(mfi) == 0:
        return None
    return float(100.0 * np.std(mfi, ddof=1) / np.mean(mfi))


def _sample_rows(
    run_id: str, analyte: str, wells: pd.DataFrame, judged: AnalyteCurve
) -> list[dict[str, object]]:
    rows = []
    samples = wells[wells["type"] == "sample"]
    for sample_name, replicates in samples.groupby("sample_name", sort=False):
        mfi = replicates["mfi"].dropna().to_numpy()
        dilution = float(replicates["sample_dilution"].iloc[0])
        reported = " | ".join(dict.fromkeys(t for t in replicates["reported_concentration"] if t))
        row = {
            "run_id": run_id, "sample_name": str(sample_name), "analyte": analyte,
            "analyte_recognised": bool(replicates["analyte_recognised"].iloc[0]),
            "n_replicates": int(mfi.size), "mfi": float(np.mean(mfi)) if mfi.size else None,
            "mfi_cv_pct": _replicate_cv_pct(mfi), "sample_dilution": dilution,
            "reported_value": reported or None, "curve_verdict": judged.verdict,
        }  # fmt: skip
        if judged.curve is None and judged.verdict == "PASS":
            row.update(_vendor_concentration(replicates))
        else:
            row.update(_concentration(row["mfi"], dilution, judged))
        rows.append(row)
    return rows


def _concentration(mfi: float | None, dilution: float, judged: AnalyteCurve) -> dict[str, object]:
    """Concentration in the sample, censored at LLOQ/ULOQ x dilution outside the range; without
    an MFI (no beads, a dry well) the value is not measured."""
    unquantified = {"concentration_pg_ml": None, "censoring": "none", "censor_limit_pg_ml": None}
    if mfi is None:
        return {**unquantified, "censoring": "not_measured"}
    curve, lloq, uloq = judged.curve, judged.lloq_pg_ml, judged.uloq_pg_ml
    if curve is None or judged.verdict != "PASS" or lloq is None or uloq is None:
        return unquantified
    found = float(curve.concentration(mfi))
    increasing = curve.d > curve.a
    below = (mfi <= curve.a) == increasing if math.isnan(found) else found < lloq
    if math.isnan(found) or found < lloq or found > uloq:
        censoring, limit = ("below_lloq", lloq) if below else ("above_uloq", uloq)
        return {"concentration_pg_ml": None, "censoring": censoring,
                "censor_limit_pg_ml": limit * dilution}  # fmt: skip
    return {
        "concentration_pg_ml": found * dilution,
        "censoring": "none",
        "censor_limit_pg_ml": None,
    }


def _vendor_concentration(replicates: pd.DataFrame) -> dict[str, object]:
    """The vendor's reported concentration (replicates averaged); censored text stays censored,
    and a replicate without a value (`---`, `N/A`) counts only when no replicate has one."""
    parsed = [_reported(row) for row in replicates.itertuples()]
    values = [v for v in parsed if v.censoring != "not_measured"] or parsed
    numbers = [v.value for v in values if v.value is not None]
    if numbers and len(numbers) == len(values):
        return {"concentration_pg_ml": float(np.mean(numbers)), "censoring": "none",
                "censor_limit_pg_ml": None}  # fmt: skip
    censored = next((v for v in values if v.censoring != "none"), values[0])
    return {"concentration_pg_ml": None, "censoring": censored.censoring,
            "censor_limit_pg_ml": censored.limit}  # fmt: skip


def _reported(well: object) -> ReportedValue:
    """A well's vendor concentration; CbaAnalysisError naming the well when it is not one."""
    try:
        return parse_reported_value(well.reported_concentration)
    except ValueError:
        raise CbaAnalysisError(
            f"well {well.well} ({well.sample_name}), {well.analyte_as_exported}: the software's "
            f"concentration {well.reported_concentration!r} is neither a number of 0 or more, a "
            "censored value (< 3.2, OOR >) nor a no-value mark (N/A, ---); no measurement was "
            "stored. Export the plate's MFI with its standards instead"
        ) from None


def _cytokines_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The rows as a frame whose columns are the keys of `_sample_rows` (the `cytokines`
    table's assay columns, named as the table registry names them), with their number types;
    a plate without samples gives an empty frame."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["n_replicates"] = frame["n_replicates"].astype("int32")
    for column in ("mfi", "mfi_cv_pct", "sample_dilution", "concentration_pg_ml",
                   "censor_limit_pg_ml"):  # fmt: skip
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame
