"""The path of one file through the lab home: arrive, claim, recognise, compute, validate, write.

Plain Python, no Prefect. A batch (`pipelines.ingest.batch`) runs three phases over its files:
`prepare` each (store, claim, compute, conform; on any worker), `validate_table` once per table
over all of them (a Great Expectations run costs about half a second whatever its size), then
`commit` each (the journalled write, supersede, mark ingested) or quarantine it. Claims are taken
here on behalf of the batch's `ClaimOwner`; the batch alone gives them back.

Whatever goes wrong with one file ends as that file's outcome: a refusal or a defect quarantines
it with its reason; a resource error (disk full, permission denied, a read-only share, a locked
database) leaves it waiting in the inbox with status FAILED and the cause in one line.

Nothing is ever deleted: the raw store keeps every received file by hash (read-only, a copy of
its own), and the original in the inbox moves to `processed/` or `quarantine/` with a
`.reason.txt` beside it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines import __version__
from pipelines.assays import (
    MANIFEST,
    RERUN_ASSAY,
    AssayTables,
    Recognised,
    Rejection,
    compute,
    compute_manifest,
    recognise,
)
from pipelines.hashing import BLOCK, sha256_of
from pipelines.home import LabHome, under_original_name
from pipelines.identity import (
    IdentityResolver,
    Manifest,
    ManifestEntry,
    Remap,
    remap_refusal,
    uncorrected,
)
from pipelines.ingest import faults, reasons
from pipelines.ingest.claims import ClaimOwner, process_token
from pipelines.ledger import (
    CommitPlan,
    CorrectionRecord,
    FileRecord,
    Ledger,
    LedgerUnavailable,
    ManifestChange,
    ManifestChanged,
)
from pipelines.settings import Settings
from pipelines.thresholds import suite_thresholds
from pipelines.warehouse import (
    Staged,
    conform,
    discard,
    publish,
    remove_outputs,
    stage_source,
    write_whole_table,
)
from validation.names import quarantine_name, shown
from validation.runner import ValidationOutcome, Validator
from validation.schemas import INGEST_LOG, TABLES, VALIDATION_RESULTS

INGESTED, QUARANTINED, DUPLICATE, BUSY, FAILED = (
    "ingested", "quarantined", "duplicate", "busy", "failed"
)  # fmt: skip
"""A file's outcome: taken; refused (in quarantine with its reason); the same bytes as a file
taken before; held by another run (it takes it); not processed for a reason outside the file
(a full disk, a permission: it stays in the inbox for the next run)."""

RESOURCE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
     errno.ENAMETOOLONG, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ESTALE}
)  # fmt: skip
"""OS errors that say the machine, not the file, is the problem."""


@dataclass
class FileOutcome:
    """What happened to one file, for the command line, the flow artifact and the tests."""

    name: str
    sha256: str
    status: str  # INGESTED, QUARANTINED, DUPLICATE, BUSY or FAILED
    reason: str | None = None
    kind: str | None = None
    instrument_format: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    partitions: list[tuple[str, str]] = field(default_factory=list)
    supersedes: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase: compute (read + analyse), validate, write."""
    action: str | None = None
    """For a quarantined file, its remedy (`pipelines.assays.FIX_FILE`, ...; see `reasons`)."""

    def as_dict(self) -> dict:
        return {
            "file": self.name, "sha256": self.sha256, "status": self.status,
            "reason": self.reason, "kind": self.kind, "format": self.instrument_format,
            "rows": self.rows, "partitions": [list(p) for p in self.partitions],
            "supersedes": self.supersedes, "warnings": self.warnings, "action": self.action,
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
    owner: ClaimOwner
    """The batch that holds the file's claim."""
    accessions: list[str] = field(default_factory=list)
    """The manifest accessions its samples resolved through (recorded with its commit)."""
    qc_failure: str | None = None
    """A run that failed QC: why. Its QC tables are written, the file quarantined with this."""
    samples: list[list[str]] = field(default_factory=list)
    """[patient, timepoint, target] of each qPCR result of the run (or, failed, that it would
    have given): a later passing run resolves a failed one with them (`Ledger`)."""
    run_started: str | None = None
    """When the run started (UTC, ISO), where the export says, else when the file was
    computed; orders a failed run and its repeat."""

    @property
    def name(self) -> str:
        return self.path.name


Check = ValidationOutcome | Rejection
"""One table's validation of one file, or the Rejection it is quarantined with when validating
it raised (a defect, reported as a fault in cartflow as any other)."""


def resource_problem(err: BaseException) -> str | None:
    """The one-line cause of a resource error, or None when `err` is anything else."""
    if isinstance(err, OSError) and err.errno in RESOURCE_ERRNOS:
        named = next((e for e in _chain(err) if isinstance(e, OSError) and e.filename), err)
        where = f" ({named.filename})" if named.filename else ""
        return f"{err.strerror or os.strerror(err.errno)}{where}"
    if isinstance(err, LedgerUnavailable):
        return str(err)
    if isinstance(err, sqlite3.OperationalError):
        return f"a database refused the update ({err})"
    if isinstance(err, MemoryError):
        return "the machine ran out of memory"
    return None


def _chain(err: BaseException) -> Iterator[BaseException]:
    """`err` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_advice(problem: str) -> str:
    return (
        f"not processed: {problem}; the file stays in the inbox and the next run takes it "
        "once the cause is fixed"
    )


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
        self.validator = Validator(home.gx, suite_thresholds(self.settings.qpcr))

    @property
    def claim_expiry_seconds(self) -> float:
        return self.settings.ingest.claim_expiry_minutes * 60

    # -- arrive ---------------------------------------------------------------------------
    def store_raw(self, path: Path) -> tuple[Path, str]:
        """Keep the file's bytes as `raw/<sha[:2]>/<sha>.<ext>`, read-only, before anything else
        happens; return the stored file and its SHA-256.

        The raw store holds a copy of its own, never a name shared with a file people can edit
        (the one in processed/ or quarantine/): a copy-on-write clone where the filesystem offers
        one (XFS, Btrfs: no bytes written), else a copy written while the file is hashed, so the
        file is read once either way.
        """
        folder = self.home.raw / "incoming"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{path.name[:40]}.{process_token()}.tmp"
        try:
            sha256 = _clone_hashing(path, temporary)
            target = self.home.raw / sha256[:2] / f"{sha256}{_safe_suffix(path)}"
            if target.exists():
                temporary.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(temporary, 0o444)
                os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target, sha256

    def resolver(self, overrides: Sequence[ManifestEntry] = ()) -> IdentityResolver:
        """A resolver over the ledger's manifest, with `overrides` (a correction's entries)
        in place of the ledger's for their accessions."""
        entries = {row[0]: ManifestEntry.from_row(row) for row in self.ledger.manifest_rows()}
        entries.update((e.accession, e) for e in overrides)
        return IdentityResolver(entries.values(), self.settings.sample_name_pattern)

    # -- the whole path -------------------------------------------------------------------
    def process(self, path: Path, flow_run_id: str | None = None) -> FileOutcome:
        """One file through all three phases, as a batch of one (see `pipelines.ingest.batch`)."""
        from pipelines.ingest.batch import InProcess, run_batch

        [outcome] = run_batch(self, [path], InProcess(self), flow_run_id)
        return outcome

    # -- phase 1: arrive, claim, compute --------------------------------------------------
    def prepare(
        self, path: Path, flow_run_id: str | None = None, owner: ClaimOwner | None = None
    ) -> Prepared | FileOutcome:
        """Store, record and claim the file for `owner`'s batch, then recognise, compute and
        conform it.

        Returns the finished outcome instead for a duplicate, a file another run holds, a
        manifest (taken here and now: plates need its samples), a file refused on the way (in
        quarantine) and a file that met a resource error (FAILED, left in the inbox). The
        claim of a prepared file is the batch's to give back (`Ledger.release_claims`).
        """
        path = path.resolve()
        owner = owner or ClaimOwner.this_process()
        try:
            raw_copy, sha256 = self.store_raw(path)
            faults.fault_point(faults.RAW_STORED)
            record = self.ledger.receive(sha256, raw_copy.stat().st_size, path.name)
        except FileNotFoundError:  # another run took it from the inbox between listing and now
            return FileOutcome(path.name, "", BUSY, reason="taken by another run meanwhile")
        except Exception as err:
            problem = resource_problem(err)
            if problem is None:
                raise
            return FileOutcome(path.name, "", FAILED, reason=failure_advice(problem))
        if record.status in (INGESTED, "superseded"):
            return self._settle(path, sha256, flow_run_id, lambda: self._duplicate(path, record))
        if not self.ledger.claim(sha256, owner, self.claim_expiry_seconds):
            return FileOutcome(path.name, sha256, BUSY, reason="another run is processing it")
        faults.fault_point(faults.CLAIMED)

        def compute() -> Prepared | FileOutcome:
            with under_original_name(raw_copy, path.name) as readable:
                return self._prepare_claimed(readable, path, sha256, owner, flow_run_id)

        return self._settle(path, sha256, flow_run_id, compute)

    @staticmethod
    def _duplicate(path: Path, record: FileRecord) -> FileOutcome:
        return FileOutcome(
            path.name, record.sha256, DUPLICATE,
            reason=f"same bytes as {record.original_name}, {record.status} {record.updated_at}",
            kind=record.kind, instrument_format=record.instrument_format,
        )  # fmt: skip

    def _prepare_claimed(
        self,
        raw_copy: Path,
        path: Path,
        sha256: str,
        owner: ClaimOwner,
        flow_run_id: str | None,
    ) -> Prepared | FileOutcome:
        recognised = recognise(raw_copy)
        if recognised.kind == MANIFEST:
            return self._take_manifest(raw_copy, path.name, sha256, owner, flow_run_id)
        return self._computed(raw_copy, path, sha256, owner, recognised, self.resolver())

    def _computed(
        self,
        raw_copy: Path,
        path: Path,
        sha256: str,
        owner: ClaimOwner,
        recognised: Recognised,
        resolver: IdentityResolver,
    ) -> Prepared:
        """Compute and conform an assay file's tables, its identity resolved by `resolver`."""
        started = time.perf_counter()
        assay = self._compute(raw_copy, recognised, resolver)
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
            warnings=[*assay.warnings, *resolver.notes],
            compute_seconds=time.perf_counter() - started, owner=owner,
            accessions=sorted(resolver.accessions), qc_failure=assay.qc_failure,
            samples=[list(key) for key in assay.samples],
            run_started=_utc_iso(assay.run_started) or _utc_iso(processed_at),
        )  # fmt: skip

    def _take_manifest(
        self, raw_copy: Path, name: str, sha256: str, owner: ClaimOwner, flow_run_id: str | None
    ) -> FileOutcome:
        """Append the manifest's new accessions; refuse one that re-maps a known accession,
        unless it is a correction manifest (`_correct`)."""
        manifest = compute_manifest(raw_copy)
        rows = [e.as_row() for e in manifest.entries]
        if manifest.corrects:
            refiled, notes = self._correct(manifest, sha256, owner, flow_run_id)
        else:
            changes = self.ledger.add_manifest(sha256, rows)
            if changes:
                raise Rejection(
                    remap_refusal(self._remaps(changes, manifest)), MANIFEST, "sample-manifest"
                )
            refiled, notes = [], []
        self.ledger.mark_ingested(
            sha256, kind=MANIFEST, instrument_format="sample-manifest",
            run_identity=f"manifest:{sha256}", pipeline_version=__version__,
            flow_run_id=flow_run_id, outputs=[], warnings="; ".join(notes) or None,
        )  # fmt: skip
        return FileOutcome(
            name, sha256, INGESTED, kind=MANIFEST, instrument_format="sample-manifest",
            rows={"manifest": len(rows)}, partitions=refiled, warnings=notes,
        )  # fmt: skip

    def _remaps(self, changes: Sequence[ManifestChange], manifest: Manifest) -> list[Remap]:
        """The ledger's changes as manifest entries, old and new, and the file that gave each
        old one."""
        sources = self.ledger.manifest_sources()
        entries = {e.accession: e for e in manifest.entries}
        return [
            Remap(
                ManifestEntry.from_row(c.old),
                sources.get(c.accession, (c.old_source_sha256, c.old_source_sha256))[1],
                entries[c.accession],
            )
            for c in changes
        ]

    # -- identity corrections -------------------------------------------------------------
    def _correct(
        self, manifest: Manifest, sha256: str, owner: ClaimOwner, flow_run_id: str | None
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """Take a correction manifest: re-map its accessions and re-file the rows that used them.

        Every affected file is computed and validated under the corrected identity first, so a
        correction that cannot be followed through is refused with nothing changed. Then one
        ledger transaction applies the entries, audits each change and queues the files
        (`Ledger.apply_correction`); each file is then re-filed by a journalled commit. A run
        stopped in between is finished by the next (`resume_corrections`). Returns the
        (patient, timepoint) partitions the re-filed rows left or joined, and notes on the work.
        """
        rows = [e.as_row() for e in manifest.entries]
        changes = self.ledger.manifest_changes(rows)
        remaps = self._remaps(changes, manifest)
        refusal = uncorrected(remaps)
        if refusal:
            raise Rejection(refusal, MANIFEST, "sample-manifest")
        if not remaps:
            self.ledger.add_manifest(sha256, rows)
            return [], ["correction manifest: no entry differs from the ledger; nothing corrected"]
        corrected = [r.new for r in remaps]
        files = self.ledger.files_using([r.new.accession for r in remaps])
        prepared = [self._recompute(record, owner, corrected) for record in files]
        checks = self.validate(prepared)
        for item in prepared:
            failures = [f for c in checks[item.sha256] for f in _unless_raised(c).failures]
            if failures:
                raise Rejection(
                    f"correction cannot be applied: {item.name} re-filed under the corrected "
                    f"identity fails validation ({'; '.join(failures[:3])}); nothing was changed",
                    MANIFEST, "sample-manifest",
                )  # fmt: skip
        records = [
            CorrectionRecord(c.old, c.old_source_sha256, c.new, r.new.correction.reason,
                             r.new.correction.by)
            for c, r in zip(changes, remaps, strict=True) if r.new.correction is not None
        ]  # fmt: skip
        try:
            self.ledger.apply_correction(sha256, rows, records, [p.sha256 for p in prepared])
        except ManifestChanged as err:
            raise Rejection(
                f"correction manifest: the ledger's entries for {', '.join(err.accessions)} "
                "changed while it was prepared (another manifest was taken); drop it again",
                MANIFEST, "sample-manifest",
            ) from err  # fmt: skip
        partitions: set[tuple[str, str]] = set()
        for item in prepared:
            partitions.update(self._refile(item, checks[item.sha256], sha256, flow_run_id))
        notes = [f"corrected {r.new.accession}: {r.old.described()} -> {r.new.described()}"
                 for r in remaps]  # fmt: skip
        if prepared:
            names = ", ".join(p.name for p in prepared)
            notes.append(f"re-filed {len(prepared)} file(s) under the corrected identity: {names}")
        return sorted(partitions), notes

    def _recompute(
        self, record: FileRecord, owner: ClaimOwner, corrected: Sequence[ManifestEntry] = ()
    ) -> Prepared:
        """An ingested file computed again from its raw-store bytes, with the ledger's manifest
        and the `corrected` entries; a Rejection says which file cannot be re-filed."""
        kept = self.home.raw_copy(record.sha256)
        if kept is None:
            raise Rejection(
                f"correction cannot be applied: {record.original_name} is not in the raw store "
                "(cartflow verify says more); nothing was changed",
                MANIFEST, "sample-manifest",
            )  # fmt: skip
        resolver = self.resolver(corrected)
        with under_original_name(kept, record.original_name) as readable:
            try:
                recognised = recognise(readable)
                return self._computed(
                    readable, Path(record.original_name), record.sha256, owner, recognised,
                    resolver,
                )  # fmt: skip
            except Rejection as rejection:
                raise Rejection(
                    f"correction cannot be applied: {record.original_name} cannot be re-filed "
                    f"under the corrected identity ({rejection.reason}); nothing was changed",
                    MANIFEST, "sample-manifest",
                ) from rejection  # fmt: skip

    def _refile(
        self,
        prepared: Prepared,
        checks: Sequence[Check],
        correction_sha256: str,
        flow_run_id: str | None,
    ) -> set[tuple[str, str]]:
        """Replace an ingested file's outputs by its rows under the corrected identity, through
        the journalled commit; returns the partitions its rows left and joined.

        The new outputs are named after the correction as well as the file, so they never share
        a path with the outputs they replace: a commit rolled back removes only its own. The
        patients of both the old and the new rows are marked for their derived tables.
        """
        sha256 = prepared.sha256
        before = {_partition_of(o.path) for o in self.ledger.outputs(sha256)} - {None}
        outcomes = [_unless_raised(check) for check in checks]
        validation = self._validation_table(outcomes, sha256, prepared.processed_at)
        after = set(_partitions(prepared.tables))
        record = {
            **_ingested_record(prepared, flow_run_id, before | after),
            "refiled_by": correction_sha256,
        }
        self.write_outputs(
            sha256, {**prepared.tables, VALIDATION_RESULTS.name: validation}, prepared.owner,
            record, stem=f"{sha256}.{correction_sha256[:16]}",
        )  # fmt: skip
        return before | after

    def resume_corrections(self, owner: ClaimOwner, flow_run_id: str | None = None) -> list[str]:
        """Finish the corrections a stopped run applied but did not re-file to the end.

        The correction manifest is claimed for `owner`'s batch while its files are re-filed
        (so no other run does the same, and recovery leaves the commits alone), then marked
        ingested. A file that cannot be re-filed leaves the correction waiting, with the cause
        in the manifest's events. Returns the names of the corrections finished.
        """
        finished = []
        for correction, files in self.ledger.pending_refiles().items():
            record = self.ledger.get(correction)
            if record is None or not self.ledger.claim(
                correction, owner, self.claim_expiry_seconds
            ):
                continue
            try:
                self._refile_all(correction, files, owner, flow_run_id)
            except Rejection as rejection:
                reason = self._refusal(record.original_name, correction, rejection).reason
                self.ledger.record_failure(correction, reason, flow_run_id)
                continue
            except Exception as err:  # noqa: BLE001 - the correction waits for the next run
                problem = (resource_problem(err)
                           or self._refusal(record.original_name, correction, err).reason)  # fmt: skip
                self.ledger.record_failure(correction, failure_advice(problem), flow_run_id)
                continue
            self.ledger.mark_ingested(
                correction, kind=MANIFEST, instrument_format="sample-manifest",
                run_identity=f"manifest:{correction}", pipeline_version=__version__,
                flow_run_id=flow_run_id, outputs=[], warnings=record.warnings,
            )  # fmt: skip
            finished.append(record.original_name)
        return finished

    def _refile_all(
        self, correction: str, files: Sequence[str], owner: ClaimOwner, flow_run_id: str | None
    ) -> None:
        """Re-file the still-ingested `files` a correction left waiting (a file superseded
        meanwhile was replaced by rows resolved under the corrected manifest: it is dropped)."""
        records = [r for s in files if (r := self.ledger.get(s)) is not None]
        self.ledger.drop_refiles([r.sha256 for r in records if r.status != INGESTED])
        prepared = [self._recompute(r, owner) for r in records if r.status == INGESTED]
        checks = self.validate(prepared)
        for item in prepared:
            self._refile(item, checks[item.sha256], correction, flow_run_id)

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
        validation raises carries a Rejection (a fault, its traceback logged), not an outcome. A
        resource error (the disk under gx/ is full) is not the files' fault: it propagates.
        """
        having = [p for p in prepared if table_name in p.tables]
        if len(having) > 1:
            try:
                frames = {p.sha256: p.tables[table_name].to_pandas() for p in having}
                file_names = {p.sha256: p.name for p in having}
                return dict(self.validator.validate_batch(table_name, frames, file_names))
            except Exception as err:  # which file breaks the suite run is found below
                if resource_problem(err) is not None:
                    raise
        return {p.sha256: self._validate_one(table_name, p) for p in having}

    def _validate_one(self, table_name: str, prepared: Prepared) -> Check:
        try:
            frame = prepared.tables[table_name].to_pandas()
            return self.validator.validate(table_name, frame, prepared.name)
        except Exception as err:
            if resource_problem(err) is not None:
                raise
            return self._refusal(prepared.name, prepared.sha256, err)

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
            rejection = self._refusal(prepared.name, sha256, Rejection(
                "validation failed: " + "; ".join(failures), prepared.kind,
                prepared.instrument_format,
            ))  # fmt: skip
            self.write_outputs(
                sha256, {VALIDATION_RESULTS.name: validation}, prepared.owner,
                self._quarantine_record(rejection, flow_run_id),
            )  # fmt: skip
            return self._quarantined(prepared.name, sha256, rejection)
        if prepared.qc_failure is not None:
            return self._quarantine_failed_run(prepared, validation, flow_run_id)
        record = _ingested_record(prepared, flow_run_id, set(_partitions(prepared.tables)))
        previous = self.write_outputs(
            sha256, {**prepared.tables, VALIDATION_RESULTS.name: validation}, prepared.owner,
            record,
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

    def _quarantine_failed_run(
        self, prepared: Prepared, validation: pa.Table, flow_run_id: str | None
    ) -> FileOutcome:
        """Quarantine a run that failed QC with its QC reason, writing its QC tables (so its
        figures are queryable and trends include it) and recording the samples a passing
        repeat will resolve."""
        assert prepared.qc_failure is not None
        rejection = self._refusal(prepared.name, prepared.sha256, Rejection(
            prepared.qc_failure, prepared.kind, prepared.instrument_format, RERUN_ASSAY,
        ))  # fmt: skip
        record = {
            **self._quarantine_record(rejection, flow_run_id),
            "run_identity": prepared.run_identity, "repeats": prepared.samples,
            "run_started": prepared.run_started,
        }  # fmt: skip
        self.write_outputs(
            prepared.sha256, {**prepared.tables, VALIDATION_RESULTS.name: validation},
            prepared.owner, record,
        )  # fmt: skip
        outcome = self._quarantined(prepared.name, prepared.sha256, rejection)
        outcome.rows = {n: t.num_rows for n, t in prepared.tables.items()}
        return outcome

    def write_outputs(
        self,
        sha256: str,
        tables: dict[str, pa.Table],
        owner: ClaimOwner,
        record: dict,
        stem: str | None = None,
    ) -> FileRecord | None:
        """The journalled commit of one file's outputs; returns the file it superseded, if any.

        Outputs are named `<stem>.parquet`, the file's SHA-256 unless a re-filing names them.

        1. every output is written under a temporary name, with its SHA-256 (`stage_source`);
        2. the journal records them and the ledger record to switch to (`Ledger.begin_commit`);
        3. the outputs are renamed into place;
        4. one ledger transaction switches to them: the file's status and outputs, the run's
           earlier export superseded (`Ledger.mark_ingested` / `mark_quarantined`);
        5. the outputs no longer in the ledger (superseded, re-partitioned) are removed and
           the journal row goes.
        A crash before 2 leaves only temporaries (removed by recovery) and the old rows; after
        it, recovery completes the commit from the journal (`pipelines.ingest.recovery`). An
        error before 4 in this process (a full disk) rolls back here.
        """
        staged = stage_source(
            self.home.warehouse, stem or sha256, tables, process_token(),
            lambda: faults.fault_point(faults.PARQUET_WRITE),
        )  # fmt: skip
        plan = CommitPlan(
            outputs=[s.output for s in staged],
            staged={s.output.path: str(s.temporary) for s in staged}, ingest=record, remove=[],
        )  # fmt: skip
        try:
            self.ledger.begin_commit(sha256, owner.token, plan)
        except BaseException:
            discard(staged)
            raise
        try:
            faults.fault_point(faults.JOURNALLED)
            publish(staged)
            faults.fault_point(faults.NEW_PUBLISHED)
            previous, remove = switch_ledger(self.ledger, sha256, plan)
        except BaseException:
            self._roll_back(sha256, staged)
            raise
        faults.fault_point(faults.LEDGER_COMMITTED)
        remove_outputs(self.home.warehouse, remove)
        self.ledger.end_commit(sha256)
        return previous

    def _roll_back(self, sha256: str, staged: Sequence[Staged]) -> None:
        """Undo a commit whose ledger switch did not happen: its new outputs go, the old stay."""
        discard(staged)
        remove_outputs(self.home.warehouse, [s.output.path for s in staged if s.final.exists()])
        self.ledger.end_commit(sha256)

    def _settle(
        self,
        path: Path,
        sha256: str,
        flow_run_id: str | None,
        step: Callable[[], Prepared | FileOutcome],
    ) -> Prepared | FileOutcome:
        """Run one phase of a claimed file to its outcome.

        A Rejection quarantines with its reason; a resource error is FAILED (the claim goes back
        with the batch's); any other exception is a defect, not bad input: the file is kept safe
        in quarantine and says so. Anything else (an interrupt) propagates: the batch gives the
        claim back. A finished outcome files the original away.
        """
        try:
            result = step()
        except Rejection as rejection:
            result = self._quarantine(path.name, sha256, rejection, flow_run_id)
        except Exception as err:
            problem = resource_problem(err)
            if problem is not None:
                return self._failed(path.name, sha256, problem, flow_run_id)
            result = self._quarantine(path.name, sha256, err, flow_run_id)
        if isinstance(result, FileOutcome):
            try:
                self._file_away(path, result)
            except FileNotFoundError:
                pass  # a copy of the same bytes under this name was filed away by another run
            except Exception as err:
                problem = resource_problem(err)
                if problem is None:
                    raise
                return self._failed(path.name, sha256, problem, flow_run_id)
        return result

    def _failed(self, name: str, sha256: str, problem: str, flow_run_id: str | None) -> FileOutcome:
        reason = failure_advice(problem)
        with suppress(Exception):  # the ledger itself may be what failed
            self.ledger.record_failure(sha256, reason, flow_run_id)
        return FileOutcome(name, sha256, FAILED, reason=reason)

    def _compute(
        self, raw_copy: Path, recognised: Recognised, resolver: IdentityResolver
    ) -> AssayTables:
        return compute(raw_copy, recognised, self.settings, resolver)

    @staticmethod
    def _validation_table(
        outcomes: list[ValidationOutcome], sha256: str, processed_at: datetime
    ) -> pa.Table:
        rows = [r for o in outcomes for r in o.results]
        frame = pd.DataFrame(rows, columns=VALIDATION_RESULTS.assay_column_names).assign(
            source_sha256=sha256, pipeline_version=__version__, processed_at=processed_at
        )
        return conform(frame, VALIDATION_RESULTS)

    @staticmethod
    def _quarantine_record(rejection: Rejection, flow_run_id: str | None) -> dict:
        return {
            "status": QUARANTINED, "reason": rejection.reason, "kind": rejection.kind,
            "instrument_format": rejection.instrument_format, "pipeline_version": __version__,
            "flow_run_id": flow_run_id,
        }  # fmt: skip

    def _refusal(self, name: str, sha256: str, problem: Exception) -> Rejection:
        """The one place a quarantine reason is made: a refusal's reason fit to read, or a
        fault's, its traceback logged (`pipelines.ingest.reasons`)."""
        return reasons.refusal(name, problem, self.home.root, sha256)

    def _quarantine(
        self, name: str, sha256: str, problem: Exception, flow_run_id: str | None
    ) -> FileOutcome:
        rejection = self._refusal(name, sha256, problem)
        _, remove = switch_ledger(
            self.ledger, sha256,
            CommitPlan([], {}, self._quarantine_record(rejection, flow_run_id), []),
        )  # fmt: skip
        remove_outputs(self.home.warehouse, remove)
        return self._quarantined(name, sha256, rejection)

    @staticmethod
    def _quarantined(name: str, sha256: str, rejection: Rejection) -> FileOutcome:
        return FileOutcome(
            name, sha256, QUARANTINED, reason=rejection.reason, kind=rejection.kind,
            instrument_format=rejection.instrument_format, action=rejection.action,
        )  # fmt: skip

    def _file_away(self, path: Path, outcome: FileOutcome) -> None:
        """Move an inbox original to processed/ (taken, or the same bytes as a file taken) or
        quarantine/ (refused, with `<name>.reason.txt` beside it); copy a refused file from
        elsewhere into quarantine/. Failed and busy files stay where they are.

        The raw store holds its own copy (`store_raw`), so whatever is done to the file in
        processed/ or quarantine/ (a technician's fix in place) cannot change it. An over-long
        name is shortened in quarantine so that its reason file fits beside it.
        """
        if outcome.status in (FAILED, BUSY):
            return
        refused = outcome.status == QUARANTINED
        if not refused and not path.is_relative_to(self.home.inbox):
            return
        faults.fault_point(faults.FILED_AWAY)
        folder = self.home.quarantine if refused else self.home.processed
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder / quarantine_name(path.name, reserve=len(" (9999)")))
        if refused:
            reason = target.with_name(target.name + ".reason.txt")
            _write_atomically(reason, (shown(outcome.reason or "") + "\n").encode("utf-8"))
        if path.is_relative_to(self.home.inbox):
            os.replace(path, target)
        else:
            _copy_atomically(path, target)

    # -- exports --------------------------------------------------------------------------
    def export_ledger(self) -> None:
        """Write the ledger as the `ingest_log` table so analysts can query it."""
        records = self.ledger.records()
        frame = pd.DataFrame([_log_row(r) for r in records], columns=[
            *INGEST_LOG.assay_column_names, "source_sha256", "pipeline_version", "processed_at",
        ])  # fmt: skip
        write_whole_table(self.home.warehouse, INGEST_LOG.name, conform(frame, INGEST_LOG))


def switch_ledger(
    ledger: Ledger, sha256: str, plan: CommitPlan
) -> tuple[FileRecord | None, list[str]]:
    """Step 4 of a commit: the ledger's record of the file becomes `plan.ingest`'s, in one
    transaction; returns the superseded file and the outputs to remove."""
    record = dict(plan.ingest)
    status = record.pop("status")
    if status == QUARANTINED:
        return None, ledger.mark_quarantined(sha256, outputs=plan.outputs, **record)
    patients = record.pop("patients", [])
    return ledger.mark_ingested(sha256, outputs=plan.outputs, patients=patients, **record)


def table_names(prepared: Sequence[Prepared]) -> list[str]:
    """The tables the prepared files hold, in the order they first appear."""
    return list(dict.fromkeys(name for p in prepared for name in p.tables))


def checks_of(prepared: Prepared, by_table: dict[str, dict[str, Check]]) -> list[Check]:
    """One file's checks from per-table validation results, in its tables' order."""
    return [by_table[table_name][prepared.sha256] for table_name in prepared.tables]


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
        "updated_at": record.updated_at, "resolved_by": record.resolved_by,
        "source_sha256": record.sha256,
        "pipeline_version": record.pipeline_version or __version__,
        "processed_at": record.updated_at,
    }  # fmt: skip


def _ingested_record(
    prepared: Prepared, flow_run_id: str | None, partitions: set[tuple[str, str]]
) -> dict:
    """The ledger record of a file taken (or re-filed) with its rows in `partitions`."""
    return {
        "status": INGESTED, "kind": prepared.kind,
        "instrument_format": prepared.instrument_format,
        "run_identity": prepared.run_identity, "pipeline_version": __version__,
        "flow_run_id": flow_run_id, "warnings": "; ".join(prepared.warnings) or None,
        "patients": sorted({patient for patient, _ in partitions}),
        "accessions": prepared.accessions, "samples": prepared.samples,
        "run_started": prepared.run_started,
    }  # fmt: skip


def _utc_iso(moment: datetime | None) -> str | None:
    """`moment` as UTC ISO text to the microsecond, so that times compare as text (a naive
    time is taken as UTC)."""
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _partition_of(path: str) -> tuple[str, str] | None:
    """(patient, timepoint) of a warehouse path `<table>/patient_id=P/timepoint=T/<file>`."""
    keys = dict(part.split("=", 1) for part in Path(path).parts if "=" in part)
    if "patient_id" in keys and "timepoint" in keys:
        return keys["patient_id"], keys["timepoint"]
    return None


def _partitions(tables: dict[str, pa.Table]) -> list[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for name, table in tables.items():
        if TABLES[name].partition_by and table.num_rows:
            keys = table.select(["patient_id", "timepoint"]).to_pylist()
            pairs.update((k["patient_id"], k["timepoint"]) for k in keys)
    return sorted(pairs)


FICLONE = 0x40049409
"""Linux's ioctl that makes a file a copy-on-write clone of another (XFS, Btrfs, OCFS2)."""


def _clone_hashing(source: Path, target: Path) -> str:
    """Make `target` a copy of `source` of its own and return their SHA-256, reading once.

    A copy-on-write clone costs no write where the filesystem offers it; else the bytes are
    written as they are hashed.
    """
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        try:
            fcntl.ioctl(writer.fileno(), FICLONE, reader.fileno())
        except OSError:  # ext4, tmpfs, NFS, another filesystem: copy
            try:
                for block in iter(lambda: reader.read(BLOCK), b""):
                    digest.update(block)
                    writer.write(block)
                writer.flush()
            except OSError as err:  # name the file written, which the error does not
                raise OSError(err.errno, err.strerror, str(target)) from err
            return digest.hexdigest()
    return sha256_of(target)


def _copy_atomically(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name[:40]}.{process_token()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _write_atomically(target: Path, content: bytes) -> None:
    temporary = target.with_name(f".{target.name[:40]}.{process_token()}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


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
