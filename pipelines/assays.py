"""Recognising a file and turning it into table batches with identity: a table of the three assay
libraries, with no assay rule of its own.

Each library meets one contract (docs/assay-libraries.md): `sniff` names the vendor format once,
`read` takes it, `sample_names` says which names to resolve, `analyse` returns the tables, the
run's QC verdict and the supersede key. This module resolves the samples' identity (patient,
timepoint, study day, and the manifest's facts a library may use), adds it to the rows, and turns
a library's bad-input error or refusing verdict into a `Rejection`, whose reason is what the
technician reads next to the quarantined file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

import cba.assay
import gating.assay
import qpcr.assay
from assaykit import FAILED_QC, REFUSED, Analysis, AssayInputError, SampleNames
from pipelines.identity import (
    IdentityError,
    IdentityResolver,
    Manifest,
    looks_like_manifest,
    read_manifest_file,
)
from pipelines.settings import Settings
from validation.schemas import TABLES

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


@dataclass(frozen=True)
class Assay:
    """One row of the table: a kind of file, its library (the contract's module) and the
    section of the lab's settings it is analysed with."""

    kind: str
    library: ModuleType
    settings: Callable[[Settings], Any]


ASSAYS: tuple[Assay, ...] = (
    Assay(QPCR, qpcr.assay, attrgetter("qpcr")),
    Assay(CBA, cba.assay, attrgetter("cba")),
    Assay(FLOW, gating.assay, attrgetter("flow")),
)
"""In the order they are asked: the bead-array library claims bead-array FCS files before the
flow library takes every other FCS file."""
_BY_KIND = {assay.kind: assay for assay in ASSAYS}

IDENTITY_FIELDS = ("patient_id", "timepoint", "study_day", "collection_date", "dna_input_ng")
"""What a resolved sample name gives, all of it handed to `analyse` as the sample's facts (a
library takes the ones it knows, e.g. qPCR the DNA input)."""
ROW_IDENTITY = ("patient_id", "timepoint", "study_day", "collection_date")
"""The fields written into a sample's rows, in the tables whose registry entry has the column.
(The DNA input is not one: the library decides which input a result used, export, manifest or
setting, and writes it.)"""


def recognise(path: Path) -> Recognised:
    """The kind and vendor format from the file's content; the extension is never trusted."""
    size = path.stat().st_size
    if size == 0:
        raise Rejection("the file is empty (0 bytes); export it again from the instrument")
    if is_manifest(path):
        return Recognised(MANIFEST, "sample-manifest")
    for assay in ASSAYS:
        found = assay.library.sniff(path)
        if found:
            return Recognised(assay.kind, found)
    raise Rejection(
        "not a recognised export: expected a qPCR export (QuantStudio, 7500/StepOne, CFX, "
        "LightCycler, RDML, Design & Analysis), a bead-array export, an FCS file or a sample "
        "manifest; check that the right file was exported"
    )


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


def compute(
    path: Path, recognised: Recognised, settings: Settings, resolver: IdentityResolver
) -> AssayTables:
    """The file's tables with identity, from its library: read the format `recognise` named,
    resolve the sample names, analyse.

    Refusals, most telling first: bad input (the library's error), a verdict that refuses the
    file, samples the manifest or pattern cannot name, then a run that failed QC (its QC tables
    are kept, `AssayTables.qc_failure` says why and to re-run the assay).
    """
    assay = _BY_KIND[recognised.kind]
    kind, fmt = assay.kind, recognised.instrument_format
    library, assay_settings = assay.library, assay.settings(settings)
    try:
        export = library.read(path, fmt, assay_settings)
        names = library.sample_names(export, assay_settings)
        identity, problems = _resolve(names, resolver)
        analysis: Analysis = library.analyse(export, assay_settings, _facts(identity))
    except AssayInputError as err:
        # libraries name the file by the path they were given; the technician reads its name
        raise Rejection(str(err).replace(str(path), path.name), kind, fmt) from err
    fmt = analysis.instrument_format
    verdict = analysis.verdict
    if verdict.outcome == REFUSED:
        raise Rejection(f"{path.name}: {verdict.message}", kind, fmt)
    if problems:
        raise Rejection(_identity_refusal(names, problems), kind, fmt, COMPLETE_MANIFEST)
    return AssayTables(
        kind=kind,
        instrument_format=fmt,
        run_identity=analysis.supersede_key,
        tables={
            name: _with_identity(name, frame, identity, names.whole_file)
            for name, frame in analysis.tables.items()
        },
        warnings=list(analysis.warnings),
        qc_failure=f"{path.name}: {verdict.message}" if verdict.outcome == FAILED_QC else None,
        samples=_sample_keys(analysis.results, identity),
        run_started=analysis.run_started,
    )


def _resolve(names: SampleNames, resolver: IdentityResolver) -> tuple[pd.DataFrame, list[str]]:
    """The identity of each name (one row per resolved name) and what could not be resolved.

    For a whole-file sample, the first candidate that resolves names it (a one-row frame)."""
    resolved, problems = {}, []
    for name in names.names if names.whole_file else sorted(set(names.names)):
        try:
            resolved[name] = resolver.resolve(name)
        except IdentityError as err:
            problems.append(str(err))
            continue
        if names.whole_file:
            problems = []
            break
    frame = pd.DataFrame(
        [[getattr(ident, f) for f in IDENTITY_FIELDS] for ident in resolved.values()],
        index=list(resolved), columns=list(IDENTITY_FIELDS),
    )  # fmt: skip
    if names.whole_file and not resolved:
        problems = problems or ["the file names no sample"]
    return frame, problems


def _identity_refusal(names: SampleNames, problems: list[str]) -> str:
    if names.whole_file:
        return (
            "identity: none of the tube's names "
            f"({', '.join(repr(n) for n in names.names)}) is in the manifest or matches the "
            "sample-name pattern (e.g. P012_D14); add the accession to the manifest or set "
            "$SRC / the file name"
        )
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"identity: {shown}{more}"


def _facts(identity: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """What the manifest (or the pattern) says of each resolved sample name."""
    return {str(name): row for name, row in identity.to_dict(orient="index").items()}


def _with_identity(
    table: str, frame: pd.DataFrame, identity: pd.DataFrame, whole_file: bool
) -> pd.DataFrame:
    """`frame` with the identity columns its table has: every row of a one-sample file, else
    the rows whose `sample_name` resolved (null in the others: standards, controls)."""
    columns = [c for c in ROW_IDENTITY if c in TABLES[table].column_names]
    if whole_file:
        return frame.assign(**{c: identity.iloc[0][c] for c in columns})
    if "sample_name" not in frame.columns:
        return frame
    named = frame.copy()
    for column in columns:
        named[column] = named["sample_name"].map(identity[column])
    return named


def _sample_keys(
    results: tuple[tuple[str, str], ...], identity: pd.DataFrame
) -> list[tuple[str, str, str]]:
    """(patient, timepoint, target) of each result: a sample is its patient's draw at a
    timepoint, whatever name (accession or pattern) the plate gives it."""
    keys = set()
    for name, target in results:
        if name in identity.index and pd.notna(identity.at[name, "patient_id"]):
            keys.add((str(identity.at[name, "patient_id"]), str(identity.at[name, "timepoint"]),
                      str(target)))  # fmt: skip
    return sorted(keys)
