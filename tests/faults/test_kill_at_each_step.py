"""Exactly once, whatever happens: a real `cartflow run` SIGKILLed at each step of a file's path.

Each case starts from a lab home that already holds plate `RUN-A` (ingested), drops its
corrected re-export and a second plate into the inbox, and runs `cartflow run` with
`CARTFLOW_FAULT` naming the step where the process kills itself (`pipelines.ingest.faults`).
One ordinary `cartflow run` later, the lab home must be as if the killed run had never started
the file in flight or had finished it:

- the warehouse's curated Parquet files are exactly the ledger's outputs, with their hashes;
  no duplicate keys in `car_copies`; the re-export superseded the first plate;
- every file was taken once (one `ingested` event), nothing is claimed, no commit is journalled;
- no temporary file anywhere in the lab home, no process of the killed run left;
- the derived tables follow the new rows (a kill during derive leaves them waiting, not lost).

The runs share one Prefect server (`tests/faults/conftest.py`), so each `cartflow` process pays
its imports, not a server's start-up.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from pipelines.derived.recompute import DERIVED_FILE
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, Processor, faults, sha256_of
from pipelines.ledger import Ledger
from pipelines.warehouse import connect
from tests.faults.runs import cartflow, processes_of
from tests.plates import qpcr_plate

pytestmark = pytest.mark.slow

LAB_SETTINGS = "[qpcr]\ndefault_dna_input_ng = 200\n"
CURATED = ("qpcr_wells", "qpcr_runs", "car_copies", "validation_results")


@pytest.fixture()
def lab(tmp_path: Path) -> tuple[LabHome, dict[str, Path]]:
    """A lab home holding plate RUN-A, with its re-export and plate RUN-B in the inbox."""
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text(LAB_SETTINGS, encoding="utf-8")
    first = qpcr_plate(tmp_path / "plate_a.txt", "P001", "RUN-A")
    assert Processor(home).process(first).status == INGESTED
    files = {
        "first": first,
        "again": qpcr_plate(home.inbox / "plate_a_corrected.txt", "P001", "RUN-A", shift=0.4),
        "other": qpcr_plate(home.inbox / "plate_b.txt", "P002", "RUN-B"),
    }
    return home, files


STEPS = [
    faults.RAW_STORED, faults.CLAIMED, faults.PARQUET_WRITE, f"{faults.PARQUET_WRITE}:3",
    faults.JOURNALLED, faults.NEW_PUBLISHED, faults.LEDGER_COMMITTED, faults.FILED_AWAY,
    faults.DERIVE,
]  # fmt: skip


@pytest.mark.parametrize("step", STEPS)
def test_a_run_killed_at_any_step_is_settled_by_the_next(lab, prefect_api: str, step: str) -> None:
    home, files = lab
    killed = cartflow(prefect_api, "run", "--home", str(home.root), fault=step)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    again = cartflow(prefect_api, "run", "--home", str(home.root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stdout + again.stderr

    _assert_settled(home, files)


def _assert_settled(home: LabHome, files: dict[str, Path]) -> None:
    ledger = Ledger(home.ledger_path)
    statuses = {r.original_name: r.status for r in ledger.records()}
    assert statuses == {
        "plate_a.txt": "superseded", "plate_a_corrected.txt": INGESTED, "plate_b.txt": INGESTED,
    }  # fmt: skip
    assert ledger.journal() == [] and ledger.pending_derive() == []
    with sqlite3.connect(home.ledger_path) as db:
        ingested_events = dict(
            db.execute("select sha256, count(*) from events where status = 'ingested' group by 1")
        )
    assert sorted(ingested_events.values()) == [1, 1, 1]

    # the warehouse holds exactly the ledger's outputs, unchanged since written
    recorded = {o.path: o.file_sha256 for _, o in ledger.all_outputs()}
    on_disk = {
        str(p.relative_to(home.warehouse)): p
        for table in CURATED
        for p in (home.warehouse / table).rglob("*.parquet")
        if p.stem != DERIVED_FILE  # the derived tables' validation, rewritten whole
    }
    assert set(on_disk) == set(recorded)
    assert all(sha256_of(on_disk[path]) == recorded[path] for path in recorded)

    con = connect(home.warehouse)
    duplicates = con.execute(
        "select count(*) from (select run_id, sample_name, target, count(*) n from car_copies "
        "group by all having n > 1)"
    ).fetchone()
    assert duplicates == (0,)
    sources = dict(
        con.execute("select source_sha256, count(*) from car_copies group by 1").fetchall()
    )
    assert sources == {sha256_of(home.processed / "plate_a_corrected.txt"): 2,
                       sha256_of(home.processed / "plate_b.txt"): 2}  # fmt: skip
    derived = con.execute("select derived_from from car_kinetics where patient_id = 'P001'")
    assert sha256_of(home.processed / "plate_a_corrected.txt") in derived.fetchone()[0]

    # nothing half-done left in the lab home, and no process of the killed run
    assert sorted(p.name for p in home.inbox.iterdir()) == []
    assert sorted(p.name for p in home.processed.iterdir()) == [
        "plate_a_corrected.txt", "plate_b.txt",
    ]  # fmt: skip
    assert [p for p in home.root.rglob("*.tmp")] == []
    assert processes_of(home) == []
