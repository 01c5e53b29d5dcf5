"""The path of one file through the lab home: arrive, claim, recognise, compute, validate, write.

Plain Python, no Prefect: the flows call `Processor.process` once per file, and tests can too.
Nothing is ever deleted: the raw store keeps every received file by hash (read-only), and the
original in the inbox moves to `processed/` or `quarantine/` with a `.reason.txt` beside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines import __version__
from pipelines.assays import (
    CBA,
    FLOW,
    MANIFEST,
    QPCR,
    AssayTables,
    Recognised,
    Rejection,
    compute_cba,
    compute_flow,
    compute_manifest,
    compute_qpcr,
    recognise,
)
from pipelines.home import LabHome
from pipelines.identity import IdentityResolver, ManifestEntry
from pipelines.ledger import FileRecord, Ledger
from pipelines.settings import Settings
from pipelines.warehouse import conform, remove_outputs, write_source, write_whole_table
from validation.runner import ValidationOutcome, Validator
from validation.schemas import INGEST_LOG, TABLES, VALIDATION_RESULTS

INGESTED, QUARANTINED, DUPLICATE, BUSY = "ingested", "quarantined", "duplicate", "busy"


@dataclass
class FileOutcome:
    """What happened to one file, for the command line, the flow artifact and the tests."""

    name: str
    sha256: str
    status: str  # ingested, quarantined, duplicate, busy
    reason: str | None = None
    kind: str | None = None
    instrument_format: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    partitions: list[tuple[str, str]] = field(default_factory=list)
    supersedes: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase: compute (read + analyse), validate, write."""

    def as_dict(self) -> dict:
        return {
            "file": self.name, "sha256": self.sha256, "status": self.status,
            "reason": self.reason, "kind": self.kind, "format": self.instrument_format,
            "rows": self.rows, "partitions": [list(p) for p in self.partitions],
            "supersedes": self.supersedes, "warnings": self.warnings,
        }  # fmt: skip


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_suffix(path: Path) -> str:
    suffixes = "".join(path.suffixes[-2:]).lower()
    return (
        suffixes if all(c.isalnum() or c == "." for c in suffixes) and len(suffixes) <= 12 else ""
    )


class Processor:
    """Processes files of one lab home; holds what is costly to set up (the GX context)."""

    def __init__(self, home: LabHome, settings: Settings | None = None) -> None:
        self.home = home.ensure()
        self.settings = settings or Settings.load(home.root)
        self.ledger = Ledger(home.ledger_path)
        self.validator = Validator(home.gx, self.settings.qpcr)

    # -- arrive ---------------------------------------------------------------------------
    def store_raw(self, path: Path, sha256: str) -> Path:
        """Copy into `raw/<sha[:2]>/<sha>.<ext>`, read-only, before anything else happens."""
        target = self.home.raw / sha256[:2] / f"{sha256}{_safe_suffix(path)}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(path, temporary)
            os.chmod(temporary, 0o444)
            os.replace(temporary, target)
        return target

    def resolver(self) -> IdentityResolver:
        entries = [
            ManifestEntry(
                accession=a, patient_id=p, timepoint=t,
                collection_date=datetime.fromisoformat(c).date() if c else None,
                infusion_date=datetime.fromisoformat(i).date() if i else None,
                dna_input_ng=d,
            )
            for a, p, t, c, i, d in self.ledger.manifest_rows()
        ]  # fmt: skip
        return IdentityResolver(entries, self.settings.sample_name_pattern)

    # -- the whole path -------------------------------------------------------------------
    def process(self, path: Path, flow_run_id: str | None = None) -> FileOutcome:
        path = path.resolve()
        try:
            sha256 = sha256_of(path)
            raw_copy = self.store_raw(path, sha256)
            size = path.stat().st_size
        except FileNotFoundError:  # a concurrent run took it from the inbox between listing and now
            return FileOutcome(path.name, "", BUSY, reason="taken by another run meanwhile")
        record = self.ledger.receive(sha256, size, path.name)
        if record.status in (INGESTED, "superseded"):
            self._file_away(path, self.home.processed, None)
            return FileOutcome(
                path.name, sha256, DUPLICATE,
                reason=f"same bytes as {record.original_name}, {record.status} {record.updated_at}",
                kind=record.kind, instrument_format=record.instrument_format,
            )  # fmt: skip
        if not self.ledger.claim(sha256, token=flow_run_id or uuid.uuid4().hex):
            return FileOutcome(path.name, sha256, BUSY, reason="another run is processing it")
        try:
            with _under_original_name(raw_copy, path.name) as readable:
                outcome = self._process_claimed(readable, path.name, sha256, flow_run_id)
        except Rejection as rejection:
            outcome = self._quarantine(path.name, sha256, rejection, flow_run_id)
        except Exception as err:  # a defect, not bad input: keep the file safe and say so
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            rejection = Rejection(
                f"internal error while processing ({detail}); the file is kept in quarantine, "
                "please report this to the pipeline maintainers"
            )
            outcome = self._quarantine(path.name, sha256, rejection, flow_run_id)
        except BaseException:
            self.ledger.release_claim(sha256)
            raise
        destination = self.home.processed if outcome.status == INGESTED else self.home.quarantine
        self._file_away(path, destination, outcome.reason if outcome.status != INGESTED else None)
        return outcome

    def _process_claimed(
        self, raw_copy: Path, name: str, sha256: str, flow_run_id: str | None
    ) -> FileOutcome:
        recognised = recognise(raw_copy)
        if recognised.kind == MANIFEST:
            rows = compute_manifest(raw_copy)
            self.ledger.replace_manifest(sha256, rows)
            self.ledger.mark_ingested(
                sha256, kind=MANIFEST, instrument_format=recognised.instrument_format,
                run_identity=f"manifest:{sha256}", pipeline_version=__version__,
                flow_run_id=flow_run_id, outputs=[], warnings=None, supersedes=None,
            )  # fmt: skip
            return FileOutcome(
                name, sha256, INGESTED, kind=MANIFEST,
                instrument_format=recognised.instrument_format, rows={"manifest": len(rows)},
            )  # fmt: skip
        started = time.perf_counter()
        assay = self._compute(raw_copy, recognised)
        computed = time.perf_counter()
        processed_at = datetime.now(UTC)
        arrow_tables: dict[str, pa.Table] = {}
        outcomes: list[ValidationOutcome] = []
        for table_name, frame in assay.tables.items():
            frame = frame.assign(
                source_sha256=sha256, pipeline_version=__version__, processed_at=processed_at
            )
            table = conform(frame, TABLES[table_name])
            arrow_tables[table_name] = table
            outcomes.append(self.validator.validate(table_name, table.to_pandas(), sha256))
        arrow_tables[VALIDATION_RESULTS.name] = self._validation_table(
            outcomes, sha256, processed_at
        )
        validated = time.perf_counter()
        failures = [f for o in outcomes for f in o.failures]
        if failures:
            self._write(sha256, {VALIDATION_RESULTS.name: arrow_tables[VALIDATION_RESULTS.name]})
            raise Rejection(
                "validation failed: " + "; ".join(failures), assay.kind, assay.instrument_format
            )
        previous = self.ledger.find_ingested_run(assay.kind, assay.run_identity, exclude=sha256)
        outputs = self._write(sha256, arrow_tables)
        if previous is not None:
            remove_outputs(self.home.warehouse, self.ledger.outputs(previous.sha256))
        self.ledger.mark_ingested(
            sha256, kind=assay.kind, instrument_format=assay.instrument_format,
            run_identity=assay.run_identity, pipeline_version=__version__,
            flow_run_id=flow_run_id, outputs=outputs,
            warnings="; ".join(assay.warnings) or None,
            supersedes=previous.sha256 if previous else None,
        )  # fmt: skip
        curated = {n: t for n, t in arrow_tables.items() if n != VALIDATION_RESULTS.name}
        seconds = {
            "compute": computed - started,
            "validate": validated - computed,
            "write": time.perf_counter() - validated,
        }
        return FileOutcome(
            name, sha256, INGESTED, kind=assay.kind, instrument_format=assay.instrument_format,
            rows={n: t.num_rows for n, t in curated.items()},
            partitions=_partitions(curated),
            supersedes=previous.original_name if previous else None,
            warnings=assay.warnings, seconds=seconds,
        )  # fmt: skip

    def _compute(self, raw_copy: Path, recognised: Recognised) -> AssayTables:
        compute = {QPCR: compute_qpcr, CBA: compute_cba, FLOW: compute_flow}[recognised.kind]
        return compute(raw_copy, recognised.instrument_format, self.settings, self.resolver())

    def _write(self, sha256: str, tables: dict[str, pa.Table]) -> list:
        return write_source(self.home.warehouse, sha256, tables, self.ledger.outputs(sha256))

    @staticmethod
    def _validation_table(
        outcomes: list[ValidationOutcome], sha256: str, processed_at: datetime
    ) -> pa.Table:
        rows = [r for o in outcomes for r in o.results]
        frame = pd.DataFrame(rows, columns=VALIDATION_RESULTS.assay_column_names).assign(
            source_sha256=sha256, pipeline_version=__version__, processed_at=processed_at
        )
        return conform(frame, VALIDATION_RESULTS)

    def _quarantine(
        self, name: str, sha256: str, rejection: Rejection, flow_run_id: str | None
    ) -> FileOutcome:
        self.ledger.mark_quarantined(
            sha256, reason=rejection.reason, kind=rejection.kind,
            instrument_format=rejection.instrument_format, pipeline_version=__version__,
            flow_run_id=flow_run_id,
        )  # fmt: skip
        return FileOutcome(
            name, sha256, QUARANTINED, reason=rejection.reason, kind=rejection.kind,
            instrument_format=rejection.instrument_format,
        )  # fmt: skip

    def _file_away(self, path: Path, folder: Path, reason: str | None) -> None:
        """Move an inbox original to processed/ or quarantine/; copy one from elsewhere."""
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder / path.name)
        if path.is_relative_to(self.home.inbox):
            shutil.move(path, target)
        elif reason is not None:
            shutil.copyfile(path, target)
        else:
            return
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(
                reason + "\n", encoding="utf-8"
            )

    # -- exports --------------------------------------------------------------------------
    def export_ledger(self) -> None:
        """Write the ledger as the `ingest_log` table so analysts can query it."""
        records = self.ledger.records()
        frame = pd.DataFrame([_log_row(r) for r in records], columns=[
            *INGEST_LOG.assay_column_names, "source_sha256", "pipeline_version", "processed_at",
        ])  # fmt: skip
        write_whole_table(self.home.warehouse, INGEST_LOG.name, conform(frame, INGEST_LOG))


def _log_row(record: FileRecord) -> dict:
    return {
        "original_name": record.original_name, "size_bytes": record.size_bytes,
        "kind": record.kind, "instrument_format": record.instrument_format,
        "run_identity": record.run_identity, "status": record.status, "reason": record.reason,
        "warnings": record.warnings, "flow_run_id": record.flow_run_id,
        "superseded_by": record.superseded_by, "received_at": record.received_at,
        "updated_at": record.updated_at, "source_sha256": record.sha256,
        "pipeline_version": record.pipeline_version or __version__,
        "processed_at": record.updated_at,
    }  # fmt: skip


def _partitions(tables: dict[str, pa.Table]) -> list[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for name, table in tables.items():
        if TABLES[name].partition_by and table.num_rows:
            keys = table.select(["patient_id", "timepoint"]).to_pylist()
            pairs.update((k["patient_id"], k["timepoint"]) for k in keys)
    return sorted(pairs)


@contextmanager
def _under_original_name(raw_copy: Path, name: str) -> Iterator[Path]:
    """The immutable raw-store bytes, seen under the file's original name.

    Libraries read identity from file names (a LEGENDplex `K2-C07-A7.fcs`) and name the file in
    their errors; a symbolic link in a private folder gives them both without a second copy.
    """
    with tempfile.TemporaryDirectory(prefix="cartflow-") as folder:
        link = Path(folder) / name
        link.symlink_to(raw_copy)
        yield link


def _free_name(target: Path) -> Path:
    """`target`, or `name (2).ext`... if a file of that name is already there."""
    if not target.exists():
        return target
    stem, suffix = target.stem, target.suffix
    for n in range(2, 10_000):
        candidate = target.with_name(f"{stem} ({n}){suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)
