"""An inbox a lab really meets: good plates among a workbook whose XML does not parse, an empty
file, a truncated FCS, and names that try to forge output lines or reach the terminal raw, or
are too long for a reason file beside them. One sweep takes the good plates, quarantines each
bad file with its reason, prints one safe line per file, and ends without a traceback."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from pipelines.home import LabHome
from pipelines.ledger import Ledger
from tests.faults.runs import cartflow
from tests.plates import qpcr_plate

pytestmark = pytest.mark.slow

FORGED = "plate\ntaken       forged.fcs: flow (x), 1 rows.txt"
ESCAPES = "\x1b[2J\x1b[31mred\u202eplate.txt"
LONG = "P" + "x" * 240 + ".txt"
STATUS_WORDS = ("taken", "already had", "skipped", "failed", "quarantined")


def _bad_workbook(path: Path) -> Path:
    """An XLSX whose workbook XML uses an entity it never defines."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<?xml version='1.0'?><workbook>&undefined;</workbook>")
    return path


def test_one_sweep_takes_the_good_and_refuses_the_bad_safely(tmp_path: Path, prefect_api: str):
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    good = [qpcr_plate(home.inbox / f"good_{n}.txt", f"P60{n}", f"GOOD-{n}") for n in range(2)]
    good.append(qpcr_plate(home.inbox / FORGED, "P610", "FORGED-1"))
    _bad_workbook(home.inbox / "manifest.xlsx")
    (home.inbox / "empty.txt").write_bytes(b"")
    (home.inbox / "truncated.fcs").write_bytes(b"FCS3.1    " + b"0" * 40)
    (home.inbox / ESCAPES).write_text("not an export\n")
    (home.inbox / LONG).write_text("not an export either\n")

    swept = cartflow(prefect_api, "run", "--home", str(home.root))
    output = swept.stdout + swept.stderr
    assert swept.returncode == 3, output
    assert "Traceback" not in output
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", output)  # only \n and \t raw
    lines = [line for line in swept.stdout.splitlines() if line.startswith(STATUS_WORDS)]
    assert len(lines) == 8, swept.stdout
    assert sum(line.startswith("taken") for line in lines) == 3
    assert not any(line.startswith("taken       forged") for line in lines)  # no forged line
    assert "taken       plate\\ntaken       forged.fcs: flow (x), 1 rows.txt: qpcr" in swept.stdout
    assert "8 file(s): 3 taken, 5 quarantined" in swept.stdout

    records = Ledger(home.ledger_path).records()
    assert sorted(r.status for r in records) == ["ingested"] * 3 + ["quarantined"] * 5
    assert list(home.inbox.iterdir()) == []
    quarantined = sorted(p.name for p in home.quarantine.iterdir())
    refused = [n for n in quarantined if not n.endswith(".reason.txt")]
    assert len(refused) == 5
    assert all(f"{n}.reason.txt" in quarantined for n in refused)
    assert all(len(n.encode()) <= 255 for n in quarantined)
    assert all(not re.search(r"[\x00-\x1f\x7f\u202e]", n) for n in quarantined)
