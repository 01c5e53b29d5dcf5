"""Recognising a file and turning it into table batches with identity, one assay at a time.

Each `compute_*` function calls its assay library (which knows nothing of patients, Prefect or
Parquet), resolves the samples' identity, and returns frames holding a table's assay and identity
columns. Anything wrong with the input raises `Rejection`, whose reason is what the technician
reads next to the quarantined file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

import cba
import gating
from pipelines.identity import (
    IdentityError,
    IdentityResolver,
    Manifest,
    looks_like_manifest,
    read_manifest_file,
)
from pipelines.settings import Settings
from qpcr import readers as qpcr_readers
from qpcr.analysis import QpcrResult, analyse_plate
from qpcr.model import QpcrFormatError

MANIFEST = "manifest"
QPCR = "qpcr"
CBA = "cba"
FLOW = "flow"


FIX_FILE, COMPLETE_MANIFEST, RERUN_ASSAY, REPORT_FAULT = (
    "fix the file", "complete the manifest", "re-run the assay", "report the fault",
)  # fmt: skip
"""What the technician does about a refused file: the export is wrong (fix it, export again);
its samples are not known (complete the manifest); the export is right about a run that failed
QC (re-run the assay); cartflow itself failed (report it)."""


class Rejection(Exception):
    """The file cannot be taken; `reason` says why and what to do, `action` which kind of
    remedy that is (`FIX_FILE`, `COMPLETE_MANIFEST`, `RERUN_ASSAY`, `REPORT_FAULT`)."""

    def __init__(
        self,
        reason: str,
        kind: str | None = None,
        instrument_format: str | None = None,
        action: str = FIX_FILE,
    ):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.instrument_format = instrument_format
        self.action = action


@dataclass
class AssayTables:
    kind: str
    instrument_format: str
    run_identity: str
    tables: dict[str, pd.DataFrame]
    warnings: list[str] = field(default_factory=list)
    qc_failure: str | None = None
    """Why the run failed QC (and to re-run the assay): its QC tables are kept, the file is
    quarantined with this reason once they pass validation, and no result of it is reported."""
    samples: list[tuple[str, str, str]] = field(default_factory=list)
    """(patient, timepoint, target) of each qPCR result the run reports, or for a run that
    failed QC would have reported: the key by which a later passing run resolves a failed one."""
    run_started: datetime | None = None
    """When the run started, where the export says."""


@dataclass(frozen=True)
class Recognised:
    kind: str
    instrument_format: str


def recognise(path: Path) -> Recognised:
    """The kind and vendor format from the file's content; the extension is never trusted."""
    size = path.stat().st_size
    if size == 0:
        raise Rejection("the file is empty (0 bytes); export it again from the instrument")
    if gating.sniff(path):
        return _recognise_fcs(path)
    if is_manifest(path):
        return Recognised(MANIFEST, "sample-manifest")
    qpcr_format = qpcr_readers.sniff(path)
    if qpcr_format:
        return Recognised(QPCR, qpcr_format)
    cba_format = cba.sniff(path)
    if cba_format:
        return Recognised(CBA, cba_format)
    raise Rejection(
        "not a recognised export: expected a qPCR export (QuantStudio, 7500/StepOne, CFX, "
        "LightCycler, RDML, Design & Analysis), a bead-array export, an FCS file or a sample "
        "manifest; check that the right file was exported"
    )


def _recognise_fcs(path: Path) -> Recognised:
    """An FCS file is a bead-array acquisition (LEGENDplex, BD CBA) or a phenotyping tube."""
    bead_format = cba.sniff(path)
    if bead_format:
        return Recognised(CBA, bead_format)
    try:
        keywords = gating.fcs_keywords(path)
    except gating.FlowFormatError as err:
        raise Rejection(str(err), FLOW, "fcs") from err
    if gating.is_bead_array(keywords):
        raise Rejection(
            f"{path.name}: a bead-array acquisition, but its well and standard cannot be told from "
            "its name or keywords; name it as the bead-array software does (e.g. K2-C07-A7.fcs) "
            "or export the MFI table instead",
            CBA, "bead-fcs",
        )  # fmt: skip
    with path.open("rb") as handle:
        version = handle.read(6).decode("ascii", errors="replace")  # "FCS3.1"
    return Recognised(FLOW, version.lower())


def is_manifest(path: Path) -> bool:
    header = _table_header(path)
    return header is not None and looks_like_manifest(header)


def _table_header(path: Path) -> list[str] | None:
    """The first row of a CSV/TSV or of an XLSX's first sheet, or None if it is neither."""
    with path.open("rb") as handle:
        start = handle.read(4096)
    if start.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                if "xl/workbook.xml" not in archive.namelist():
                    return None
            first = pd.read_excel(path, nrows=0)
        except Exception:  # noqa: BLE001 - any workbook that cannot be read is not a manifest
            # (a damaged archive, XML that does not parse: `undefined entity`, ...); the file
            # is then refused by whichever reader recognises it, or as not recognised
            return None
        return [str(c) for c in first.columns]
    try:
        text = start.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    line = text.splitlines()[0] if text else ""
    for separator in (",", "\t", ";"):
        if separator in line:
            return [cell.strip().strip('"') for cell in line.split(separator)]
    return None


def compute_manifest(path: Path) -> Manifest:
    """The manifest's entries (`ManifestEntry.as_row` is the ledger's row) and whether it is a
    correction manifest; any problem is a Rejection naming the row."""
    try:
        return read_manifest_file(path)
    except IdentityError as err:
        raise Rejection(f"manifest: {err}", MANIFEST, "sample-manifest") from err


def _identity_frame(
    names: pd.Series, resolver: IdentityResolver, kind: str, fmt: str
) -> pd.DataFrame:
    """patient_id, timepoint, study_day, collection_date and dna_input_ng per sample name."""
    resolved, problems = {}, []
    for name in sorted(set(names.dropna().astype(str))):
        try:
            resolved[name] = resolver.resolve(name)
        except IdentityError as err:
            problems.append(str(err))
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise Rejection(f"identity: {shown}{more}", kind, fmt, COMPLETE_MANIFEST)
    rows = {
        name: {
            "patient_id": ident.patient_id,
            "timepoint": ident.timepoint,
            "study_day": ident.study_day,
            "collection_date": ident.collection_date,
            "dna_input_ng": ident.dna_input_ng,
        }
        for name, ident in resolved.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


_QPCR_IDENTITY = ["patient_id", "timepoint", "study_day", "collection_date", "dna_input_ng"]


def compute_qpcr(
    path: Path, instrument_format: str, settings: Settings, resolver: IdentityResolver
) -> AssayTables:
    """QC per target and CAR copies per sample of one plate.

    A plate that fails QC keeps its wells and QC figures (`qpcr_runs`, verdict FAIL, so trends
    include it) but gives no car_copies; `AssayTables.qc_failure` says why (`qc_failure_reason`).
    A plate of standards and controls only (an assay qualification or curve-trend run) has no
    sample to resolve: its wells and curves are kept and car_copies is empty.
    """
    try:
        plate = qpcr_readers.read_plate(path)
    except QpcrFormatError as err:
        raise Rejection(str(err), QPCR, instrument_format) from err
    is_control = plate.wells["sample_name"].astype(str).map(settings.qpcr.is_positive_control)
    is_sample = (plate.wells["task"] == "UNKNOWN") & ~is_control.astype(bool)
    identity = _identity_frame(
        plate.wells.loc[is_sample, "sample_name"], resolver, QPCR, plate.instrument_format
    ).reindex(columns=_QPCR_IDENTITY)  # the columns stay when the plate has no sample
    dna_from_manifest = identity["dna_input_ng"].dropna().to_dict()
    result = analyse_plate(plate, settings.qpcr, dna_from_manifest)

    wells = result.wells.copy()
    for column in ("patient_id", "timepoint", "study_day"):
        wells[column] = wells["sample_name"].map(identity[column]).where(is_sample.to_numpy())
    copies = result.copies.join(
        identity[["patient_id", "timepoint", "study_day", "collection_date"]], on="sample_name"
    )
    warnings = list(plate.warnings)
    if not is_sample.any():
        warnings.append("no sample wells: only the standard curve and controls are kept")
    tables = {"qpcr_wells": wells, "qpcr_runs": result.runs}
    if result.passed_qc:
        tables["car_copies"] = copies
    return AssayTables(
        kind=QPCR,
        instrument_format=plate.instrument_format,
        run_identity=plate.run_id,
        tables=tables,
        warnings=warnings,
        qc_failure=None if result.passed_qc else qc_failure_reason(path.name, result),
        samples=_sample_keys(copies),
        run_started=plate.run_started,
    )


def _sample_keys(copies: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(patient, timepoint, target) of each car_copies row: a sample is its patient's draw at
    a timepoint, whatever name (accession or pattern) the plate gives it."""
    keys = copies[["patient_id", "timepoint", "target"]].dropna()
    return sorted({tuple(str(v) for v in row) for row in keys.itertuples(index=False)})


def qc_failure_reason(name: str, result: QpcrResult) -> str:
    """The quarantine reason of a plate that failed QC: which samples have no result from it,
    each failed rule (target, wells, value, limit), and to re-run the assay (last, where a long
    reason keeps its end)."""
    samples = sorted(set(result.copies["sample_name"].astype(str)))
    named = ", ".join(samples[:6]) + (f" and {len(samples) - 6} more" if len(samples) > 6 else "")
    without = f"no result reported for {named}" if samples else "no sample on the plate"
    return (
        f"{name}: plate failed QC, {without}: {'; '.join(result.qc_failures)}. Re-run the assay "
        "on a new plate and drop its export into the inbox (this run's QC figures are kept in "
        "qpcr_runs)"
    )


def compute_cba(
    path: Path, instrument_format: str, settings: Settings, resolver: IdentityResolver
) -> AssayTables:
    """Standard curves per analyte and cytokine concentrations per sample of one bead-array plate.

    A plate whose every curve failed (e.g. a standard series written 1000x too large) is refused;
    where only some analytes fail, the plate is taken and those analytes carry no concentration,
    as the vendors' software reports a multiplex plate. Analytes the vocabulary (with the lab's
    `[cba] analyte_aliases`) does not know are kept under their exported names and flagged.
    """
    try:
        plate = cba.read_plate(path, vocabulary=settings.cba.vocabulary)
        result = cba.analyse_plate(plate, settings.cba)
    except cba.CbaFormatError as err:
        # the readers name the file by its path; the technician reads its name
        reason = str(err).replace(str(path), path.name)
        raise Rejection(reason, CBA, instrument_format) from err
    except cba.CbaAnalysisError as err:
        raise Rejection(f"{path.name}: {err.reason}", CBA, instrument_format) from err
    curves = result.curves
    if len(curves) and (curves["verdict"] == "FAIL").all():
        raise Rejection(
            f"{path.name}: every standard curve failed; {_curve_failures(result)}",
            CBA, plate.instrument_format,
        )  # fmt: skip
    if result.cytokines.empty:
        raise Rejection(f"{path.name}: the plate has no sample wells", CBA, plate.instrument_format)
    identity = _identity_frame(
        result.cytokines["sample_name"], resolver, CBA, plate.instrument_format
    )
    cytokines = result.cytokines.join(
        identity[["patient_id", "timepoint", "study_day"]], on="sample_name"
    )
    return AssayTables(
        kind=CBA,
        instrument_format=plate.instrument_format,
        run_identity=result.run_id,
        tables={"cba_curves": curves, "cytokines": cytokines},
        warnings=result.warnings,
    )


def _curve_failures(result: cba.CbaResult) -> str:
    """Why the curves failed, short: the series faults with their analytes, else the first
    analyte's reason and how many more failed."""
    if result.series_breaks:
        return (
            f"{cba.describe_series_breaks(result.series_breaks)}. Correct the standard "
            "concentrations in the instrument software and export the plate again"
        )
    first = result.curves.iloc[0]
    more = len(result.curves) - 1
    return f"{first['analyte']}: {first['verdict_reason']}" + (
        f" (and {more} more analytes)" if more else ""
    )


def compute_flow(
    path: Path, instrument_format: str, settings: Settings, resolver: IdentityResolver
) -> AssayTables:
    """Gate every dataset of one FCS tube with its panel's template."""
    try:
        result = gating.analyse_fcs(path, settings.flow)
    except (gating.FlowFormatError, gating.FlowTemplateError) as err:
        raise Rejection(str(err), FLOW, instrument_format) from err
    identity = _resolve_tube(result.identity, resolver, instrument_format)
    values = {"patient_id": identity.patient_id, "timepoint": identity.timepoint,
              "study_day": identity.study_day}  # fmt: skip
    tables = {
        "flow_samples": result.samples.assign(**values),
        "flow_populations": result.populations.assign(**values),
        "flow_mfi": result.mfi.assign(**values),
    }
    run_identity = _acquisition_identity(result, path)
    return AssayTables(FLOW, instrument_format, run_identity, tables, list(result.warnings))


def _acquisition_identity(result: gating.FlowResult, path: Path) -> str:
    """Same tube, same cytometer, same acquisition time: a re-export of one acquisition.

    The T-cell and B-cell tubes of one blood draw share the sample name, so the panel and tube
    name are part of it; without an acquisition time the file name stands in.
    """
    first = result.samples.iloc[0] if len(result.samples) else {}
    parts = {
        "panel": first.get("panel"),
        "sample": first.get("sample_name"),
        "tube": result.identity.get("TUBE NAME"),
        "cytometer": first.get("cytometer_serial"),
        "acquired": first.get("acquired_at"),
    }
    if parts["acquired"] is None or pd.isna(parts["acquired"]):
        parts["file"] = path.name
    return "flow:" + "|".join(
        f"{k}={v}" for k, v in parts.items() if v is not None and not pd.isna(v)
    )


def _resolve_tube(hints: dict[str, str], resolver: IdentityResolver, fmt: str):
    """The first of the tube's names that resolves: `$SRC`/sample name, other keywords, file name."""
    ordered = [hints.get("sample_name", "")] + [v for k, v in hints.items() if k != "file_name"]
    ordered.append(Path(hints.get("file_name", "")).stem)
    tried: list[str] = []
    for candidate in ordered:
        if candidate and candidate not in tried:
            tried.append(candidate)
            try:
                return resolver.resolve(candidate)
            except IdentityError:
                continue
    raise Rejection(
        f"identity: none of the tube's names ({', '.join(repr(t) for t in tried)}) is in the "
        "manifest or matches the sample-name pattern (e.g. P012_D14); add the accession to the "
        "manifest or set $SRC / the file name",
        FLOW, fmt, COMPLETE_MANIFEST,
    )  # fmt: skip
