"""The DuckDB views analysts query: only the tables are listed, and timepoints sort by study day."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.warehouse import conform, connect, write_source
from validation.schemas import CAR_COPIES, TABLES
from validation.timepoints import NOMINAL_STUDY_DAY, TIMEPOINTS

VISITS = ["D28", "D4", "M3", "D10", "BL", "D1", "D21", "D14"]


@pytest.fixture
def warehouse(tmp_path):
    """One qPCR source with a sample at each of `VISITS`, written as the pipeline writes it."""
    frame = pd.DataFrame(
        {
            "patient_id": "P001",
            "timepoint": VISITS,
            "study_day": [28, 4, 90, 10, -7, 1, 21, 14],
            "run_id": "plate1",
            "sample_name": [f"S-{t}" for t in VISITS],
            "target": "CAR",
            "n_replicates": 3,
            "result": "quantified",
            "source_sha256": "a" * 64,
            "pipeline_version": "test",
            "processed_at": pd.Timestamp("2026-12-01T10:00:00Z"),
        }
    )
    write_source(tmp_path, "a" * 64, {"car_copies": conform(frame, CAR_COPIES)})
    return tmp_path


def test_show_tables_lists_the_tables_and_no_internal_stand_in(warehouse):
    listed = [row[0] for row in connect(warehouse).execute("show tables").fetchall()]
    assert sorted(listed) == sorted(TABLES)


def test_a_table_without_files_is_an_empty_view_with_its_columns(warehouse):
    con = connect(warehouse)
    described = con.execute("describe qpcr_runs").fetchdf()
    assert list(described["column_name"]) == TABLES["qpcr_runs"].column_names
    assert con.execute("select count(*) from qpcr_runs").fetchone() == (0,)


def test_timepoints_order_by_study_day_in_the_query_views(warehouse):
    con = connect(warehouse, timepoints_as_enum=True)
    ordered = con.execute("select timepoint from car_copies order by timepoint").fetchall()
    assert [t for (t,) in ordered] == ["BL", "D1", "D4", "D10", "D14", "D21", "D28", "M3"]
    picked = con.execute("select sample_name from car_copies where timepoint = 'D4'").fetchall()
    assert picked == [("S-D4",)]


def test_the_pipelines_own_readers_keep_timepoints_as_text(warehouse):
    con = connect(warehouse)
    ordered = con.execute("select timepoint from car_copies order by timepoint").fetchall()
    assert [t for (t,) in ordered][:3] == ["BL", "D1", "D10"]
    assert con.execute("select timepoint from car_copies").fetchdf()["timepoint"].dtype == object


def test_the_schedule_runs_from_screening_to_two_years():
    order = list(TIMEPOINTS)
    assert order[:5] == ["SCREEN", "BL", "PRODUCT", "D0", "D1"]
    assert order[-8:] == ["D28", "M2", "M3", "M6", "M9", "M12", "M18", "M24"]
    days = [NOMINAL_STUDY_DAY[t] for t in order if NOMINAL_STUDY_DAY[t] is not None]
    assert days == sorted(days) and len(set(days)) == len(days)


def test_the_query_enum_is_the_schedule(warehouse):
    con = connect(warehouse, timepoints_as_enum=True)
    [(labels,)] = con.execute("select enum_range(null::timepoint_label)").fetchall()
    assert labels == list(TIMEPOINTS)
