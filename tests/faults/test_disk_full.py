"""A full disk: every file fails with one clear line and stays in the inbox; nothing is stuck,
nothing half-written is left; once space is freed, the next run takes every file.

The lab home lives on a small tmpfs mounted for the test (root on Linux); where the machine does
not allow mounting one, the test skips and says so.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipelines.home import LabHome
from pipelines.ingest import Processor
from tests.faults.runs import cartflow
from tests.plates import qpcr_plate

pytestmark = pytest.mark.slow

DISK_MB = 24


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}M", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}): disk-full test")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path, leave_kb: int) -> Path:
    """Write zeros until the filesystem is full, then give back `leave_kb`; return the filler."""
    filler = folder / "filler.bin"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 64 << 10, 4096, 512, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError as err:
                    assert err.errno == errno.ENOSPC
                    break
        os.ftruncate(descriptor, max(0, os.fstat(descriptor).st_size - leave_kb * 1024))
    finally:
        os.close(descriptor)
    return filler


@pytest.mark.parametrize("leave_kb", [0, 48, 160])
def test_a_full_disk_fails_cleanly_and_the_next_run_takes_every_file(
    small_disk: Path, prefect_api: str, leave_kb: int
) -> None:
    """Whatever the disk refuses first (the ledger, the raw store, a Parquet file, the
    validation results), no traceback, exit status 1, every file not taken is in the inbox and
    held by no live claim (a disk too full for the ledger may keep the claim of the run, which has
    ended: the next run takes it over), no temporary file; then, with space again, every file is
    taken once."""
    home = LabHome(small_disk / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    Processor(home).validator.warm_up()  # the lab home as a running lab has it
    plates = [qpcr_plate(home.inbox / f"plate_{n}.txt", f"P10{n}", f"FULL-{n}") for n in range(3)]
    filler = _fill(small_disk, leave_kb)

    full = cartflow(prefect_api, "run", "--home", str(home.root))
    output = full.stdout + full.stderr
    assert full.returncode == 1, output
    assert "Traceback" not in output, output
    assert "No space left on device" in output or "disk" in output, output
    failed = [line for line in full.stdout.splitlines() if line.startswith("failed")]
    taken = [line for line in full.stdout.splitlines() if line.startswith("taken")]
    if failed:  # the run got as far as the files: one line each
        assert len(failed) + len(taken) == 3, output
    else:  # the ledger itself could not be opened: one line for the run
        assert "cartflow: cannot go on" in full.stderr and "ledger" in full.stderr, output
    assert sum(p.exists() for p in plates) == 3 - len(taken)
    assert list(home.root.rglob("*.tmp")) == []
    # a claim the full disk kept the run from releasing names the run's process, now gone: the
    # next run takes it over (below); no live claim holds a file
    assert all(not psutil.pid_exists(pid) for pid in _claim_pids(home)), output

    os.remove(filler)
    again = cartflow(prefect_api, "run", "--home", str(home.root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert _statuses(home) == {"ingested"}
    assert list(home.inbox.iterdir()) == []
    assert list(home.root.rglob("*.tmp")) == []
    with sqlite3.connect(home.ledger_path) as db:
        events = db.execute("select count(*) from events where status = 'ingested'").fetchone()
    assert events == (3,)


def _claim_pids(home: LabHome) -> list[int]:
    """The processes named by the claims still in the ledger (files left `processing`)."""
    if not home.ledger_path.exists():
        return []
    with sqlite3.connect(f"file:{home.ledger_path}?mode=ro&immutable=1", uri=True) as db:
        return [
            pid for (pid,) in db.execute("select claim_pid from files where status = 'processing'")
        ]


def _statuses(home: LabHome) -> set[str]:
    if not home.ledger_path.exists():
        return set()
    # read as it is on disk, creating nothing beside it (the disk may be full)
    with sqlite3.connect(f"file:{home.ledger_path}?mode=ro&immutable=1", uri=True) as db:
        return {status for (status,) in db.execute("select status from files")}
