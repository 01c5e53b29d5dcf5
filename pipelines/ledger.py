"""The ingest ledger: one SQLite database recording every file the lab home ever received.

Statuses: `received` (in the raw store, not yet processed), `processing` (claimed by a run),
`ingested`, `quarantined`, `superseded` (a corrected re-export of the same run replaced it).
Claims are atomic, so a watcher and a nightly sweep that meet the same file process it once; a
claim older than `STALE_CLAIM_SECONDS` belongs to a run that died and may be taken over.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STALE_CLAIM_SECONDS = 15 * 60

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
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_run ON files(kind, run_identity, status);
CREATE TABLE IF NOT EXISTS outputs (
    sha256 TEXT NOT NULL,
    table_name TEXT NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (sha256, path)
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


@dataclass(frozen=True)
class Output:
    table_name: str
    path: str  # relative to the warehouse
    rows: int


_RECORD_COLUMNS = ", ".join(FileRecord.__dataclass_fields__)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; `durable=False` for a step the next sweep redoes if lost.

        A durable commit waits for the disk (fsync). On ext4 that also waits for the raw-store
        copies the workers are writing meanwhile: receiving and claiming the files of a 100-file
        backfill spent 3 s per worker in fsync. Outcomes (ingested, quarantined, a manifest)
        stay durable; a receipt or claim lost to a power cut (never to a crash of the process)
        is taken again by the next sweep, or goes stale.
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

    def claim(self, sha256: str, token: str) -> bool:
        """Take the file for processing; False if another live run holds it or it is done.

        Quarantined files may be claimed again (a re-drop after the manifest or settings were
        fixed is retried); ingested and superseded files may not.
        """
        stale = time.time() - STALE_CLAIM_SECONDS
        with self._transaction(durable=False) as db:
            taken = db.execute(
                "UPDATE files SET status = 'processing', claim_token = ?, claimed_at = ?, "
                "updated_at = ? WHERE sha256 = ? AND (status IN ('received', 'quarantined') "
                "OR (status = 'processing' AND claimed_at < ?))",
                (token, time.time(), _now(), sha256, stale),
            ).rowcount
        return bool(taken)

    def release_claim(self, sha256: str) -> None:
        """Give back a claim without an outcome (the run was interrupted)."""
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE files SET status = 'received', claim_token = NULL, claimed_at = NULL "
                "WHERE sha256 = ? AND status = 'processing'",
                (sha256,),
            )

    def find_ingested_run(self, kind: str, run_identity: str, exclude: str) -> FileRecord | None:
        """The ingested file of the same run (an earlier export of the same plate), if any."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files WHERE kind = ? AND run_identity = ? "
                "AND status = 'ingested' AND sha256 != ?",
                (kind, run_identity, exclude),
            ).fetchone()
        return FileRecord(*row) if row else None

    def outputs(self, sha256: str) -> list[Output]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT table_name, path, rows FROM outputs WHERE sha256 = ? ORDER BY path",
                (sha256,),
            ).fetchall()
        return [Output(*row) for row in rows]

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
        supersedes: str | None,
    ) -> None:
        now = _now()
        with self._transaction() as db:
            db.execute(
                "UPDATE files SET status = 'ingested', kind = ?, instrument_format = ?, "
                "run_identity = ?, reason = NULL, warnings = ?, pipeline_version = ?, "
                "flow_run_id = ?, claim_token = NULL, claimed_at = NULL, updated_at = ? "
                "WHERE sha256 = ?",
                (kind, instrument_format, run_identity, warnings, pipeline_version,
                 flow_run_id, now, sha256),
            )  # fmt: skip
            db.execute("DELETE FROM outputs WHERE sha256 = ?", (sha256,))
            db.executemany(
                "INSERT INTO outputs (sha256, table_name, path, rows) VALUES (?, ?, ?, ?)",
                [(sha256, o.table_name, o.path, o.rows) for o in outputs],
            )
            db.execute(
                "INSERT INTO events (sha256, at, status, flow_run_id) VALUES (?, ?, 'ingested', ?)",
                (sha256, now, flow_run_id),
            )
            if supersedes:
                db.execute(
                    "UPDATE files SET status = 'superseded', superseded_by = ?, updated_at = ? "
                    "WHERE sha256 = ?",
                    (sha256, now, supersedes),
                )
                db.execute("DELETE FROM outputs WHERE sha256 = ?", (supersedes,))
                db.execute(
                    "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                    "VALUES (?, ?, 'superseded', ?, ?)",
                    (supersedes, now, f"replaced by {sha256}", flow_run_id),
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
    ) -> None:
        now = _now()
        with self._transaction() as db:
            db.execute(
                "UPDATE files SET status = 'quarantined', reason = ?, kind = ?, "
                "instrument_format = ?, pipeline_version = ?, flow_run_id = ?, "
                "claim_token = NULL, claimed_at = NULL, updated_at = ? WHERE sha256 = ?",
                (reason, kind, instrument_format, pipeline_version, flow_run_id, now, sha256),
            )
            db.execute(
                "INSERT INTO events (sha256, at, status, reason, flow_run_id) "
                "VALUES (?, ?, 'quarantined', ?, ?)",
                (sha256, now, reason, flow_run_id),
            )

    def records(self) -> list[FileRecord]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM files ORDER BY received_at, original_name"
            ).fetchall()
        return [FileRecord(*row) for row in rows]

    def replace_manifest(self, source_sha256: str, entries: Sequence[tuple]) -> None:
        """Upsert manifest entries (accession, patient, timepoint, collected, infused, dna_ng).

        A later manifest wins for the accessions it lists; others are kept.
        """
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO manifest (accession, patient_id, timepoint, "
                "collection_date, infusion_date, dna_input_ng, source_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*entry, source_sha256) for entry in entries],
            )

    def manifest_rows(self) -> list[tuple]:
        with self._connect() as db:
            return db.execute(
                "SELECT accession, patient_id, timepoint, collection_date, infusion_date, "
                "dna_input_ng FROM manifest"
            ).fetchall()
