"""CAR-T cellular kinetics by non-compartmental analysis (NCA), one row per patient.

Exposure is the CAR transgene in blood (copies per ug genomic DNA by qPCR) and, where the T-cell
panel was run, CAR+ T cells per uL by flow. Pre-infusion samples (BL, SCREEN, PRODUCT, negative
study days) never enter the analysis.

Only reportable qPCR rows enter (`car_copies.reportable`: one per sample and target, from the
latest run that passed QC); a sample's earlier results are kept in car_copies but not counted.
qPCR results (`car_copies.result`) enter the NCA as follows:

- `quantified` values are the data points of Cmax, Tmax, AUC0-28, Tlast and Clast;
- `below_loq` (detected, estimate kept) and `not_detected` are both below the limit of
  quantification (BLQ): the estimate of a below-LOQ result never enters Cmax or the AUC. This is
  the NCA practice of CAR-T cellular-kinetics reports, where Cmax, AUC0-28d and Tlast are computed
  from quantifiable transgene levels only; substituting LOQ/2 (Beal's M5/M6) is a population-
  modelling device that would put a value the assay did not certify into the AUC;
- `not_measured` (no curve, plate QC failed, no DNA input, ...) is not a data point at all: never
  0, never BLQ. Those samples are listed with their reason in `qpcr_not_measured_json`.

BLQ values follow common NCA practice:

- BLQ before the first quantifiable sample counts as 0 (the transgene is absent before expansion);
- BLQ between the first quantifiable sample and Tlast is dropped (treated as missing), so one
  failed dilution does not cut the AUC in two;
- BLQ after Tlast is dropped: the AUC stops at Tlast and is not extrapolated.

Day 0 (the infusion) has C = 0 unless day 0 was sampled: the cells are given as a single dose and
the transgene is not in blood before it. AUC0-28 uses the linear trapezoid while values rise or
stay level and the log trapezoid while they fall ("linear-up / log-down"); when day 28 itself was
not sampled the value there is interpolated the same way. If the last quantifiable sample is before
day 28, AUC0-28 is AUC0-Tlast and `auc_0_28_end_day` says so.

Persistence is about detection, not quantification: the transgene persists while it is still
detected (quantified or below the LOQ) at the patient's last measured sample. It is `lost` only
when, after it was quantified, the last measured samples are `not_detected`; the loss is dated at
the first of them. A `not_measured` sample never makes a patient "CAR lost".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpcr.analysis import BELOW_LOQ, NOT_DETECTED, NOT_MEASURED, QUANTIFIED
from validation.timepoints import PRE_INFUSION

BLQ_HANDLING = (
    "quantified values only; below_loq (estimate not used) and not_detected are BLQ; "
    "not_measured skipped; BLQ before first quantifiable = 0; BLQ between first quantifiable and "
    "Tlast dropped; BLQ after Tlast dropped (no extrapolation); C(day 0) = 0 unless sampled"
)
MEASURED_RESULTS = (QUANTIFIED, BELOW_LOQ, NOT_DETECTED)
"""Results that are a data point; anything else (not_measured) is absent."""


@dataclass(frozen=True)
class Profile:
    """One exposure measure per post-infusion study day, in day order."""

    days: np.ndarray
    values: np.ndarray
    """The measured value; meaningful only where `quantifiable`."""
    quantifiable: np.ndarray


@dataclass(frozen=True)
class NcaResult:
    cmax: float | None
    tmax_day: int | None
    auc_0_end: float | None
    auc_end_day: float | None
    tlast_day: int | None
    clast: float | None
    n_samples: int
    n_blq: int


def post_infusion_profile(
    frame: pd.DataFrame, value_column: str, quantifiable_column: str
) -> Profile:
    """Collapse repeated measurements of a day (e.g. a re-run plate) to one: the mean of the
    quantifiable results, BLQ only when every result of that day is BLQ."""
    rows = frame[
        frame["study_day"].notna()
        & (frame["study_day"] >= 0)
        & ~frame["timepoint"].isin(PRE_INFUSION)
    ]
    days, values, quantifiable = [], [], []
    for day, group in rows.groupby("study_day", sort=True):
        measured = group[group[quantifiable_column].astype(bool)]
        days.append(int(day))
        quantifiable.append(not measured.empty)
        values.append(float(measured[value_column].mean()) if not measured.empty else 0.0)
    return Profile(
        np.array(days, dtype=int), np.array(values, dtype=float), np.array(quantifiable, dtype=bool)
    )


def auc_profile(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Days and values the AUC is computed over, after the BLQ rules and C(day 0) = 0."""
    if not profile.quantifiable.any():
        return np.array([0]), np.array([0.0])
    first = int(np.argmax(profile.quantifiable))
    last = len(profile.quantifiable) - 1 - int(np.argmax(profile.quantifiable[::-1]))
    keep = np.zeros(len(profile.days), dtype=bool)
    keep[:first] = True  # leading BLQ, counted as 0
    keep[first : last + 1] = profile.quantifiable[first : last + 1]
    days = profile.days[keep]
    values = np.where(profile.quantifiable[keep], profile.values[keep], 0.0)
    if len(days) == 0 or days[0] > 0:
        days = np.concatenate([[0], days])
        values = np.concatenate([[0.0], values])
    return days, values


def interval_auc(t1: float, c1: float, t2: float, c2: float) -> float:
    """Linear trapezoid when rising, level or touching zero; log trapezoid when falling."""
    if c2 >= c1 or c1 <= 0 or c2 <= 0:
        return (c1 + c2) / 2.0 * (t2 - t1)
    return (c1 - c2) * (t2 - t1) / math.log(c1 / c2)


def interpolate(t1: float, c1: float, t2: float, c2: float, t: float) -> float:
    """The value at t between two samples, linear when rising, log-linear when falling."""
    fraction = (t - t1) / (t2 - t1)
    if c2 >= c1 or c1 <= 0 or c2 <= 0:
        return c1 + fraction * (c2 - c1)
    return math.exp(math.log(c1) + fraction * (math.log(c2) - math.log(c1)))


def auc_linear_up_log_down(
    days: np.ndarray, values: np.ndarray, end_day: float
) -> tuple[float, float]:
    """AUC from the first day to `end_day` (or to the last day if earlier): (auc, day it ends)."""
    auc = 0.0
    for i in range(len(days) - 1):
        t1, t2, c1, c2 = float(days[i]), float(days[i + 1]), float(values[i]), float(values[i + 1])
        if t1 >= end_day:
            return auc, end_day
        if t2 > end_day:
            c_end = interpolate(t1, c1, t2, c2, end_day)
            return auc + interval_auc(t1, c1, end_day, c_end), end_day
        auc += interval_auc(t1, c1, t2, c2)
    return auc, min(float(days[-1]), end_day)


def nca(profile: Profile, end_day: float) -> NcaResult:
    """Cmax, Tmax (first day at Cmax), AUC0-end, Tlast and Clast of one profile."""
    n_samples, n_blq = len(profile.days), int((~profile.quantifiable).sum())
    if not profile.quantifiable.any():
        return NcaResult(None, None, None, None, None, None, n_samples, n_blq)
    measured = np.where(profile.quantifiable, profile.values, -np.inf)
    peak = int(np.argmax(measured))
    last = len(profile.days) - 1 - int(np.argmax(profile.quantifiable[::-1]))
    days, values = auc_profile(profile)
    auc, auc_end = auc_linear_up_log_down(days, values, end_day)
    return NcaResult(
        cmax=float(profile.values[peak]), tmax_day=int(profile.days[peak]),
        auc_0_end=auc, auc_end_day=auc_end, tlast_day=int(profile.days[last]),
        clast=float(profile.values[last]), n_samples=n_samples, n_blq=n_blq,
    )  # fmt: skip


def day_result(results: pd.Series) -> str:
    """One result for a day measured more than once (e.g. a re-run plate): the strongest finding
    (quantified, then below the LOQ, then not detected)."""
    return next(r for r in MEASURED_RESULTS if (results == r).any())


@dataclass(frozen=True)
class Persistence:
    status: str  # persisting, lost, not_expanded, no_data
    lost_day: int | None
    last_detected_day: int | None
    later_json: str
    """Per timepoint after the AUC window: day, result, copies/ug (the estimate when below the
    LOQ), and the reason when not measured."""


def persistence(qpcr: pd.DataFrame, result: NcaResult, after_day: int) -> Persistence:
    """Whether the transgene is still detected at the last measured sample, the first day of a
    loss, and per later timepoint (study day > `after_day`) what was found."""
    dated = qpcr[qpcr["study_day"].notna()]
    measured = dated[dated["result"].isin(MEASURED_RESULTS) & (dated["study_day"] >= 0)]
    measured = measured[~measured["timepoint"].isin(PRE_INFUSION)]
    by_day = measured.groupby("study_day", sort=True)["result"].agg(day_result)
    detected_days = [int(d) for d, r in by_day.items() if r != NOT_DETECTED]
    last_detected = detected_days[-1] if detected_days else None
    later_json = json.dumps(_later_timepoints(dated[dated["study_day"] > after_day]))
    if by_day.empty:
        return Persistence("no_data", None, last_detected, later_json)
    if result.tlast_day is None:
        return Persistence("not_expanded", None, last_detected, later_json)
    undetected_after = [int(d) for d in by_day.index if d > (last_detected or 0)]
    if not undetected_after:
        return Persistence("persisting", None, last_detected, later_json)
    return Persistence("lost", undetected_after[0], last_detected, later_json)


def _later_timepoints(later: pd.DataFrame) -> list[dict]:
    statuses = []
    for (day, timepoint), group in later.groupby(["study_day", "timepoint"], sort=True):
        measured = group[group["result"].isin(MEASURED_RESULTS)]
        entry: dict = {"timepoint": timepoint, "study_day": int(day)}
        if measured.empty:
            entry.update(status=NOT_MEASURED, copies_per_ug=None, reason=_reasons(group))
        else:
            status = day_result(measured["result"])
            values = measured.loc[measured["result"] == status, "copies_per_ug"].dropna()
            entry.update(status=status, copies_per_ug=float(values.mean()) if len(values) else None)
        statuses.append(entry)
    return statuses


def _reasons(rows: pd.DataFrame) -> str:
    reasons = rows["result_reason"].fillna("no result recorded; ingest the export again")
    return "; ".join(dict.fromkeys(reasons.astype(str)))


def not_measured_json(qpcr: pd.DataFrame) -> str:
    """The samples that are not a data point, with their reasons, so they are listed, not lost."""
    missing = qpcr[~qpcr["result"].isin(MEASURED_RESULTS)]
    entries = [
        {"timepoint": t, "study_day": None if pd.isna(d) else int(d), "reason": _reasons(group)}
        for (t, d), group in missing.groupby(["timepoint", "study_day"], sort=True, dropna=False)
    ]
    return json.dumps(sorted(entries, key=lambda e: (e["study_day"] is None, e["study_day"] or 0)))


def car_kinetics_row(qpcr: pd.DataFrame, flow_car: pd.DataFrame, end_day: int) -> dict:
    """The assay columns of one patient's `car_kinetics` row.

    `qpcr`: the patient's CAR-target `car_copies` rows (study_day, timepoint, copies_per_ug,
    result, result_reason, loq_copies_per_ug). `flow_car`: CAR+ T-cell rows of
    `flow_populations` (study_day, timepoint, cells_per_ul); a tube without CAR+ events counts
    as BLQ.
    """
    measured = qpcr[qpcr["result"].isin(MEASURED_RESULTS)]
    measured = measured.assign(
        quantifiable=(measured["result"] == QUANTIFIED) & measured["copies_per_ug"].notna()
    )
    copies = nca(post_infusion_profile(measured, "copies_per_ug", "quantifiable"), end_day)
    kept = persistence(qpcr, copies, end_day)
    flow_car = flow_car[flow_car["cells_per_ul"].notna()]
    flow_car = flow_car.assign(quantifiable=flow_car["cells_per_ul"] > 0)
    cells = nca(post_infusion_profile(flow_car, "cells_per_ul", "quantifiable"), end_day)
    loq = qpcr["loq_copies_per_ug"].dropna()
    return {
        "cmax_copies_per_ug": copies.cmax, "tmax_day": copies.tmax_day,
        "auc_0_28": copies.auc_0_end, "auc_0_28_end_day": copies.auc_end_day,
        "tlast_day": copies.tlast_day, "clast_copies_per_ug": copies.clast,
        "loq_copies_per_ug": float(loq.max()) if not loq.empty else None,
        "n_qpcr_samples": copies.n_samples, "n_qpcr_below_loq": copies.n_blq,
        "qpcr_not_measured_json": not_measured_json(qpcr),
        "last_detected_day": kept.last_detected_day,
        "persistence_status": kept.status, "persistence_lost_day": kept.lost_day,
        "persistence_json": kept.later_json,
        "cmax_car_cells_per_ul": cells.cmax, "tmax_car_cells_day": cells.tmax_day,
        "auc_0_28_car_cells_per_ul": cells.auc_0_end, "tlast_car_cells_day": cells.tlast_day,
        "blq_handling": BLQ_HANDLING,
    }  # fmt: skip
