"""`cartflow verify`: the raw store and the warehouse against the ledger, on a lab home made by
hand (a ledger, raw files and Parquet files written here, no ingest run)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.home import LabHome
from pipelines.ledger import Ledger, Output
from pipelines.verify import (
    CHANGED,
    DERIVED_TABLES,
    IN_FLIGHT,
    LEFTOVER,
    MISSING,
    NOT_HASHED,
    UNACCOUNTED,
    UNRECORDED,
    per_source_tables,
    sha256_of,
    verify_home,
)

PLATE = b"Block Type\t96fast\nwell\tCq\nA1\t24.1\n"
REFUSED = b"this is not an instrument export\n"


@dataclass
class Lab:
    home: LabHome
    ledger: Ledger
    plate: str  # sha256 of the ingested plate
    refused: str  # sha256 of the quarantined file

    def raw(self, sha256: str) -> Path:
        return next((self.home.raw / sha256[:2]).glob(f"{sha256}*"))


def _keep_raw(home: LabHome, content: bytes, suffix: str) -> str:
    sha256 = hashlib.sha256(content).hexdigest()
    path = home.raw / sha256[:2] / f"{sha256}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, 0o444)
    return sha256


def _parquet(warehouse: Path, relative: str, rows: int = 2) -> Path:
    path = warehouse / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"value": list(range(rows))}), path)
    return path


@pytest.fixture
def lab(tmp_path) -> Lab:
    home = LabHome(tmp_path / "lab").ensure()
    ledger = Ledger(home.ledger_path)
    plate = _keep_raw(home, PLATE, ".txt")
    ledger.receive(plate, len(PLATE), "plate1.txt")
    outputs = []
    for table, relative in (
        ("qpcr_runs", f"qpcr_runs/{plate}.parquet"),
        ("car_copies", f"car_copies/patient_id=P001/timepoint=BL/{plate}.parquet"),
        ("validation_results", f"validation_results/{plate}.parquet"),
    ):
        path = _parquet(home.warehouse, relative)
        outputs.append(Output(table, relative, 2, sha256_of(path)))
    ledger.mark_ingested(
        plate, kind="qpcr", instrument_format="quantstudio-text", run_identity="plate1",
        pipeline_version="test", flow_run_id=None, outputs=outputs, warnings=None,
    )  # fmt: skip
    refused = _keep_raw(home, REFUSED, ".csv")
    ledger.receive(refused, len(REFUSED), "notes\n.csv")
    ledger.mark_quarantined(
        refused, reason="not recognised", kind=None, instrument_format=None,
        pipeline_version="test", flow_run_id=None,
    )  # fmt: skip
    # written by the pipeline, named by no ledger output, and not to be reported
    _parquet(home.warehouse, f"validation_results/{refused}.parquet")  # the refused file's results
    _parquet(home.warehouse, "validation_results/derived.parquet")
    _parquet(home.warehouse, "car_kinetics/patient_id=P001/derived.parquet")
    _parquet(home.warehouse, "qc_trends/qc_trends.parquet")
    _parquet(home.warehouse, "ingest_log/ingest_log.parquet")
    return Lab(home, ledger, plate, refused)


def _kinds(report) -> list[str]:
    return [f.kind for f in report.findings]


def test_a_clean_home_verifies_clean(lab):
    report = verify_home(lab.home)
    assert report.ok and report.findings == []
    assert (report.raw_files, report.warehouse_files) == (2, 3)


def test_a_flipped_byte_in_the_raw_store_is_changed(lab):
    path = lab.raw(lab.plate)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_home(lab.home)
    assert not report.ok and _kinds(report) == [CHANGED]
    (finding,) = report.problems
    assert finding.path == f"raw/{lab.plate[:2]}/{lab.plate}.txt"
    assert hashlib.sha256(bytes(data)).hexdigest() in finding.detail
    assert f"the ledger recorded {lab.plate} for plate1.txt" in finding.detail


def test_a_raw_file_gone_is_missing_whatever_its_status(lab):
    lab.raw(lab.refused).unlink()
    report = verify_home(lab.home)
    assert _kinds(report) == [MISSING]
    assert report.problems[0].path == f"raw/{lab.refused[:2]}/{lab.refused}"
    assert "quarantined" in report.problems[0].detail


def test_a_deleted_warehouse_file_is_missing(lab):
    (lab.home.warehouse / f"qpcr_runs/{lab.plate}.parquet").unlink()
    report = verify_home(lab.home)
    assert _kinds(report) == [MISSING]
    assert report.problems[0].path == f"warehouse/qpcr_runs/{lab.plate}.parquet"
    assert "qpcr_runs output of plate1.txt" in report.problems[0].detail
    assert report.warehouse_files == 2


def test_a_warehouse_file_written_into_is_changed(lab):
    path = lab.home.warehouse / f"car_copies/patient_id=P001/timepoint=BL/{lab.plate}.parquet"
    recorded = sha256_of(path)
    with path.open("ab") as handle:
        handle.write(b"\0")
    report = verify_home(lab.home)
    assert _kinds(report) == [CHANGED]
    assert f"the ledger recorded {recorded}" in report.problems[0].detail


def test_an_extra_parquet_file_in_a_curated_table_is_unaccounted(lab):
    stranger = "f" * 64
    _parquet(lab.home.warehouse, f"car_copies/patient_id=P002/timepoint=D7/{stranger}.parquet")
    _parquet(lab.home.warehouse, "flow_mfi/patient_id=P002/timepoint=D7/copy of it.parquet")
    report = verify_home(lab.home)
    assert _kinds(report) == [UNACCOUNTED, UNACCOUNTED]
    assert {f.path for f in report.problems} == {
        f"warehouse/car_copies/patient_id=P002/timepoint=D7/{stranger}.parquet",
        "warehouse/flow_mfi/patient_id=P002/timepoint=D7/copy of it.parquet",
    }


def test_dot_files_are_leftovers_not_problems(lab):
    (lab.home.raw / lab.plate[:2] / f".{lab.plate}.txt.1234.tmp").write_bytes(b"half")
    (lab.home.warehouse / "qpcr_runs" / f".{lab.plate}.parquet.tmp").write_bytes(b"half")
    report = verify_home(lab.home)
    assert report.ok and _kinds(report) == [LEFTOVER, LEFTOVER]


def test_a_raw_file_the_ledger_never_recorded_is_a_note(lab):
    _keep_raw(lab.home, b"arrived, not recorded", ".fcs")
    report = verify_home(lab.home)
    assert report.ok and _kinds(report) == [UNRECORDED]
    assert report.raw_files == 3


def test_a_file_in_the_raw_store_without_a_raw_store_name_is_unaccounted(lab):
    (lab.home.raw / "readme.txt").write_text("put here by hand")
    (lab.home.raw / "00").mkdir(exist_ok=True)
    misplaced = lab.home.raw / "00" / f"{lab.plate}.txt"  # right name, wrong folder
    misplaced.write_bytes(PLATE)
    report = verify_home(lab.home)
    assert sorted(f.path for f in report.problems) == [f"raw/00/{lab.plate}.txt", "raw/readme.txt"]
    assert _kinds(report) == [UNACCOUNTED, UNACCOUNTED]


def test_outputs_written_before_hashing_are_a_note(lab):
    plate2 = _keep_raw(lab.home, PLATE + b"A2\t25.0\n", ".txt")
    lab.ledger.receive(plate2, 10, "plate2.txt")
    relative = f"qpcr_runs/{plate2}.parquet"
    _parquet(lab.home.warehouse, relative)
    lab.ledger.mark_ingested(
        plate2, kind="qpcr", instrument_format="quantstudio-text", run_identity="plate2",
        pipeline_version="old", flow_run_id=None, outputs=[Output("qpcr_runs", relative, 2)],
        warnings=None,
    )  # fmt: skip
    report = verify_home(lab.home)
    assert report.ok and _kinds(report) == [NOT_HASHED]
    (lab.home.warehouse / relative).unlink()
    assert _kinds(verify_home(lab.home)) == [MISSING]


def test_a_commit_in_flight_is_a_note(lab):
    from pipelines.ledger import CommitPlan

    plate2 = _keep_raw(lab.home, PLATE + b"A3\t26.0\n", ".txt")
    lab.ledger.receive(plate2, 10, "plate2.txt")
    relative = f"qpcr_runs/{plate2}.parquet"
    path = _parquet(lab.home.warehouse, relative)  # renamed into place, ledger not switched yet
    plan = CommitPlan(
        outputs=[Output("qpcr_runs", relative, 2, sha256_of(path))], staged={}, ingest={},
        remove=[],
    )  # fmt: skip
    lab.ledger.begin_commit(plate2, "token", plan)
    report = verify_home(lab.home)
    assert report.ok and _kinds(report) == [IN_FLIGHT]
    assert "plate2.txt" in report.findings[0].detail


def test_no_ledger_means_nothing_is_accounted_for(tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    _keep_raw(home, PLATE, ".txt")
    _parquet(home.warehouse, f"qpcr_runs/{'a' * 64}.parquet")
    report = verify_home(home)
    assert not report.ledger_found and not home.ledger_path.exists()
    assert _kinds(report) == [UNRECORDED, UNACCOUNTED]


def test_the_tables_checked_are_the_curated_ones():
    from pipelines.derived.recompute import PATIENT_TABLES
    from validation.schemas import QC_TRENDS, TABLES

    assert set(PATIENT_TABLES) | {QC_TRENDS.name} == DERIVED_TABLES
    assert set(per_source_tables()) == set(TABLES) - DERIVED_TABLES - {"ingest_log"}
    assert "validation_results" in per_source_tables()


# -- the command -----------------------------------------------------------------------------

runner = CliRunner()


def _verify(home: Path):
    return runner.invoke(app, ["verify", "--home", str(home)])


def test_the_command_exits_0_when_all_is_well(lab):
    result = _verify(lab.home.root)
    assert result.exit_code == 0, result.output
    assert "verified 2 raw files and 3 warehouse files: 0 problem(s)" in result.output


def test_the_command_exits_1_and_prints_one_line_per_problem(lab):
    (lab.home.warehouse / f"qpcr_runs/{lab.plate}.parquet").unlink()
    lab.raw(lab.refused).unlink()
    result = _verify(lab.home.root)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["missing", "missing", "verified"]
    assert lines[-1] == "verified 1 raw files and 2 warehouse files: 2 problem(s)"
    # the refused file's name holds a newline: shown escaped, on its own line
    assert "notes\\n.csv (quarantined) is not in the raw store" in result.output


def test_the_command_exits_2_without_a_lab_home(tmp_path):
    result = _verify(tmp_path / "nowhere")
    assert result.exit_code == 2
    assert str(tmp_path / "nowhere") in result.output


def test_names_cannot_forge_lines_or_markup(lab):
    lab.ledger.receive("e" * 64, 1, "[red]x[/red]\x1b[2J\ntaken       forged.fcs")
    result = _verify(lab.home.root)
    assert result.exit_code == 1
    assert "[red]x[/red]\\x1b[2J\\ntaken       forged.fcs (received)" in result.output
    assert "\x1b" not in result.output
    assert not any(line.startswith("taken") for line in result.output.splitlines())
