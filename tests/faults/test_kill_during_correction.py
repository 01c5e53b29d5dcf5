"""An identity correction killed half-way is finished by the next run, rows moved exactly once.

A real process takes a correction manifest and SIGKILLs itself (`pipelines.ingest.faults`) at a
step of the re-filing of the files that used the corrected accession: inside the first file's
journalled commit, between two files, or after the last one. The next batch (recovery, then
`Processor.resume_corrections`) must leave the lab home as if the correction had run through:
the draw's T-cell and B-cell tubes and its qPCR rows under the new patient once each, one audit
row, nothing left to re-file, the correction manifest taken, the ledger's outputs exactly the
warehouse's files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.environment import FAULT
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, InProcess, Processor, faults, run_batch, sha256_of
from pipelines.ledger import Ledger
from tests.pipelines.test_identity_corrections import (
    CORRECTION,
    FIRST,
    _assert_corrected,
    _plate,
    _rows_by_patient,
    _tube,
    _write,
)

pytestmark = pytest.mark.slow

TAKE = (
    "import sys; from pathlib import Path; from pipelines.home import LabHome; "
    "from pipelines.ingest import Processor; "
    "Processor(LabHome(Path(sys.argv[1]))).process(Path(sys.argv[2]))"
)


@pytest.mark.parametrize(
    "step",
    [
        faults.JOURNALLED,  # the first file's commit journalled, nothing renamed
        faults.NEW_PUBLISHED,  # its new outputs in place, the ledger not switched
        f"{faults.LEDGER_COMMITTED}:2",  # one file re-filed, the second switched, old not removed
        f"{faults.LEDGER_COMMITTED}:3",  # every file re-filed, the manifest not yet marked taken
    ],
)
def test_a_correction_killed_at_any_step_is_finished_by_the_next_run(
    tmp_path: Path, step: str
) -> None:
    home = LabHome(tmp_path / "lab").ensure()
    processor = Processor(home)
    for path in (
        _write(tmp_path / "manifest_june.csv", FIRST),
        _tube(tmp_path, "S26-0100", "tcell"),
        _tube(tmp_path, "S26-0100", "bcell"),
        _plate(tmp_path / "plate.txt", ["S26-0100", "S26-0101"], "RUN-1"),
    ):
        assert processor.process(path).status == INGESTED
    before = {
        table: sum(_rows_by_patient(home, table, "true").values())
        for table in ("flow_samples", "flow_populations", "flow_mfi")
    }
    correction = _write(tmp_path / "correction.csv", CORRECTION)

    killed = subprocess.run(
        [sys.executable, "-c", TAKE, str(home.root), str(correction)],
        env={**os.environ, FAULT.name: step}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    left = Ledger(home.ledger_path).pending_refiles()
    assert list(left) == [sha256_of(correction)]  # applied, not finished: the next run's work

    run_batch(processor, [], InProcess(processor))

    _assert_corrected(home, before)
    ledger = Ledger(home.ledger_path)
    assert [c["accession"] for c in ledger.corrections()] == ["S26-0100"]
    assert ledger.pending_refiles() == {} and ledger.journal() == []
    statuses = {r.original_name: r.status for r in ledger.records()}
    assert set(statuses.values()) == {INGESTED}, statuses
    assert {"P001", "P999"} <= set(ledger.pending_derive())
    listed = {o.path for _, o in ledger.all_outputs()}
    on_disk = {
        p.relative_to(home.warehouse).as_posix()
        for p in home.warehouse.rglob("*.parquet")
        if p.parent.name != "ingest_log"
    }
    assert on_disk == listed  # no leftover, temporary or superseded file
