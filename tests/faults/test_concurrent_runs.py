"""Two sweeps and an `ingest` at once on one lab home: every file taken exactly once, by one of
them, and none of them ends in a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from pipelines.home import LabHome
from tests.faults.runs import RUN_TIMEOUT, cartflow_command, cartflow_environment
from tests.plates import qpcr_plate

pytestmark = pytest.mark.slow

MANIFEST = "accession,patient_id,timepoint,dna_input_ng\nS-1,P701,D7,200\nS-2,P701,D14,200\n"


def test_concurrent_runs_take_each_file_once(tmp_path: Path, prefect_api: str) -> None:
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    (home.inbox / "manifest.csv").write_text(MANIFEST, encoding="utf-8")
    plates = [qpcr_plate(home.inbox / f"plate_{n}.txt", f"P7{n:02}", f"SAME-{n}") for n in range(6)]
    commands = [
        cartflow_command("run", "--home", str(home.root)),
        cartflow_command("run", "--home", str(home.root)),
        cartflow_command("ingest", "--home", str(home.root), *map(str, plates[:3])),
    ]
    runs = [
        subprocess.Popen(
            command,
            env=cartflow_environment(prefect_api),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        for command in commands
    ]
    outputs = [run.communicate(timeout=RUN_TIMEOUT) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
        assert "Traceback" not in out + err

    with sqlite3.connect(home.ledger_path) as db:
        statuses = dict(db.execute("select original_name, status from files"))
        events = dict(
            db.execute(
                "select f.original_name, count(*) from events e join files f using (sha256) "
                "where e.status = 'ingested' group by 1"
            )
        )
    names = ["manifest.csv", *(p.name for p in plates)]
    assert statuses == dict.fromkeys(names, "ingested")
    assert events == dict.fromkeys(names, 1)
    taken_lines = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("taken")
    ]
    assert sorted(line.split()[1].rstrip(":") for line in taken_lines) == sorted(names)
    assert list(home.inbox.iterdir()) == []
