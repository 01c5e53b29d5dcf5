"""`cartflow query SQL --output FILE`: the result in Excel, CSV, Parquet or JSON, read back."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from pipelines import cli
from pipelines.home import LabHome
from pipelines.ledger import Ledger
from pipelines.warehouse import conform, write_source
from validation.schemas import CAR_COPIES

SQL = (
    "select timepoint, collection_date, copies_per_ug, result, result_reason, processed_at "
    "from car_copies order by timepoint"
)
NOT_DETECTED = "not detected: 0 of 3 replicates amplified (LOQ 50 copies/µg, IFN-γ panel)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabHome:
    """A lab home holding three car_copies rows: D10 quantified, D4 not detected (NULL copies
    and date), D1 quantified."""
    home = LabHome(tmp_path_factory.mktemp("export") / "lab").ensure()
    Ledger(home.ledger_path).receive("a" * 64, 10, "plate1.txt")
    frame = pd.DataFrame(
        {
            "patient_id": "P001",
            "timepoint": ["D10", "D4", "D1"],
            "study_day": [10, 4, 1],
            "run_id": "plate1",
            "sample_name": ["S10", "S4", "S1"],
            "target": "CAR",
            "collection_date": [date(2026, 11, 13), None, date(2026, 11, 4)],
            "n_replicates": 3,
            "copies_per_ug": [12500.5, None, 80.25],
            "result": ["quantified", "not_detected", "quantified"],
            "result_reason": [None, NOT_DETECTED, None],
            "source_sha256": "a" * 64,
            "pipeline_version": "test",
            "processed_at": pd.Timestamp("2026-12-01T10:30:00Z"),
        }
    )
    write_source(home.warehouse, "a" * 64, {"car_copies": conform(frame, CAR_COPIES)})
    return home


def _query(lab: LabHome, *options: str):
    return CliRunner().invoke(cli.app, ["query", SQL, "--home", str(lab.root), *options])


def test_xlsx_holds_dates_nulls_and_text_in_study_day_order(lab, tmp_path):
    path = tmp_path / "car.xlsx"
    result = _query(lab, "--output", str(path))
    assert result.exit_code == 0, result.output
    assert f"3 row(s) written to {path} (xlsx)" in result.output
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    assert rows[0] == (
        "timepoint", "collection_date", "copies_per_ug", "result", "result_reason", "processed_at",
    )  # fmt: skip
    assert rows[1:] == [
        ("D1", datetime(2026, 11, 4), 80.25, "quantified", None, datetime(2026, 12, 1, 10, 30)),
        ("D4", None, None, "not_detected", NOT_DETECTED, datetime(2026, 12, 1, 10, 30)),
        ("D10", datetime(2026, 11, 13), 12500.5, "quantified", None, datetime(2026, 12, 1, 10, 30)),
    ]


def test_csv_leaves_nulls_empty_and_keeps_unicode(lab, tmp_path):
    path = tmp_path / "car.csv"
    assert _query(lab, "--output", str(path)).exit_code == 0
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["timepoint"] for r in rows] == ["D1", "D4", "D10"]
    assert rows[1]["collection_date"] == "" and rows[1]["copies_per_ug"] == ""
    assert rows[1]["result_reason"] == NOT_DETECTED
    assert rows[0]["collection_date"] == "2026-11-04"


def test_parquet_keeps_types_and_nulls(lab, tmp_path):
    path = tmp_path / "car.parquet"
    assert _query(lab, "--output", str(path)).exit_code == 0
    table = pq.read_table(path)
    assert table.schema.field("collection_date").type == pa.date32()
    assert table.column("collection_date").to_pylist() == [
        date(2026, 11, 4), None, date(2026, 11, 13),
    ]  # fmt: skip
    assert table.column("copies_per_ug").to_pylist() == [80.25, None, 12500.5]
    assert table.column("timepoint").cast(pa.string()).to_pylist() == ["D1", "D4", "D10"]


def test_format_option_wins_over_the_suffix(lab, tmp_path):
    path = tmp_path / "car.txt"
    assert _query(lab, "--output", str(path), "--format", "json").exit_code == 0
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert rows[1] == {
        "timepoint": "D4", "collection_date": None, "copies_per_ug": None,
        "result": "not_detected", "result_reason": NOT_DETECTED,
        "processed_at": "2026-12-01T10:30:00+00:00",
    }  # fmt: skip
    assert rows[0]["collection_date"] == "2026-11-04"


def test_an_existing_file_is_replaced_only_with_force(lab, tmp_path):
    path = tmp_path / "car.csv"
    path.write_text("keep me")
    refused = _query(lab, "--output", str(path))
    assert refused.exit_code == cli.EXIT_USAGE
    assert f"{path} already exists: add --force to replace it" in refused.stderr
    assert path.read_text() == "keep me"
    assert _query(lab, "--output", str(path), "--force").exit_code == 0
    assert path.read_text(encoding="utf-8").startswith("timepoint,collection_date")


def test_a_suffix_that_names_no_format_is_a_usage_error(lab, tmp_path):
    path = tmp_path / "car.xls"
    result = _query(lab, "--output", str(path))
    assert result.exit_code == cli.EXIT_USAGE
    assert "cannot tell the format from the suffix '.xls'" in result.stderr
    assert not path.exists()


def test_xlsx_on_screen_asks_for_a_file(lab):
    result = _query(lab, "--format", "xlsx")
    assert result.exit_code == cli.EXIT_USAGE
    assert "xlsx and parquet need --output" in result.stderr


def test_screen_json_and_table_show_the_same_rows(lab):
    shown = _query(lab, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert [r["timepoint"] for r in json.loads(shown.output)] == ["D1", "D4", "D10"]
    table = _query(lab)
    assert table.exit_code == 0 and "3 row(s)" in table.output
