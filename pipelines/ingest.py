"""The path of one file through the lab home: arrive, claim, recognise, compute, validate, write.

Plain Python, no Prefect. `Processor.process` takes one file the whole way; a sweep runs the
same three phases over many files: `prepare` each (claim, compute, conform; on any worker),
`validate_table` once per table over all of them (a Great Expectations run costs about half a
second whatever its size), then `commit` each (write, supersede, mark ingested) or quarantine
it. Nothing is ever deleted: the raw store keeps every received file by hash (read-only), and the
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
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


@dataclass
class Prepared:
    """A claimed file, computed and conformed, waiting for validation and its commit.

    Small and picklable: a file's curated tables (hundreds of rows for an FCS tube, never its
    events), so a prepare task on a Dask worker hands it back to the flow cheaply.
    """

    path: Path
    """The original, resolved; it stays where it is until the commit files it away."""
    sha256: str
    kind: str
    instrument_format: str
    run_identity: str
    tables: dict[str, pa.Table]
    """The conformed curated tables, in the assay's order; validation_results is built later."""
    processed_at: datetime
    warnings: list[str]
    compute_seconds: float

    @property
    def name(self) -> str:
        return self.path.name


Check = ValidationOutcome | Rejection
"""One table's validation of one file, or the Rejection it is quarantined with when validating
it raised (a defect, reported as an internal error as any other)."""


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
        """Keep the file as `raw/<sha[:2]>/<sha>.<ext>`, read-only, before anything else happens.

        A file in the inbox is kept by a second name for the same bytes (a hard link), when the
        raw store is on the inbox's filesystem: its only other name moves on to processed/ and is
        read-only too, and a quarantined file gets a copy of its own (`_file_away`). Copying
        instead wrote every file's size again (6.4 GB for a 100-file backfill, a third of its
        time on a two-core machine, mostly the kernel's page cache and writeback). A file from
        elsewhere, which its owner may still change, is copied, as is any file when linking is
        refused (another filesystem, a share without hard links).
        """
        target = self.home.raw / sha256[:2] / f"{sha256}{_safe_suffix(path)}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            if not (path.is_relative_to(self.home.inbox) and _linked(path, temporary)):
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
        """One file through all three phases."""
        prepared = self.prepare(path, flow_run_id)
        if isinstance(prepared, FileOutcome):
            return prepared
        started = time.perf_counter()
        try:
            checks = self.validate([prepared])[prepared.sha256]
        except BaseException:
            self.release([prepared])
            raise
        return self.commit(prepared, checks, flow_run_id, time.perf_counter() - started)

    # -- phase 1: arrive, claim, compute --------------------------------------------------
    def prepare(self, path: Path, flow_run_id: str | None = None) -> Prepared | FileOutcome:
        """Hash, store and claim the file, then recognise, compute and conform it.

        Returns the finished outcome instead for a duplicate, a file another run holds, a
        manifest (taken here and now: plates need its samples) and a file refused on the way,
        which is quarantined.
        """
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

        def compute() -> Prepared | FileOutcome:
            with _under_original_name(raw_copy, path.name) as readable:
                return self._prepare_claimed(readable, path, sha256, flow_run_id)

        return self._settle(path, sha256, flow_run_id, compute)

    def _prepare_claimed(
        self, raw_copy: Path, path: Path, sha256: str, flow_run_id: str | None
    ) -> Prepared | FileOutcome:
        recognised = recognise(raw_copy)
        if recognised.kind == MANIFEST:
            return self._take_manifest(raw_copy, path.name, sha256, recognised, flow_run_id)
        started = time.perf_counter()
        assay = self._compute(raw_copy, recognised)
        processed_at = datetime.now(UTC)
        tables = {
            table_name: conform(
                frame.assign(
                    source_sha256=sha256, pipeline_version=__version__, processed_at=processed_at
                ),
                TABLES[table_name],
            )
            for table_name, frame in assay.tables.items()
        }
        return Prepared(
            path=path, sha256=sha256, kind=assay.kind, instrument_format=assay.instrument_format,
            run_identity=assay.run_identity, tables=tables, processed_at=processed_at,
            warnings=assay.warnings, compute_seconds=time.perf_counter() - started,
        )  # fmt: skip

    def _take_manifest(
        self,
        raw_copy: Path,
        name: str,
        sha256: str,
        recognised: Recognised,
        flow_run_id: str | None,
    ) -> FileOutcome:
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

    # -- phase 2: validate ----------------------------------------------------------------
    def validate(self, prepared: Sequence[Prepared]) -> dict[str, list[Check]]:
        """Every table of every file, one `validate_table` per table; per file, in its order."""
        by_table = {
            table_name: self.validate_table(table_name, prepared)
            for table_name in table_names(prepared)
        }
        return {p.sha256: checks_of(p, by_table) for p in prepared}

    def validate_table(self, table_name: str, prepared: Sequence[Prepared]) -> dict[str, Check]:
        """One table of the files that have it, in one batch (`Validator.validate_batch`).

        Should the batch raise, each file is validated on its own, so only a file whose own
        validation raises carries a Rejection (an internal error) rather than an outcome.
        """
        having = [p for p in prepared if table_name in p.tables]
        if len(having) > 1:
            with suppress(Exception):  # which file breaks the suite run is found below
                frames = {p.sha256: p.tables[table_name].to_pandas() for p in having}
                return dict(self.validator.validate_batch(table_name, frames))
        return {p.sha256: self._validate_one(table_name, p) for p in having}

    def _validate_one(self, table_name: str, prepared: Prepared) -> Check:
        try:
            frame = prepared.tables[table_name].to_pandas()
            return self.validator.validate(table_name, frame, prepared.sha256)
        except Exception as err:
            return _internal_error(err)

    # -- phase 3: write, or quarantine ----------------------------------------------------
    def commit(
        self,
        prepared: Prepared,
        checks: Sequence[Check],
        flow_run_id: str | None = None,
        validate_seconds: float = 0.0,
    ) -> FileOutcome:
        """Write a file that passed every check and file it away, or quarantine it.

        `validate_seconds` is the file's share of the validation time, for `FileOutcome.seconds`.
        """
        return self._settle(
            prepared.path, prepared.sha256, flow_run_id,
            lambda: self._commit_claimed(prepared, checks, flow_run_id, validate_seconds),
        )  # fmt: skip

    def _commit_claimed(
        self,
        prepared: Prepared,
        checks: Sequence[Check],
        flow_run_id: str | None,
        validate_seconds: float,
    ) -> FileOutcome:
        started = time.perf_counter()
        sha256 = prepared.sha256
        outcomes = [_unless_raised(check) for check in checks]
        validation = self._validation_table(outcomes, sha256, prepared.processed_at)
        failures = [f for o in outcomes for f in o.failures]
        if failures:
            self._write(sha256, {VALIDATION_RESULTS.name: validation})
            raise Rejection(
                "validation failed: " + "; ".join(failures), prepared.kind,
                prepared.instrument_format,
            )  # fmt: skip
        previous = self.ledger.find_ingested_run(
            prepared.kind, prepared.run_identity, exclude=sha256
        )
        outputs = self._write(sha256, {**prepared.tables, VALIDATION_RESULTS.name: validation})
        if previous is not None:
            remove_outputs(self.home.warehouse, self.ledger.outputs(previous.sha256))
        self.ledger.mark_ingested(
            sha256, kind=prepared.kind, instrument_format=prepared.instrument_format,
            run_identity=prepared.run_identity, pipeline_version=__version__,
            flow_run_id=flow_run_id, outputs=outputs,
            warnings="; ".join(prepared.warnings) or None,
            supersedes=previous.sha256 if previous else None,
        )  # fmt: skip
        seconds = {
            "compute": prepared.compute_seconds,
            "validate": validate_seconds,
            "write": time.perf_counter() - started,
        }
        return FileOutcome(
            prepared.name, sha256, INGESTED, kind=prepared.kind,
            instrument_format=prepared.instrument_format,
            rows={n: t.num_rows for n, t in prepared.tables.items()},
            partitions=_partitions(prepared.tables),
            supersedes=previous.original_name if previous else None,
            warnings=prepared.warnings, seconds=seconds,
        )  # fmt: skip

    def release(self, prepared: Sequence[Prepared]) -> None:
        """Give back the claims of prepared files that will not be committed (the run stops)."""
        for item in prepared:
            self.ledger.release_claim(item.sha256)

    def _settle(
        self,
        path: Path,
        sha256: str,
        flow_run_id: str | None,
        step: Callable[[], Prepared | FileOutcome],
    ) -> Prepared | FileOutcome:
        """Run one phase of a claimed file; quarantine it if the phase refuses or breaks it.

        A Rejection quarantines with its reason; any other exception is a defect, not bad input:
        the file is kept safe in quarantine and says so. Anything else (an interrupt) gives the
        claim back and propagates. A finished outcome files the original away.
        """
        try:
            result = step()
        except Rejection as rejection:
            result = self._quarantine(path.name, sha256, rejection, flow_run_id)
        except Exception as err:
            result = self._quarantine(path.name, sha256, _internal_error(err), flow_run_id)
        except BaseException:
            self.ledger.release_claim(sha256)
            raise
        if isinstance(result, FileOutcome):
            taken = result.status == INGESTED
            folder = self.home.processed if taken else self.home.quarantine
            self._file_away(path, folder, None if taken else result.reason)
        return result

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
        """Move an inbox original to processed/ or quarantine/; copy one from elsewhere.

        A quarantined original that shares its bytes with the raw store (`store_raw`) is copied
        and its inbox name removed: the technician may fix the quarantined file in place and
        send it again, which must not change what the raw store holds.
        """
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder / path.name)
        if path.is_relative_to(self.home.inbox):
            if reason is not None and path.stat().st_nlink > 1:
                shutil.copyfile(path, target)
                path.unlink()
            else:
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


def table_names(prepared: Sequence[Prepared]) -> list[str]:
    """The tables the prepared files hold, in the order they first appear."""
    return list(dict.fromkeys(name for p in prepared for name in p.tables))


def checks_of(prepared: Prepared, by_table: dict[str, dict[str, Check]]) -> list[Check]:
    """One file's checks from per-table validation results, in its tables' order."""
    return [by_table[table_name][prepared.sha256] for table_name in prepared.tables]


def _internal_error(err: Exception) -> Rejection:
    detail = "".join(traceback.format_exception_only(type(err), err)).strip()
    return Rejection(
        f"internal error while processing ({detail}); the file is kept in quarantine, "
        "please report this to the pipeline maintainers"
    )


def _unless_raised(check: Check) -> ValidationOutcome:
    if isinstance(check, Rejection):
        raise check
    return check


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


def _linked(source: Path, target: Path) -> bool:
    """Whether `target` was made a second name of `source` (False: copy it instead)."""
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


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
