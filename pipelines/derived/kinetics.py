"""CAR-T cellular kinetics by non-compartmental analysis (NCA), one row per patient.

Exposure is the CAR transgene in blood (copies per ug genomic DNA by qPCR) and, where the T-cell
panel was run, CAR+ T cells per uL by flow. Pre-infusion samples (BL, SCREEN, PRODUCT, negative
study days) never enter the analysis.

Values below the limit of quantification (BLQ) follow common NCA practice:

- BLQ before the first quantifiable sample counts as 0 (the transgene is absent before expansion);
- BLQ between the first quantifiable sample and Tlast is dropped (treated as missing), so one
  failed dilution does not cut the AUC in two;
- BLQ after Tlast is dropped: the AUC stops at Tlast and is not extrapolated.

Day 0 (the infusion) has C = 0 unless day 0 was sampled: the cells are given as a single dose and
the transgene is not in blood before it. AUC0-28 uses the linear trapezoid while values rise or
stay level and the log trapezoid while they fall ("linear-up / log-down"); when day 28 itself was
not sampled the value there is interpolated the same way. If the last quantifiable sample is before
day 28, AUC0-28 is AUC0-Tlast and `auc_0_28_end_day` says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BLQ_HANDLING = (
    "BLQ before first quantifiable = 0; BLQ between first quantifiable and Tlast dropped; "
    "BLQ after Tlast dropped (no extrapolation); C(day 0) = 0 unless sampled"
)
PRE_INFUSION_TIMEPOINTS = frozenset({"SCREEN", "BL", "PRODUCT"})


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
        & ~frame["timepoint"].isin(PRE_INFUSION_TIMEPOINTS)
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


def persistence(
    qpcr: pd.DataFrame, result: NcaResult, after_day: int
) -> tuple[str, int | None, str]:
    """Overall status, the first sampled day after Tlast when lost, and per later timepoint
    (study day > `after_day`) whether the transgene was quantifiable, detected below the LOQ,
    or not detected (below the LOD)."""
    later = qpcr[qpcr["study_day"].notna() & (qpcr["study_day"] > after_day)]
    statuses = []
    for (day, timepoint), group in later.groupby(["study_day", "timepoint"], sort=True):
        quantified = group[~group["below_loq"].astype(bool)]
        if not quantified.empty:
            status, value = "quantifiable", float(quantified["copies_per_ug"].mean())
        elif (~group["below_lod"].astype(bool)).any():
            status, value = "below_loq", None
        else:
            status, value = "not_detected", None
        statuses.append(
            {
                "timepoint": timepoint,
                "study_day": int(day),
                "status": status,
                "copies_per_ug": value,
            }
        )
    sampled = qpcr[qpcr["study_day"].notna() & (qpcr["study_day"] >= 0)]
    if sampled.empty:
        return "no_data", None, json.dumps(statuses)
    if result.tlast_day is None:
        return "not_expanded", None, json.dumps(statuses)
    after_tlast = sorted(int(d) for d in sampled["study_day"].unique() if d > result.tlast_day)
    if not after_tlast:
        return "persisting", None, json.dumps(statuses)
    return "lost", after_tlast[0], json.dumps(statuses)


def car_kinetics_row(qpcr: pd.DataFrame, flow_car: pd.DataFrame, end_day: int) -> dict:
    """The assay columns of one patient's `car_kinetics` row.

    `qpcr`: the patient's CAR-target `car_copies` rows (study_day, timepoint, copies_per_ug,
    below_loq, below_lod, loq_copies_per_ug). `flow_car`: CAR+ T-cell rows of `flow_populations`
    (study_day, timepoint, cells_per_ul); a tube without CAR+ events counts as BLQ.
    """
    qpcr = qpcr.assign(quantifiable=~qpcr["below_loq"].astype(bool) & qpcr["copies_per_ug"].notna())
    copies = nca(post_infusion_profile(qpcr, "copies_per_ug", "quantifiable"), end_day)
    status, lost_day, later = persistence(qpcr, copies, end_day)
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
        "persistence_status": status, "persistence_lost_day": lost_day,
        "persistence_json": later,
        "cmax_car_cells_per_ul": cells.cmax, "tmax_car_cells_day": cells.tmax_day,
        "auc_0_28_car_cells_per_ul": cells.auc_0_end, "tlast_car_cells_day": cells.tlast_day,
        "blq_handling": BLQ_HANDLING,
    }  # fmt: skip
