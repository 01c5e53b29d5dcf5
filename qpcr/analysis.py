"""From one plate's wells to QC per target and CAR copy numbers per sample.

Conventions (documented because labs differ):
- The curve is fitted per target over every amplified, non-omitted standard well.
- Copies per reaction of a sample are the mean over its replicate wells of the copies each well's
  Cq gives, a replicate without amplification counting as zero copies; a sample with no amplified
  replicate has 0 copies and is below the LOD.
- The LOQ is the `loq_copies_per_reaction` setting, else the lowest standard level whose
  replicates all amplified with an SD within the replicate limit.
- Copies per ug genomic DNA = copies per reaction / (ng DNA per reaction / 1000).
- Wells of the run's positive control (sample names in `positive_control_names`) are quantified
  per target into `qpcr_runs` for QC trends and are never reported as samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpcr.curve import CurveError, StandardCurve, fit_standard_curve
from qpcr.model import QpcrPlate
from qpcr.settings import QpcrSettings

COPIES_UNIT = "copies/ug gDNA"


@dataclass
class QpcrResult:
    wells: pd.DataFrame  # assay columns of qpcr_wells
    runs: pd.DataFrame  # assay columns of qpcr_runs
    copies: pd.DataFrame  # assay columns of car_copies (without collection_date)


@dataclass(frozen=True)
class TargetQc:
    curve: StandardCurve | None
    curve_problem: str
    loq: float | None
    ntc_wells: int
    ntc_amplified: int
    n_high_sd: int
    positive_control_copies: float


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
    usable = wells[~wells["omitted"].astype(bool)]

    qc_by_target: dict[str, TargetQc] = {}
    for target, target_wells in usable.groupby("target", sort=True):
        qc_by_target[str(target)] = _target_qc(target_wells, settings)

    runs = pd.DataFrame(
        [_run_row(plate, target, qc, settings) for target, qc in qc_by_target.items()]
    )
    verdict_by_target = (
        dict(zip(runs["target"], runs["qc_verdict"], strict=True)) if len(runs) else {}
    )
    copies = _sample_copies(usable, qc_by_target, verdict_by_target, settings, dna_input_ng or {})
    return QpcrResult(wells=wells, runs=runs, copies=copies)


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
    unknowns = target_wells[target_wells["task"] == "UNKNOWN"]
    controls = unknowns["sample_name"].astype(str).map(settings.is_positive_control).astype(bool)
    sds = unknowns[~controls].groupby("sample_name")["cq"].std(ddof=1)
    return TargetQc(
        curve=curve,
        curve_problem=problem,
        loq=_limit_of_quantification(standards, settings) if curve else None,
        ntc_wells=len(ntc),
        ntc_amplified=int(contaminated.sum()),
        n_high_sd=int((sds > settings.replicate_sd_max).sum()),
        positive_control_copies=(
            _mean_copies(unknowns[controls], curve) if curve and controls.any() else np.nan
        ),
    )


def _limit_of_quantification(standards: pd.DataFrame, settings: QpcrSettings) -> float | None:
    if settings.loq_copies_per_reaction is not None:
        return settings.loq_copies_per_reaction
    for quantity, level in standards.groupby("standard_quantity", sort=True):
        amplified = level["amplified"].astype(bool)
        sd = level["cq"].std(ddof=1) if amplified.sum() > 1 else 0.0
        if amplified.all() and sd <= settings.replicate_sd_max:
            return float(quantity)
    return None


def _run_row(plate: QpcrPlate, target: str, qc: TargetQc, settings: QpcrSettings) -> dict:
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
    }


def _sample_copies(
    usable: pd.DataFrame,
    qc_by_target: Mapping[str, TargetQc],
    verdict_by_target: Mapping[str, str],
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
        qc = qc_by_target[str(target)]
        if qc.curve is None or settings.role_of(str(target)) == "reference":
            continue
        rows.append(
            _copies_row(
                str(sample), str(target), reps, qc, verdict_by_target[str(target)],
                reference.get(str(sample)), settings, manifest_dna,
            )
        )  # fmt: skip
    columns = [
        "run_id", "sample_name", "target", "n_replicates", "n_amplified", "cq_mean", "cq_sd",
        "replicate_sd_ok", "copies_per_reaction", "dna_input_ng", "dna_input_source",
        "copies_per_ug", "copies_unit", "reference_target", "reference_cq_mean",
        "reference_copies_per_reaction", "copies_per_reference_copy", "delta_cq", "below_lod",
        "below_loq", "lod_copies_per_reaction", "loq_copies_per_reaction", "plate_qc_verdict",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


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
            cq_mean = float(reps["cq"].mean())
            copies = _mean_copies(reps, curve) if curve else np.nan
            references.setdefault(str(sample), _Reference(target, cq_mean, copies))
    return references


def _mean_copies(reps: pd.DataFrame, curve: StandardCurve) -> float:
    per_well = np.where(reps["amplified"].astype(bool), curve.copies(reps["cq"].to_numpy()), 0.0)
    return float(np.mean(per_well))


def _copies_row(
    sample: str,
    target: str,
    reps: pd.DataFrame,
    qc: TargetQc,
    plate_verdict: str,
    reference: _Reference | None,
    settings: QpcrSettings,
    manifest_dna: Mapping[str, float],
) -> dict:
    assert qc.curve is not None
    amplified = reps["amplified"].astype(bool)
    cqs = reps.loc[amplified, "cq"]
    cq_sd = float(cqs.std(ddof=1)) if len(cqs) > 1 else np.nan
    copies = _mean_copies(reps, qc.curve)
    dna_ng, dna_source = _dna_input(sample, reps, settings, manifest_dna)
    ref_copies = reference.copies_per_reaction if reference else np.nan
    cq_mean = float(cqs.mean()) if len(cqs) else np.nan
    return {
        "run_id": reps["run_id"].iloc[0],
        "sample_name": sample,
        "target": target,
        "n_replicates": len(reps),
        "n_amplified": int(amplified.sum()),
        "cq_mean": cq_mean,
        "cq_sd": cq_sd,
        "replicate_sd_ok": bool(cq_sd <= settings.replicate_sd_max) if len(cqs) > 1 else None,
        "copies_per_reaction": copies,
        "dna_input_ng": dna_ng,
        "dna_input_source": dna_source,
        "copies_per_ug": copies / (dna_ng / 1000.0) if dna_ng and dna_ng > 0 else np.nan,
        "copies_unit": COPIES_UNIT,
        "reference_target": reference.target if reference else None,
        "reference_cq_mean": reference.cq_mean if reference else np.nan,
        "reference_copies_per_reaction": ref_copies,
        "copies_per_reference_copy": copies / ref_copies
        if ref_copies and ref_copies > 0
        else np.nan,
        "delta_cq": cq_mean - reference.cq_mean if reference else np.nan,
        "below_lod": bool(copies < settings.lod_copies_per_reaction),
        "below_loq": bool(qc.loq is None or copies < qc.loq),
        "lod_copies_per_reaction": settings.lod_copies_per_reaction,
        "loq_copies_per_reaction": qc.loq if qc.loq is not None else np.nan,
        "plate_qc_verdict": plate_verdict,
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
