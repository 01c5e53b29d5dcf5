"""The ingest ledger: one SQLite database recording every file the lab home ever received.

Statuses: `received` (in the raw store, not yet processed), `processing` (claimed by a run),
`ingested`, `quarantined`, `superseded` (a corrected re-export of the same run replaced it).
Claims are atomic, so a watcher and a nightly sweep that meet the same file process it once. A
claim names the batch and process holding it (`pipelines.ingest.claims`): a claim whose process
is gone is taken over at once, one from another host once its heartbeat is older than the claim
expiry.

A file's commit is journalled (`commits`): the outputs it is about to publish and, once the
ledger has switched to them, the superseded outputs still to be removed. A run that dies half-way
leaves its journal row, from which the next run completes the commit or rolls it back
(`pipelines.ingest.recovery`). Every output records the SHA-256 of the Parquet file written
(`cartflow verify`).

Identity is append-only (`manifest`): a manifest adds accessions (`add_manifest`); one that maps
a known accession elsewhere is taken only as a correction (`apply_correction`), which records
each change in `identity_corrections` (who, when, why, which manifest) and queues the files whose
rows used the accession in `refiles`. Those are the files whose commit recorded the accession in
`run_accessions` (written in the same transaction as the file's outputs), and files ingested
before the ledger recorded accessions (`files.accessions_recorded` unset), which may have used
it. A file is re-filed through the same journalled commit as any ingest; its switch removes it
from `refiles`, so a correction a run did not finish is finished by the next one.

`qc_samples` records, per qPCR run, the samples (patient, timepoint, target) it reported results
for (passed) or, quarantined for failing QC, gave none for, with when the run started. A failed
run is `resolved_by` a repeat once every one of its samples was reported by a run taken (still
ingested) that started after it: the latest such run, whichever order the files arrived in. An
event says so; the file stays in quarantine, its figures in `qpcr_runs`, and `status` and the
reports show it resolved.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pipelines.ingest.claims import ClaimOwner

DEFAULT_CLAIM_EXPIRY_SECONDS = 15 * 60
"""A claim from another host whose heartbeat is older than this belongs to a dead run."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    original_name TEXT NOT NULL,
    kind TEXT,
    instrument_format TEXT,
    run_identity TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    warnings TEXT,
    pipeline_version TEXT,
    flow_run_id TEXT,
    superseded_by TEXT,
    claim_token TEXT,
    claimed_at REAL,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    claim_host TEXT,
    claim_pid INTEGER,
    claim_started REAL
);
CREATE INDEX IF NOT EXISTS files_run ON files(kind, run_identity, status);
CREATE TABLE IF NOT EXISTS outputs (
    sha256 TEXT NOT NULL,
    table_name TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    file_sha256 TEXT,
    PRIMARY KEY (sha256, path)
);
CREATE TABLE IF NOT EXISTS commits (
    sha256 TEXT PRIMARY KEY,
    claim_token TEXT NOT NULL,
    phase TEXT NOT NULL,
    plan TEXT NOT NULL,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_derive (
    patient_id TEXT PRIMARY KEY,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    flow_run_id TEXT
);
CREATE TABLE IF NOT EXISTS manifest (
    accession TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    timepoint TEXT NOT NULL,
    collection_date TEXT,
    infusion_date TEXT,
    dna_input_ng REAL,
    source_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_accessions (
    sha256 TEXT NOT NULL,
    accession TEXT NOT NULL,
    PRIMARY KEY (sha256, accession)
);
CREATE INDEX IF NOT EXISTS run_accessions_accession ON run_accessions(accession);
CREATE TABLE IF NOT EXISTS identity_corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    accession TEXT NOT NULL,
    old_patient_id TEXT NOT NULL,
    old_timepoint TEXT NOT NULL,
    old_collection_date TEXT,
    old_infusion_date TEXT,
    old_dna_input_ng REAL,
    old_source_sha256 TEXT NOT NULL,
    new_patient_id TEXT NOT NULL,
    new_timepoint TEXT NOT NULL,
    new_collection_date TEXT,
    new_infusion_date TEXT,
    new_dna_input_ng REAL,
    reason TEXT NOT NULL,
    corrected_by TEXT NOT NULL,
    corrected_at TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS qc_samples (
    sha256 TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    timepoint TEXT NOT NULL,
    target TEXT NOT NULL,
    run_started TEXT NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (sha256, patient_id, timepoint, target)
);
CREATE TABLE IF NOT EXISTS refiles (
    sha256 TEXT PRIMARY KEY,
    correction_sha256 TEXT NOT NULL,
    since TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size_bytes: int
    original_name: str
    kind: str | None
    instrument_format: str | None
    run_identity: str | None
    status: str
    reason: str | None
    warnings: str | None
    pipeline_version: str | None
    flow_run_id: str | None
    superseded_by: str | None
    received_at: str
    updated_at: str
    resolved_by: str | None = None
    """For a run quarantined because it failed QC: the passing run that repeated its samples."""


@dataclass(frozen=True)
class Output:
    table_name: str
    path: str  # relative to the warehouse
    rows: int
    file_sha256: str | None = None
    """SHA-256 of the Parquet file as written; None for files written before it was recorded."""


@dataclass(frozen=True)
class Claim:
    """A file held by a batch: its token, and the process and heartbeat that say it lives."""

    sha256: str
    token: str
    host: str | None
    pid: int | None
    started: float | None
    heartbeat_at: float | None


@dataclass(frozen=True)
class CommitPlan:
    """What a file's commit publishes, written to the journal before the first rename.

    `staged` maps each output's path to the temporary name it is written under; `ingest` holds
    the arguments of the ledger's switch to the new outputs (kind, format, run identity, ...), so
    the next run can complete the commit of a run that died; `remove` lists the outputs (paths
    relative to the warehouse) that are to go once the ledger has switched.
    """

    outputs: list[Output]
    staged: dict[str, str]
    ingest: dict
    remove: list[str]

    def to_json(self) -> str:
        return json.dumps({
            "outputs": [[o.table_name, o.path, o.rows, o.file_sha256] for o in self.outputs],
            "staged": self.staged, "ingest": self.ingest, "remove": self.remove,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> CommitPlan:
        data = json.loads(text)
        return cls(
            outputs=[Output(*o) for o in data["outputs"]], staged=data["staged"],
            ingest=data["ingest"], remove=data["remove"],
        )  # fmt: skip


@dataclass(frozen=True)
class Journalled:
    """A commit in flight: its file, the batch that began it, how far it got, and its plan."""

    sha256: str
    token: str
    phase: str  # STAGED: outputs being published; PUBLISHED: the ledger switched, old to remove
    plan: CommitPlan


STAGED, PUBLISHED = "staged", "published"

_RECORD_COLUMNS = ", ".join(FileRecord.__dataclass_fields__)
_CLAIM_COLUMNS = "sha256, claim_token, claim_host, claim_pid, claim_started, claimed_at"
_MIGRATIONS = {
    # columns added since the first release, for lab homes created before them
    "files": (
        ("claim_host", "TEXT"),
        ("claim_pid", "INTEGER"),
        ("claim_started", "REAL"),
        ("accessions_recorded", "INTEGER"),
        ("resolved_by", "TEXT"),
    ),
    "outputs": (("file_sha256", "TEXT"),),
}


class LedgerUnavailable(Exception):
    """The ledger's database refused a read or an update for a reason outside any file."""


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            for table, columns in _MIGRATIONS.items():
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, sql_type in columns:
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; SQLite's operational errors (a full disk, a read-only share, a lock
        held past the timeout) become `LedgerUnavailable`, naming the ledger's file."""
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA busy_timeout=60000")
                yield db
            finally:
                db.close()
        except sqlite3.OperationalError as err:
            raise LedgerUnavailable(f"the ledger {self.path} cannot be updated ({err})") from err

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; `durable=False` for a step the next sweep redoes if lost.

        A durable commit waits for the disk (fsync). On ext4 that also waits for the raw-store
        copies the workers are writing meanwhile: receiving and claiming the files of a 100-file
        backfill spent 3 s per worker in fsync. Outcomes (ingested, quarantined, a manifest) and
        the commit journal stay durable; a receipt or claim lost to a power cut (never to a crash
        of the process) is taken again by the next sweep.
        """
        with self._connect() as db:
            if not durable:
                db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get(self, sha256: str) -> FileRecord | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files WHERE sha256 = ?", (sha256,)
            ).fetchone()
        return FileRecord(*row) if row else None

    def receive(self, sha256: str, size_bytes: int, original_name: str) -> FileRecord:
        """Record a file as received, unless the same bytes were seen before; return its record."""
        now = _now()
        with self._transaction(durable=False) as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO files (sha256, size_bytes, original_name, status, "
                "received_at, updated_at) VALUES (?, ?, ?, 'received', ?, ?)",
                (sha256, size_bytes, original_name, now, now),
            ).rowcount
            if inserted:
                db.execute(
                    "INSERT INTO events (sha256, at, status) VALUES (?, ?, 'received')",
                    (sha256, now),
                )
        record = self.get(sha256)
        assert record is not None
        return record

    # -- claims ---------------------------------------------------------------------------
    def claim(
        self,
        sha256: str,
        owner: ClaimOwner,
        expiry_seconds: float = DEFAULT_CLAIM_EXPIRY_SECONDS,
    ) -> bool:
        """Take the file for `owner`'s batch; False if a live batch holds it or it is done.

        Quarantined files may be claimed again (a re-drop after the manifest or settings were
        fixed is retried); ingested and superseded files may not. A file held by a dead batch
        is taken over, unless that batch left a commit in its journal: recovery settles that
        commit first (`pipelines.ingest.recovery`).
        """
        now = time.time()
        with self._transaction(durable=False) as db:
            row = db.execute(
                f"SELECT status, {_CLAIM_COLUMNS} FROM files WHERE sha256 = ?", (sha256,)
            ).fetchone()
            if row is None or row[0] not in ("received", "quarantined", "processing"):
                return False
            if row[0] == "processing":
                if _alive(Claim(*row[1:]), now, expiry_seconds):
                    return False
                if db.execute("SELECT 1 FROM commits WHERE sha256 = ?", (sha256,)).fetchone():
                    return False
            db.execute(
                "UPDATE files SET status = 'processing', claim_token = ?, claim_host = ?, "
                "claim_pid = ?, claim_started = ?, claimed_at = ?, updated_at = ? "
                "WHERE sha256 = ?",
                (owner.token, owner.host, owner.pid, owner.started, now, _now(), sha256),
            )
        return True

    def heartbeat(self, token: str) -> None:
        """Renew the claims of a running batch (see `pipelines.ingest.claims.Heartbeat`)."""
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE files SET claimed_at = ? WHERE claim_token = ? AND status = 'processing'",
                (time.time(), token),
            )

    def release_claims(self, token: str) -> list[str]:
        """Give back every claim `token`'s batch still holds without an outcome or a commit in
        flight (the batch ended, or was interrupted); the files are taken again by a later run."""
        with self._transaction(durable=False) as db:
            released = [
                row[0]
                for row in db.execute(
                    "SELECT sha256 FROM files WHERE claim_token = ? AND status = 'processing' "
                    "AND sha256 NOT IN (SELECT sha256 FROM commits)",
                    (token,),
                )
            ]
            db.executemany(
                "UPDATE files SET status = CASE WHEN reason IS NULL THEN 'received' "
                "ELSE 'quarantined' END, claim_token = NULL, claim_host = NULL, "
                "claim_pid = NULL, claim_started = NULL, claimed_at = NULL WHERE sha256 = ?",
                [(sha,) for sha in released],
            )
        return released

    def dead_claims(self, expiry_seconds: float) -> list[Claim]:
        """Claims whose batch is gone (see `_alive`)."""
        now = time.time()
        return [c for c in self._claims() if not _alive(c, now, expiry_seconds)]

    def live_tokens(self, expiry_seconds: float) -> set[str]:
        """The tokens of batches holding claims that are alive."""
        now = time.time()
        return {c.token for c in self._claims() if _alive(c, now, expiry_seconds)}

    def _claims(self) -> list[Claim]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_CLAIM_COLUMNS} FROM files WHERE status = 'processing'"
            ).fetchall()
        return [Claim(*row) for row in rows]

    def record_failure(self, sha256: str, reason: str, flow_run_id: str | None) -> None:
        """Note that a file could not be processed for a reason outside it (disk full, a
        permission, a locked database); it stays waiting and is taken again by a later run."""
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                "VALUES (?, ?, 'failed', ?, ?)",
                (sha256, _now(), reason, flow_run_id),
            )

    # -- runs and outputs -----------------------------------------------------------------
    def find_ingested_run(self, kind: str, run_identity: str, exclude: str) -> FileRecord | None:
        """The ingested file of the same run (an earlier export of the same plate), if any."""
        with self._connect() as db:
            return _ingested_run(db, kind, run_identity, exclude)

    def outputs(self, sha256: str) -> list[Output]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT table_name, path, rows, file_sha256 FROM outputs WHERE sha256 = ? "
                "ORDER BY path",
                (sha256,),
            ).fetchall()
        return [Output(*row) for row in rows]

    def all_outputs(self) -> list[tuple[str, Output]]:
        """Every output of every ingested file: (source sha256, output)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT sha256, table_name, path, rows, file_sha256 FROM outputs "
                "ORDER BY sha256, path"
            ).fetchall()
        return [(row[0], Output(*row[1:])) for row in rows]

    # -- the commit journal ---------------------------------------------------------------
    def begin_commit(self, sha256: str, token: str, plan: CommitPlan) -> None:
        """Journal a commit before its first output is renamed into place."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO commits (sha256, claim_token, phase, plan, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (sha256, token, STAGED, plan.to_json(), _now()),
            )

    def end_commit(self, sha256: str) -> None:
        """The commit is complete (or rolled back): its journal row goes."""
        with self._transaction() as db:
            db.execute("DELETE FROM commits WHERE sha256 = ?", (sha256,))

    def journal(self) -> list[Journalled]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT sha256, claim_token, phase, plan FROM commits ORDER BY started_at"
            ).fetchall()
        return [Journalled(s, t, p, CommitPlan.from_json(plan)) for s, t, p, plan in rows]

    def mark_ingested(
        self,
        sha256: str,
        *,
        kind: str,
        instrument_format: str,
        run_identity: str,
        pipeline_version: str,
        flow_run_id: str | None,
        outputs: Sequence[Output],
        warnings: str | None,
        patients: Sequence[str] = (),
        accessions: Sequence[str] | None = None,
        refiled_by: str | None = None,
        samples: Sequence[Sequence[str]] = (),
        run_started: str | None = None,
    ) -> tuple[FileRecord | None, list[str]]:
        """Switch the ledger to the file's new outputs, in one transaction.

        `accessions` are the manifest accessions the file's samples resolved through (None: not
        known, as in a journal written before they were recorded); `refiled_by` names the
        correction manifest a re-filing commit follows (its `refiles` entry goes here);
        `samples` are the [patient, timepoint, target] of the qPCR results it reports and
        `run_started` when the run started (UTC ISO; else now): they resolve earlier runs that
        failed QC (`qc_samples`).

        The ingested file of the same run (an earlier export of the same plate), if any, is
        superseded here, inside the transaction, so two runs that commit re-exports of one plate
        at once leave one of them ingested. Returns the superseded file's record and the output
        paths that are no longer the ledger's (to be removed from the warehouse); a journalled
        commit keeps them in its journal row, now `PUBLISHED`, until they are gone.
        """
        now = _now()
        with self._transaction() as db:
            previous = _ingested_run(db, kind, run_identity, sha256)
            old = {
                path
                for (path,) in db.execute(
                    "SELECT path FROM outputs WHERE sha256 IN (?, ?)",
                    (sha256, previous.sha256 if previous else sha256),
                )
            }
            remove = sorted(old - {o.path for o in outputs})
            db.execute(
                "UPDATE files SET status = 'ingested', kind = ?, instrument_format = ?, "
                "run_identity = ?, reason = NULL, warnings = ?, pipeline_version = ?, "
                "flow_run_id = ?, claim_token = NULL, claim_host = NULL, claim_pid = NULL, "
                "claim_started = NULL, claimed_at = NULL, updated_at = ? WHERE sha256 = ?",
                (kind, instrument_format, run_identity, warnings, pipeline_version,
                 flow_run_id, now, sha256),
            )  # fmt: skip
            db.execute("DELETE FROM outputs WHERE sha256 = ?", (sha256,))
            db.executemany(
                "INSERT INTO outputs (sha256, table_name, path, rows, file_sha256) "
                "VALUES (?, ?, ?, ?, ?)",
                [(sha256, o.table_name, o.path, o.rows, o.file_sha256) for o in outputs],
            )
            if accessions is not None:
                _record_accessions(db, sha256, accessions)
            if refiled_by is None:
                db.execute(
                    "INSERT INTO events (sha256, at, status, flow_run_id) "
                    "VALUES (?, ?, 'ingested', ?)",
                    (sha256, now, flow_run_id),
                )
            else:
                db.execute("DELETE FROM refiles WHERE sha256 = ?", (sha256,))
                db.execute(
                    "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                    "VALUES (?, ?, 'refiled', ?, ?)",
                    (sha256, now, f"re-filed under the identity corrected by {refiled_by}",
                     flow_run_id),
                )  # fmt: skip
            db.executemany(
                "INSERT OR IGNORE INTO pending_derive (patient_id, since) VALUES (?, ?)",
                [(patient, now) for patient in patients],
            )
            _record_qc_samples(db, sha256, samples, run_started or now, passed=True)
            if previous is not None:
                db.execute(
                    "UPDATE files SET status = 'superseded', superseded_by = ?, updated_at = ? "
                    "WHERE sha256 = ?",
                    (sha256, now, previous.sha256),
                )
                db.execute("DELETE FROM outputs WHERE sha256 = ?", (previous.sha256,))
                db.execute("DELETE FROM run_accessions WHERE sha256 = ?", (previous.sha256,))
                db.execute("DELETE FROM refiles WHERE sha256 = ?", (previous.sha256,))
                db.execute(
                    "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                    "VALUES (?, ?, 'superseded', ?, ?)",
                    (previous.sha256, now, f"replaced by {sha256}", flow_run_id),
                )
            _resolve_repeats(db, now, flow_run_id)
            self._journal_published(db, sha256, remove)
        return previous, remove

    @staticmethod
    def _journal_published(db: sqlite3.Connection, sha256: str, remove: list[str]) -> None:
        """Within the ledger's switch: the journalled commit (if any) is now `PUBLISHED`, with
        the outputs that remain to be removed."""
        journal = db.execute("SELECT plan FROM commits WHERE sha256 = ?", (sha256,)).fetchone()
        if journal is not None:
            plan = CommitPlan.from_json(journal[0])
            plan = CommitPlan(plan.outputs, plan.staged, plan.ingest, remove)
            db.execute(
                "UPDATE commits SET phase = ?, plan = ? WHERE sha256 = ?",
                (PUBLISHED, plan.to_json(), sha256),
            )

    def mark_quarantined(
        self,
        sha256: str,
        *,
        reason: str,
        kind: str | None,
        instrument_format: str | None,
        pipeline_version: str,
        flow_run_id: str | None,
        outputs: Sequence[Output] = (),
        run_identity: str | None = None,
        repeats: Sequence[Sequence[str]] = (),
        run_started: str | None = None,
    ) -> list[str]:
        """Record the file as refused with its reason; `outputs` are what it wrote even so (its
        validation results, so analysts see which expectations failed; a run that failed QC
        also its QC tables). `repeats` are the [patient, timepoint, target] a run that failed QC,
        started at `run_started`, gave no result for, each waiting for a passing repeat
        (`qc_samples`). Returns the paths of outputs of an earlier attempt that are no longer
        the ledger's."""
        now = _now()
        with self._transaction() as db:
            old = {p for (p,) in db.execute("SELECT path FROM outputs WHERE sha256 = ?", (sha256,))}
            remove = sorted(old - {o.path for o in outputs})
            db.execute("DELETE FROM outputs WHERE sha256 = ?", (sha256,))
            db.executemany(
                "INSERT INTO outputs (sha256, table_name, path, rows, file_sha256) "
                "VALUES (?, ?, ?, ?, ?)",
                [(sha256, o.table_name, o.path, o.rows, o.file_sha256) for o in outputs],
            )
            self._journal_published(db, sha256, remove)
            db.execute(
                "UPDATE files SET status = 'quarantined', reason = ?, kind = ?, "
                "instrument_format = ?, pipeline_version = ?, flow_run_id = ?, "
                "run_identity = coalesce(?, run_identity), "
                "claim_token = NULL, claim_host = NULL, claim_pid = NULL, claim_started = NULL, "
                "claimed_at = NULL, updated_at = ? WHERE sha256 = ?",
                (reason, kind, instrument_format, pipeline_version, flow_run_id, run_identity,
                 now, sha256),
            )  # fmt: skip
            _record_qc_samples(db, sha256, repeats, run_started or now, passed=False)
            db.execute(
                "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                "VALUES (?, ?, 'quarantined', ?, ?)",
                (sha256, now, reason, flow_run_id),
            )
            _resolve_repeats(db, now, flow_run_id)
        return remove

    # -- patients whose derived tables wait for a recompute -------------------------------
    def pending_derive(self) -> list[str]:
        """Patients with new rows whose derived tables and reports were not yet recomputed
        (a run that died, or failed, after its commits)."""
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT patient_id FROM pending_derive")]

    def derived(self, patients: Sequence[str] | None) -> None:
        """The derived tables of `patients` (None: everyone) are up to date."""
        with self._transaction() as db:
            if patients is None:
                db.execute("DELETE FROM pending_derive")
            else:
                db.executemany(
                    "DELETE FROM pending_derive WHERE patient_id = ?", [(p,) for p in patients]
                )

    def records(self) -> list[FileRecord]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files ORDER BY received_at, original_name"
            ).fetchall()
        return [FileRecord(*row) for row in rows]

    # -- identity: the manifest, its corrections, the files to re-file --------------------
    def add_manifest(self, source_sha256: str, entries: Sequence[tuple]) -> list[ManifestChange]:
        """Append a manifest's entries (accession, patient, timepoint, collected, infused, dna_ng).

        New accessions are added and entries listed again unchanged are left as they are. If any
        entry maps a known accession differently, nothing is written and those changes are
        returned (the check and the write are one transaction, so two manifests taken at once
        cannot both re-map an accession).
        """
        with self._transaction() as db:
            changes = _changes(db, entries)
            if changes:
                return changes
            db.executemany(
                "INSERT OR IGNORE INTO manifest (accession, patient_id, timepoint, "
                "collection_date, infusion_date, dna_input_ng, source_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*entry, source_sha256) for entry in entries],
            )
        return []

    def apply_correction(
        self,
        source_sha256: str,
        entries: Sequence[tuple],
        corrections: Sequence[CorrectionRecord],
        refile: Sequence[str],
    ) -> None:
        """Take a correction manifest, in one transaction: its corrected entries replace the
        ledger's, its new ones are added, each change is audited (`identity_corrections`), and the files in `refile`
        wait in `refiles` until their re-filing commit switches.

        Raises `ManifestChanged` when the mappings corrected are no longer those the
        correction was prepared against (another manifest was taken meanwhile).
        """
        now = _now()
        with self._transaction() as db:
            actual = {c.accession: c.old for c in _changes(db, [c.new for c in corrections])}
            expected = {c.new[0]: c.old for c in corrections}
            if actual != expected:
                raise ManifestChanged(sorted(set(actual) ^ set(expected)) or sorted(expected))
            db.executemany(
                "INSERT OR REPLACE INTO manifest (accession, patient_id, timepoint, "
                "collection_date, infusion_date, dna_input_ng, source_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*c.new, source_sha256) for c in corrections],
            )
            db.executemany(
                "INSERT OR IGNORE INTO manifest (accession, patient_id, timepoint, "
                "collection_date, infusion_date, dna_input_ng, source_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*entry, source_sha256) for entry in entries],
            )
            db.executemany(
                "INSERT INTO identity_corrections (accession, old_patient_id, old_timepoint, "
                "old_collection_date, old_infusion_date, old_dna_input_ng, old_source_sha256, "
                "new_patient_id, new_timepoint, new_collection_date, new_infusion_date, "
                "new_dna_input_ng, reason, corrected_by, corrected_at, manifest_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*c.old[:6], c.old_source_sha256, *c.new[1:6], c.reason, c.corrected_by, now,
                  source_sha256) for c in corrections],
            )  # fmt: skip
            db.executemany(
                "INSERT OR REPLACE INTO refiles (sha256, correction_sha256, since) "
                "VALUES (?, ?, ?)",
                [(sha256, source_sha256, now) for sha256 in refile],
            )

    def manifest_changes(self, entries: Sequence[tuple]) -> list[ManifestChange]:
        """The entries (ledger rows) that would map a known accession differently."""
        with self._connect() as db:
            return _changes(db, entries)

    def manifest_rows(self) -> list[tuple]:
        with self._connect() as db:
            return db.execute(
                "SELECT accession, patient_id, timepoint, collection_date, infusion_date, "
                "dna_input_ng FROM manifest"
            ).fetchall()

    def manifest_sources(self) -> dict[str, tuple[str, str]]:
        """Accession -> (sha256, file name) of the manifest that gave its current mapping."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT m.accession, m.source_sha256, COALESCE(f.original_name, m.source_sha256) "
                "FROM manifest m LEFT JOIN files f ON f.sha256 = m.source_sha256"
            ).fetchall()
        return {accession: (sha256, name) for accession, sha256, name in rows}

    def files_using(self, accessions: Sequence[str]) -> list[FileRecord]:
        """Ingested files whose rows used any of `accessions`: those whose commit recorded one,
        and assay files ingested before accessions were recorded (which may have)."""
        marks = ", ".join("?" * len(accessions))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files WHERE status = 'ingested' AND ("
                f"sha256 IN (SELECT sha256 FROM run_accessions WHERE accession IN ({marks})) "
                "OR (accessions_recorded IS NULL AND kind IS NOT NULL AND kind != 'manifest')) "
                "ORDER BY received_at, original_name",
                tuple(accessions),
            ).fetchall()
        return [FileRecord(*row) for row in rows]

    def accessions_of(self, sha256: str) -> list[str] | None:
        """The accessions a file's rows used, or None if its commit did not record them."""
        with self._connect() as db:
            recorded = db.execute(
                "SELECT accessions_recorded FROM files WHERE sha256 = ?", (sha256,)
            ).fetchone()
            if not recorded or not recorded[0]:
                return None
            rows = db.execute(
                "SELECT accession FROM run_accessions WHERE sha256 = ? ORDER BY accession",
                (sha256,),
            ).fetchall()
        return [row[0] for row in rows]

    def pending_refiles(self) -> dict[str, list[str]]:
        """Correction manifest -> the files it still has to re-file, for every correction a run
        applied but did not finish (an empty list: only the manifest is left to mark taken)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT correction_sha256, sha256 FROM refiles "
                "UNION SELECT c.manifest_sha256, NULL FROM identity_corrections c "
                "JOIN files f ON f.sha256 = c.manifest_sha256 WHERE f.status != 'ingested' "
                "ORDER BY 1, 2"
            ).fetchall()
        pending: dict[str, list[str]] = {}
        for correction, sha256 in rows:
            files = pending.setdefault(correction, [])
            if sha256 is not None:
                files.append(sha256)
        return pending

    def drop_refiles(self, files: Sequence[str]) -> None:
        """Files no longer to re-file (superseded, or gone from the ledger's ingested files)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM refiles WHERE sha256 = ?", [(s,) for s in files])

    def corrections(self) -> list[dict]:
        """The audit of identity corrections, oldest first, one dict per corrected accession."""
        with self._connect() as db:
            cursor = db.execute("SELECT * FROM identity_corrections ORDER BY id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class ManifestChange:
    """An accession the ledger maps as `old` that a manifest maps as `new` (ledger rows)."""

    accession: str
    old: tuple
    old_source_sha256: str
    new: tuple


@dataclass(frozen=True)
class CorrectionRecord:
    """One audited change of a correction manifest: the ledger's row before and after."""

    old: tuple
    old_source_sha256: str
    new: tuple
    reason: str
    corrected_by: str

    @property
    def accession(self) -> str:
        return self.new[0]


class ManifestChanged(Exception):
    """The manifest entries a correction was prepared against changed before it was applied."""

    def __init__(self, accessions: list[str]) -> None:
        super().__init__(", ".join(accessions))
        self.accessions = accessions


def _changes(db: sqlite3.Connection, entries: Sequence[tuple]) -> list[ManifestChange]:
    """The entries (ledger rows) that map a known accession differently from the ledger."""
    changes = []
    for entry in entries:
        row = db.execute(
            "SELECT accession, patient_id, timepoint, collection_date, infusion_date, "
            "dna_input_ng, source_sha256 FROM manifest WHERE accession = ?",
            (entry[0],),
        ).fetchone()
        if row is not None and tuple(row[:6]) != tuple(entry):
            changes.append(ManifestChange(entry[0], tuple(row[:6]), row[6], tuple(entry)))
    return changes


def _record_qc_samples(
    db: sqlite3.Connection,
    sha256: str,
    samples: Sequence[Sequence[str]],
    run_started: str,
    passed: bool,
) -> None:
    """The run's qPCR samples (patient, timepoint, target) in `qc_samples`, replacing any."""
    db.execute("DELETE FROM qc_samples WHERE sha256 = ?", (sha256,))
    db.executemany(
        "INSERT OR IGNORE INTO qc_samples VALUES (?, ?, ?, ?, ?, ?)",
        [(sha256, *key, run_started, int(passed)) for key in samples],
    )


_REPEAT_OF = """
SELECT (SELECT p.sha256 FROM qc_samples p JOIN files g ON g.sha256 = p.sha256
        WHERE g.status = 'ingested' AND p.passed = 1 AND p.patient_id = q.patient_id
          AND p.timepoint = q.timepoint AND p.target = q.target AND p.run_started > q.run_started
        ORDER BY p.run_started DESC, p.sha256 LIMIT 1) AS repeat,
       (SELECT max(p.run_started) FROM qc_samples p JOIN files g ON g.sha256 = p.sha256
        WHERE g.status = 'ingested' AND p.passed = 1 AND p.patient_id = q.patient_id
          AND p.timepoint = q.timepoint AND p.target = q.target
          AND p.run_started > q.run_started) AS started
FROM qc_samples q WHERE q.sha256 = ? AND q.passed = 0
"""
"""Per sample of a failed run: the latest run taken that reported it and started after it."""


def _resolve_repeats(db: sqlite3.Connection, now: str, flow_run_id: str | None) -> None:
    """Within a switch: each failed run not yet resolved whose every sample a later run that
    passed reported becomes `resolved_by` the latest of those runs."""
    waiting = db.execute(
        "SELECT sha256 FROM files f WHERE status = 'quarantined' AND resolved_by IS NULL "
        "AND EXISTS (SELECT 1 FROM qc_samples q WHERE q.sha256 = f.sha256 AND q.passed = 0)"
    ).fetchall()
    for (failed,) in waiting:
        repeats = db.execute(_REPEAT_OF, (failed,)).fetchall()
        if any(repeat is None for repeat, _ in repeats):
            continue
        resolving = max(repeats, key=lambda r: (r[1], r[0]))[0]
        db.execute(
            "UPDATE files SET resolved_by = ?, updated_at = ? WHERE sha256 = ?",
            (resolving, now, failed),
        )
        db.execute(
            "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
            "VALUES (?, ?, 'resolved', ?, ?)",
            (failed, now, f"resolved by {resolving}: a later run that passed QC repeated its "
             "samples", flow_run_id),
        )  # fmt: skip


def _record_accessions(db: sqlite3.Connection, sha256: str, accessions: Sequence[str]) -> None:
    db.execute("DELETE FROM run_accessions WHERE sha256 = ?", (sha256,))
    db.executemany(
        "INSERT INTO run_accessions (sha256, accession) VALUES (?, ?)",
        [(sha256, accession) for accession in accessions],
    )
    db.execute("UPDATE files SET accessions_recorded = 1 WHERE sha256 = ?", (sha256,))


def _ingested_run(
    db: sqlite3.Connection, kind: str, run_identity: str, exclude: str
) -> FileRecord | None:
    row = db.execute(
        f"SELECT {_RECORD_COLUMNS} FROM files WHERE kind = ? AND run_identity = ? "
        "AND status = 'ingested' AND sha256 != ?",
        (kind, run_identity, exclude),
    ).fetchone()
    return FileRecord(*row) if row else None


def _alive(claim: Claim, now: float, expiry_seconds: float) -> bool:
    """Whether a claim still belongs to a running batch.

    Same host: the process decides, whatever the heartbeat says (a dead run is seen at once).
    Another host, or a claim recorded without its process: the heartbeat must be younger than
    the expiry.
    """
    if claim.host == socket.gethostname() and claim.pid is not None and claim.started is not None:
        return process_alive(claim.pid, claim.started)
    return claim.heartbeat_at is not None and now - claim.heartbeat_at < expiry_seconds


def process_alive(pid: int, started: float) -> bool:
    """Whether the process `pid` that started at `started` still runs on this host (a reused
    pid belongs to a process started later)."""
    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 1.0 and (
            process.status() != psutil.STATUS_ZOMBIE
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
