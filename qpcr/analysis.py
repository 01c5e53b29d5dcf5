"""From one plate's wells to QC per target and CAR copy numbers per sample.

Conventions (documented because labs differ):
- The curve is fitted per target over every amplified, non-omitted standard well.
- A sample gets a row per CAR target (also when that target has no curve) and per other target
  whose standards are on the plate; the reference gene normalises and has no row of its own.
- Each row carries a `result` (`RESULTS`) and, unless quantified, a one-line `result_reason`:
  - `not_measured` when no number can be given: the target has no standard curve, its plate QC
    failed, an amplified replicate has no usable Cq, no LOQ could be set, or the sample has no DNA
    input (copies per reaction are then kept, copies per ug are NULL). Never a number standing in.
  - `not_detected` when no replicate amplified (the vendor's "Undetermined"/"No Ct"): copies NULL,
    never 0.
  - `below_loq` when it amplified but the estimate is under the LOQ: the estimate is kept, flagged.
  - `quantified` at or above the LOQ.
- Replicates: copies per reaction are the mean over the replicates that amplified, and
  `n_amplified` says how many did. A replicate without amplification is not counted as zero
  copies. At the LOQ (tens of copies per reaction) the Poisson chance that a reaction received no
  template is exp(-LOQ), effectively nil, so a silent replicate there is a failed reaction, and
  counting it as zero would cut the result by a third, as a lab excludes a failed well. Below
  the LOQ, where Poisson zeros are real, the result is an estimate flagged `below_loq` anyway, and
  the reason says in how many replicates it was detected. A value at or above the LOQ from a
  single replicate while the others failed has no replicate to agree with: it is `not_measured`
  (repeat the sample).
- The run's positive control is averaged with a failed replicate counting as zero copies, so a
  failing control shows in its Levey-Jennings series instead of dropping out of it.
- The LOQ is the `loq_copies_per_reaction` setting, else the lowest standard level whose
  replicates all amplified with an SD within the replicate limit.
- Copies per ug genomic DNA = copies per reaction / (ng DNA per reaction / 1000).
- Wells of the run's positive control (sample names in `positive_control_names`) are quantified
  per target into `qpcr_runs` for QC trends and are never reported as samples.
- A plate fails QC when any target's verdict is FAIL (curve outside the efficiency or R² window,
  or an NTC amplified). `QpcrResult.qc_failures` then says, per failed rule, the target, the
  wells, the measured value and the limit (`efficiency 78.1 % outside 90–110 %`, `NTC well H12
  amplified at Cq 31.2`), and the standard levels whose replicates spread beyond the replicate
  limit, which usually explain a bad curve. The cure is to re-run the assay: the export is right
  about a run that went wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assaykit import FAILED_QC, QcVerdict
from qpcr.curve import CurveError, StandardCurve, fit_standard_curve
from qpcr.model import QpcrPlate
from qpcr.settings import QpcrSettings

COPIES_UNIT = "copies/ug gDNA"
QUANTIFIED, BELOW_LOQ, NOT_DETECTED, NOT_MEASURED = (
    "quantified", "below_loq", "not_detected", "not_measured",
)  # fmt: skip
RESULTS: tuple[str, ...] = (QUANTIFIED, BELOW_LOQ, NOT_DETECTED, NOT_MEASURED)
"""The values of `car_copies.result`."""
NO_DNA_INPUT = (
    "no DNA input for this sample: add dna_input_ng to the manifest or set "
    "[qpcr] default_dna_input_ng"
)


@dataclass
class QpcrResult:
    wells: pd.DataFrame  # assay columns of qpcr_wells
    runs: pd.DataFrame  # assay columns of qpcr_runs
    copies: pd.DataFrame  # assay columns of car_copies (without collection_date)
    qc_failures: list[str] = field(default_factory=list)
    """Why the plate failed QC, one sentence per failed rule; empty when it passed."""

    @property
    def passed_qc(self) -> bool:
        return not self.qc_failures

    @property
    def verdict(self) -> QcVerdict:
        """The plate's QC verdict (see `qc_verdict`)."""
        return qc_verdict(self)


def qc_verdict(result: QpcrResult) -> QcVerdict:
    """Passed, or failed QC with each failed rule (target, wells, value, limit), which samples
    have no result from the plate, and to re-run the assay (last, where a long reason keeps its
    end). The wells and the QC figures of a failed plate are kept; its copies are not reported."""
    if result.passed_qc:
        return QcVerdict()
    samples = sorted(set(result.copies["sample_name"].astype(str)))
    named = ", ".join(samples[:6]) + (f" and {len(samples) - 6} more" if len(samples) > 6 else "")
    without = f"no result reported for {named}" if samples else "no sample on the plate"
    message = (
        f"plate failed QC, {without}: {'; '.join(result.qc_failures)}. Re-run the assay on a new "
        "plate and drop its export into the inbox (this run's QC figures are kept in qpcr_runs)"
    )
    return QcVerdict(FAILED_QC, tuple(result.qc_failures), message)


@dataclass(frozen=True)
class TargetQc:
    has_standards: bool
    curve: StandardCurve | None
    curve_problem: str
    loq: float | None
    ntc_wells: int
    ntc_amplified: int
    n_high_sd: int
    positive_control_copies: float
    ntc_hits: tuple[tuple[str, float], ...] = ()
    """(well, Cq) of each NTC that amplified before the cutoff."""
    standard_spreads: tuple[tuple[float, tuple[str, ...], float], ...] = ()
    """(copies, wells, Cq SD) of each standard level whose replicates spread beyond the limit."""


def analyse_plate(
    plate: QpcrPlate,
    settings: QpcrSettings,
    dna_input_ng: Mapping[str, float] | None = None,
) -> QpcrResult:
    """QC per target and copy numbers per sample for one plate.

    `dna_input_ng` maps sample names to ng DNA per reaction (from the manifest); it is used where
    the export itself does not carry the input.
    """
    wells = plate.wells.copy()
    wells.insert(0, "run_id", plate.run_id)
    wells.insert(1, "instrument_format", plate.instrument_format)
    wells.insert(2, "instrument", plate.instrument)
    wells = with_amplification(wells, plate)
    usable = wells[~wells["omitted"].astype(bool)]

    qc_by_target: dict[str, TargetQc] = {}
    for target, target_wells in usable.groupby("target", sort=True):
        qc_by_target[str(target)] = _target_qc(target_wells, settings)

    run_rows = {
        target: _run_row(plate, target, qc, settings) for target, qc in qc_by_target.items()
    }
    runs = pd.DataFrame([row for row, _ in run_rows.values()])
    copies = _sample_copies(usable, qc_by_target, run_rows, settings, dna_input_ng or {})
    failures = [f for target in sorted(run_rows) for f in run_rows[target][1]]
    return QpcrResult(wells=wells, runs=runs, copies=copies, qc_failures=failures)


def with_amplification(wells: pd.DataFrame, plate: QpcrPlate) -> pd.DataFrame:
    """The wells with their amplification curve as two lists per well x target (cycles and
    fluorescence, null where the export holds none) and the name of the signal."""
    curves = plate.amplification.sort_values(["well", "target", "cycle"]).groupby(
        ["well", "target"], sort=False
    )
    lists = pd.DataFrame({
        "amplification_cycles": curves["cycle"].agg(list),
        "amplification_fluorescence": curves["fluorescence"].agg(list),
    })  # fmt: skip
    joined = wells.join(lists, on=["well", "target"])
    has_curve = joined["amplification_cycles"].notna()
    for column in lists.columns:  # None, not NaN, where a well has no curve: a list column
        joined[column] = joined[column].astype(object).where(has_curve, None)
    joined["amplification_measure"] = np.where(has_curve, plate.amplification_measure, None)
    return joined


def _target_qc(target_wells: pd.DataFrame, settings: QpcrSettings) -> TargetQc:
    standards = target_wells[target_wells["task"] == "STANDARD"]
    curve: StandardCurve | None = None
    problem = ""
    if standards.empty:
        problem = "no standard wells"
    else:
        try:
            curve = fit_standard_curve(
                standards["standard_quantity"].to_numpy(),
                standards["cq"].to_numpy(),
                settings.min_standard_levels,
            )
        except CurveError as err:
            problem = str(err)
    ntc = target_wells[target_wells["task"] == "NTC"]
    contaminated = ntc["amplified"].astype(bool) & (ntc["cq"] < settings.ntc_cq_cutoff)
    hits = ntc[contaminated]
    unknowns = target_wells[target_wells["task"] == "UNKNOWN"]
    controls = unknowns["sample_name"].astype(str).map(settings.is_positive_control).astype(bool)
    sds = unknowns[~controls].groupby("sample_name")["cq"].std(ddof=1)
    return TargetQc(
        has_standards=not standards.empty,
        curve=curve,
        curve_problem=problem,
        loq=_limit_of_quantification(standards, settings) if curve else None,
        ntc_wells=len(ntc),
        ntc_amplified=int(contaminated.sum()),
        n_high_sd=int((sds > settings.replicate_sd_max).sum()),
        positive_control_copies=(
            _mean_copies(unknowns[controls], curve) if curve and controls.any() else np.nan
        ),
        ntc_hits=tuple(zip(hits["well"].astype(str), hits["cq"].astype(float), strict=True)),
        standard_spreads=_standard_spreads(standards, settings),
    )


def _standard_spreads(
    standards: pd.DataFrame, settings: QpcrSettings
) -> tuple[tuple[float, tuple[str, ...], float], ...]:
    """The standard levels whose amplified replicates spread beyond `replicate_sd_max`."""
    spreads = []
    for quantity, level in standards.groupby("standard_quantity", sort=True):
        cqs = _amplified_cqs(level)
        sd = float(cqs.std(ddof=1)) if len(cqs) > 1 else 0.0
        if sd > settings.replicate_sd_max:
            wells = tuple(level.loc[cqs.index, "well"].astype(str))
            spreads.append((float(quantity), wells, sd))
    return tuple(spreads)


def _limit_of_quantification(standards: pd.DataFrame, settings: QpcrSettings) -> float | None:
    if settings.loq_copies_per_reaction is not None:
        return settings.loq_copies_per_reaction
    for quantity, level in standards.groupby("standard_quantity", sort=True):
        amplified = level["amplified"].astype(bool)
        sd = level["cq"].std(ddof=1) if amplified.sum() > 1 else 0.0
        if amplified.all() and sd <= settings.replicate_sd_max:
            return float(quantity)
    return None


def _run_row(
    plate: QpcrPlate, target: str, qc: TargetQc, settings: QpcrSettings
) -> tuple[dict, list[str]]:
    """The target's `qpcr_runs` row and the QC rules it failed."""
    rules: list[str] = []
    curve_verdict = "NONE"
    if qc.curve is None:
        rules.append(f"standard curve: none ({qc.curve_problem})")
    else:
        eff, r2 = qc.curve.efficiency_pct, qc.curve.r_squared
        eff_ok = settings.efficiency_min_pct <= eff <= settings.efficiency_max_pct
        r2_ok = r2 >= settings.r_squared_min
        curve_verdict = "PASS" if eff_ok and r2_ok else "FAIL"
        rules.append(
            f"efficiency {eff:.1f}% within {settings.efficiency_min_pct:g}-"
            f"{settings.efficiency_max_pct:g}%: {'pass' if eff_ok else 'FAIL'}"
        )
        rules.append(f"R2 {r2:.4f} >= {settings.r_squared_min:g}: {'pass' if r2_ok else 'FAIL'}")
    if qc.ntc_wells:
        ntc_ok = qc.ntc_amplified <= settings.ntc_max_amplified
        ntc_verdict = "PASS" if ntc_ok else "FAIL"
        rules.append(
            f"NTC {qc.ntc_amplified}/{qc.ntc_wells} amplified before Cq "
            f"{settings.ntc_cq_cutoff:g} (allowed {settings.ntc_max_amplified}): "
            f"{'pass' if ntc_ok else 'FAIL'}"
        )
    else:
        ntc_verdict = "NONE"
        rules.append("NTC: none on plate")
    replicate_verdict = "FLAG" if qc.n_high_sd else "PASS"
    rules.append(
        f"replicate SD <= {settings.replicate_sd_max:g} Cq: {qc.n_high_sd} sample(s) above"
    )
    if qc.curve is None:
        verdict = "NO_CURVE" if ntc_verdict != "FAIL" else "FAIL"
    else:
        verdict = "PASS" if curve_verdict == "PASS" and ntc_verdict != "FAIL" else "FAIL"
    failed = _qc_failures(target, qc, settings) if verdict == "FAIL" else []
    vendor = plate.instrument_curves.get(target, {})
    return {
        "run_id": plate.run_id,
        "instrument_format": plate.instrument_format,
        "instrument": plate.instrument,
        "run_started": plate.run_started,
        "target": target,
        "role": settings.role_of(target),
        "n_standard_wells": qc.curve.n_wells if qc.curve else 0,
        "n_standard_levels": qc.curve.n_levels if qc.curve else 0,
        "slope": qc.curve.slope if qc.curve else np.nan,
        "intercept": qc.curve.intercept if qc.curve else np.nan,
        "efficiency_pct": qc.curve.efficiency_pct if qc.curve else np.nan,
        "r_squared": qc.curve.r_squared if qc.curve else np.nan,
        "lowest_standard": qc.curve.lowest_standard if qc.curve else np.nan,
        "highest_standard": qc.curve.highest_standard if qc.curve else np.nan,
        "loq_copies_per_reaction": qc.loq if qc.loq is not None else np.nan,
        "lod_copies_per_reaction": settings.lod_copies_per_reaction,
        "instrument_slope": vendor.get("slope", np.nan),
        "instrument_efficiency_pct": vendor.get("efficiency_pct", np.nan),
        "ntc_wells": qc.ntc_wells,
        "ntc_amplified": qc.ntc_amplified,
        "ntc_verdict": ntc_verdict,
        "curve_verdict": curve_verdict,
        "replicate_verdict": replicate_verdict,
        "n_samples_replicate_sd_high": qc.n_high_sd,
        "positive_control_copies_per_reaction": qc.positive_control_copies,
        "qc_verdict": verdict,
        "qc_rules": "; ".join(rules),
    }, failed


def _qc_failures(target: str, qc: TargetQc, settings: QpcrSettings) -> list[str]:
    """Each QC rule `target` failed on the plate, naming the wells, the measured value and the
    limit; the standard levels that spread too far are named where the curve failed, as the
    likely cause."""
    failures = []
    curve = qc.curve
    if curve is not None:
        low, high = settings.efficiency_min_pct, settings.efficiency_max_pct
        if not low <= curve.efficiency_pct <= high:
            failures.append(
                f"{target}: amplification efficiency {curve.efficiency_pct:.1f} % outside "
                f"{low:g}–{high:g} % (slope {curve.slope:.2f} over {curve.n_levels} standard "
                "levels)"
            )
        if curve.r_squared < settings.r_squared_min:
            failures.append(
                f"{target}: standard curve R² {curve.r_squared:.3f} < {settings.r_squared_min:g}"
            )
        if failures:
            failures.extend(
                f"{target}: standard {copies:g} copies, wells {', '.join(wells)}: replicate "
                f"spread {sd:.2f} Cq > {settings.replicate_sd_max:g}"
                for copies, wells, sd in qc.standard_spreads
            )
    if qc.ntc_amplified > settings.ntc_max_amplified:
        hits = ", ".join(f"{well} amplified at Cq {cq:.1f}" for well, cq in qc.ntc_hits)
        failures.append(
            f"{target}: NTC {'well' if len(qc.ntc_hits) == 1 else 'wells'} {hits} (before Cq "
            f"{settings.ntc_cq_cutoff:g}; {settings.ntc_max_amplified} allowed)"
        )
    return failures


def _sample_copies(
    usable: pd.DataFrame,
    qc_by_target: Mapping[str, TargetQc],
    run_rows: Mapping[str, tuple[dict, list[str]]],
    settings: QpcrSettings,
    manifest_dna: Mapping[str, float],
) -> pd.DataFrame:
    unknowns = usable[usable["task"] == "UNKNOWN"]
    unknowns = unknowns[
        ~unknowns["sample_name"].astype(str).map(settings.is_positive_control).astype(bool)
    ]
    reference = _reference_per_sample(unknowns, qc_by_target, settings)
    rows = []
    for (sample, target), reps in unknowns.groupby(["sample_name", "target"], sort=True):
        if not _reported(str(target), qc_by_target[str(target)], settings):
            continue
        rows.append(
            _copies_row(
                str(sample), str(target), reps, qc_by_target[str(target)], run_rows[str(target)],
                reference.get(str(sample)), settings, manifest_dna,
            )
        )  # fmt: skip
    columns = [
        "run_id", "sample_name", "target", "n_replicates", "n_amplified", "cq_mean", "cq_sd",
        "replicate_sd_ok", "copies_per_reaction", "dna_input_ng", "dna_input_source",
        "copies_per_ug", "copies_unit", "result", "result_reason", "reference_target",
        "reference_cq_mean", "reference_copies_per_reaction", "copies_per_reference_copy",
        "delta_cq", "below_lod", "below_loq", "lod_copies_per_reaction",
        "loq_copies_per_reaction", "plate_qc_verdict",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _reported(target: str, qc: TargetQc, settings: QpcrSettings) -> bool:
    """A CAR target always gets sample rows (not measured when it has no curve); the reference
    gene never (it normalises); another target only where the plate carries its standards, since
    a target run without them (e.g. an internal amplification control) is not quantified."""
    role = settings.role_of(target)
    return role == "car" or (role == "other" and qc.has_standards)


@dataclass(frozen=True)
class _Reference:
    target: str
    cq_mean: float
    copies_per_reaction: float


def _reference_per_sample(
    unknowns: pd.DataFrame, qc_by_target: Mapping[str, TargetQc], settings: QpcrSettings
) -> dict[str, _Reference]:
    references: dict[str, _Reference] = {}
    for target in sorted(qc_by_target):
        if settings.role_of(target) != "reference":
            continue
        curve = qc_by_target[target].curve
        for sample, reps in unknowns[unknowns["target"] == target].groupby("sample_name"):
            cqs = _amplified_cqs(reps)
            cq_mean = float(cqs.mean()) if len(cqs) else np.nan
            copies = float(np.mean(curve.copies(cqs.to_numpy()))) if curve and len(cqs) else np.nan
            references.setdefault(str(sample), _Reference(target, cq_mean, copies))
    return references


def _mean_copies(reps: pd.DataFrame, curve: StandardCurve) -> float:
    """Mean copies over replicates, a replicate without amplification counting as zero (the
    positive control's rule: a failing control must show in its trend)."""
    per_well = np.where(reps["amplified"].astype(bool), curve.copies(reps["cq"].to_numpy()), 0.0)
    return float(np.mean(per_well))


def _amplified_cqs(reps: pd.DataFrame) -> pd.Series:
    """The Cq values of the replicates that amplified."""
    return reps.loc[reps["amplified"].astype(bool), "cq"].astype(float)


@dataclass(frozen=True)
class Finding:
    """What a sample's replicates say about one target, before the DNA input is applied."""

    result: str
    reason: str | None
    copies_per_reaction: float
    """The estimate: NaN where there is none (not detected, not measured)."""


def classify_replicates(
    reps: pd.DataFrame, target: str, qc: TargetQc, run: tuple[dict, list[str]],
    settings: QpcrSettings,
) -> Finding:  # fmt: skip
    """The result of one sample x target from its replicate wells and its plate's QC."""
    n, cqs = len(reps), _amplified_cqs(reps)
    if qc.curve is None:
        return Finding(
            NOT_MEASURED,
            f"no standard curve for {target} on this plate ({qc.curve_problem}); quantify the "
            "sample on a plate with the plasmid standards",
            np.nan,
        )
    run_row, failed_rules = run
    if run_row["qc_verdict"] != "PASS":
        failed = "; ".join(failed_rules) or run_row["qc_verdict"]
        return Finding(
            NOT_MEASURED, f"plate QC failed ({failed}); re-run the assay on a new plate", np.nan
        )
    unusable = ~np.isfinite(cqs.to_numpy()) | (cqs.to_numpy() <= 0)
    if unusable.any():
        wells = ", ".join(reps.loc[cqs.index[unusable], "well"].astype(str))
        return Finding(
            NOT_MEASURED,
            f"well {wells}: amplified but its Cq is not a positive number; check the export",
            np.nan,
        )
    if cqs.empty:
        return Finding(NOT_DETECTED, f"not detected: 0 of {n} replicates amplified", np.nan)
    if qc.loq is None:
        return Finding(
            NOT_MEASURED,
            f"no LOQ for {target} on this plate: no standard level amplified in every replicate "
            f"within {settings.replicate_sd_max:g} Cq; set [qpcr] loq_copies_per_reaction",
            np.nan,
        )
    copies = float(np.mean(qc.curve.copies(cqs.to_numpy())))
    if copies < qc.loq:
        return Finding(
            BELOW_LOQ,
            f"detected in {len(cqs)} of {n} replicates, {copies:.3g} copies/reaction < LOQ "
            f"{qc.loq:g}",
            copies,
        )
    if len(cqs) == 1 and n > 1:
        return Finding(
            NOT_MEASURED,
            f"only 1 of {n} replicates amplified, at {copies:.3g} copies/reaction (LOQ "
            f"{qc.loq:g}): the others failed; repeat the sample",
            np.nan,
        )
    return Finding(QUANTIFIED, None, copies)


def _copies_row(
    sample: str,
    target: str,
    reps: pd.DataFrame,
    qc: TargetQc,
    run: tuple[dict, list[str]],
    reference: _Reference | None,
    settings: QpcrSettings,
    manifest_dna: Mapping[str, float],
) -> dict:
    finding = classify_replicates(reps, target, qc, run, settings)
    n_amplified = int(reps["amplified"].astype(bool).sum())
    cqs = _amplified_cqs(reps)
    cqs = cqs[np.isfinite(cqs) & (cqs > 0)]  # Cq statistics over readable Cq values only
    cq_sd = float(cqs.std(ddof=1)) if len(cqs) > 1 else np.nan
    cq_mean = float(cqs.mean()) if len(cqs) else np.nan
    copies = finding.copies_per_reaction
    dna_ng, dna_source = _dna_input(sample, reps, settings, manifest_dna)
    has_dna = bool(dna_ng > 0)  # NaN compares False
    result, reason = finding.result, finding.reason
    if result in (QUANTIFIED, BELOW_LOQ) and not has_dna:
        result = NOT_MEASURED
        reason = (
            NO_DNA_INPUT
            if dna_source is None
            else f"DNA input {dna_ng:g} ng (from the {dna_source}) is not a positive amount; "
            "correct it"
        )
    ref_copies = reference.copies_per_reaction if reference else np.nan
    return {
        "run_id": reps["run_id"].iloc[0],
        "sample_name": sample,
        "target": target,
        "n_replicates": len(reps),
        "n_amplified": n_amplified,
        "cq_mean": cq_mean,
        "cq_sd": cq_sd,
        "replicate_sd_ok": bool(cq_sd <= settings.replicate_sd_max) if len(cqs) > 1 else None,
        "copies_per_reaction": copies,
        "dna_input_ng": dna_ng,
        "dna_input_source": dna_source,
        "copies_per_ug": copies / (dna_ng / 1000.0) if has_dna else np.nan,
        "copies_unit": COPIES_UNIT,
        "result": result,
        "result_reason": reason,
        "reference_target": reference.target if reference else None,
        "reference_cq_mean": reference.cq_mean if reference else np.nan,
        "reference_copies_per_reaction": ref_copies,
        "copies_per_reference_copy": copies / ref_copies if ref_copies > 0 else np.nan,
        "delta_cq": cq_mean - reference.cq_mean if reference else np.nan,
        **_limit_flags(finding, qc, settings),
        "lod_copies_per_reaction": settings.lod_copies_per_reaction,
        "loq_copies_per_reaction": qc.loq if qc.loq is not None else np.nan,
        "plate_qc_verdict": run[0]["qc_verdict"],
    }


def _limit_flags(finding: Finding, qc: TargetQc, settings: QpcrSettings) -> dict:
    """`below_lod` / `below_loq`: true when not detected, from the estimate where there is one,
    and NULL (unknown) where nothing was measured, so a missing value never reads as "CAR lost"."""
    if finding.result == NOT_DETECTED:
        return {"below_lod": True, "below_loq": True}
    copies = finding.copies_per_reaction
    if math.isnan(copies):
        return {"below_lod": None, "below_loq": None}
    return {
        "below_lod": copies < settings.lod_copies_per_reaction,
        "below_loq": qc.loq is None or copies < qc.loq,
    }


def _dna_input(
    sample: str, reps: pd.DataFrame, settings: QpcrSettings, manifest_dna: Mapping[str, float]
) -> tuple[float, str | None]:
    from_export = reps["dna_input_ng"].dropna()
    if len(from_export):
        return float(from_export.iloc[0]), "export"
    if sample in manifest_dna and manifest_dna[sample] == manifest_dna[sample]:
        return float(manifest_dna[sample]), "manifest"
    if settings.default_dna_input_ng is not None:
        return float(settings.default_dna_input_ng), "setting"
    return np.nan, None
