from __future__ import annotations

import dataclasses
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.ingest.claims import ClaimOwner
from pipelines.ledger import Ledger, Output
from pipelines.warehouse import SchemaMismatch, conform, connect, write_source
from validation.schemas import CAR_COPIES, QPCR_RUNS


def test_same_bytes_are_recorded_once_and_claimed_once(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    first = ledger.receive("a" * 64, 10, "plate.txt")
    again = ledger.receive("a" * 64, 10, "plate copy.txt")
    assert first == again and again.original_name == "plate.txt"
    assert ledger.claim("a" * 64, ClaimOwner.this_process())
    assert not ledger.claim("a" * 64, ClaimOwner.this_process())  # the first batch holds it


def test_ingested_run_is_superseded_by_corrected_export(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for sha in ("a" * 64, "b" * 64):
        ledger.receive(sha, 1, f"{sha[0]}.txt")
        ledger.claim(sha, ClaimOwner.this_process())
    common = dict(kind="qpcr", instrument_format="x", run_identity="plate-1",
                  pipeline_version="0", flow_run_id=None, warnings=None)  # fmt: skip
    a_output = Output("car_copies", "car_copies/a.parquet", 3, "f" * 64)
    assert ledger.mark_ingested("a" * 64, outputs=[a_output], **common) == (None, [])
    previous = ledger.find_ingested_run("qpcr", "plate-1", exclude="b" * 64)
    assert previous is not None and previous.sha256 == "a" * 64
    superseded, remove = ledger.mark_ingested("b" * 64, outputs=[], **common)
    assert superseded.sha256 == "a" * 64 and remove == ["car_copies/a.parquet"]
    statuses = {r.sha256[0]: (r.status, r.superseded_by) for r in ledger.records()}
    assert statuses == {"a": ("superseded", "b" * 64), "b": ("ingested", None)}
    assert not ledger.claim("a" * 64, ClaimOwner.this_process())  # superseded: never again


def test_a_claim_of_a_dead_process_is_taken_over_at_once(tmp_path):
    """No waiting for an expiry: the claim names a process that is gone."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.receive("a" * 64, 1, "plate.txt")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = dataclasses.replace(ClaimOwner.this_process(), pid=int(gone.stdout))
    assert ledger.claim("a" * 64, dead)
    assert [c.token for c in ledger.dead_claims(expiry_seconds=900)] == [dead.token]
    assert ledger.claim("a" * 64, ClaimOwner.this_process())


def test_a_claim_from_another_host_lives_until_its_heartbeat_expires(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.receive("a" * 64, 1, "plate.txt")
    elsewhere = dataclasses.replace(ClaimOwner.this_process(), host="another-lab-server")
    assert ledger.claim("a" * 64, elsewhere)
    assert not ledger.claim("a" * 64, ClaimOwner.this_process(), expiry_seconds=60)
    assert ledger.claim("a" * 64, ClaimOwner.this_process(), expiry_seconds=0)


def test_released_claims_return_a_refused_file_to_quarantined(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    owner = ClaimOwner.this_process()
    for sha in ("a" * 64, "b" * 64):
        ledger.receive(sha, 1, f"{sha[0]}.txt")
        assert ledger.claim(sha, owner)
    ledger.mark_quarantined("b" * 64, reason="bad", kind=None, instrument_format=None,
                            pipeline_version="0", flow_run_id=None)  # fmt: skip
    assert ledger.claim("b" * 64, owner)  # a retry
    assert sorted(ledger.release_claims(owner.token)) == ["a" * 64, "b" * 64]
    statuses = {r.sha256[0]: r.status for r in ledger.records()}
    assert statuses == {"a": "received", "b": "quarantined"}


def _copies_frame(patient_timepoints):
    rows = [{"patient_id": p, "timepoint": t, "study_day": 1, "run_id": "r", "sample_name": f"{p}{t}",
             "target": "CAR", "n_replicates": 3, "below_lod": False, "below_loq": False,
             "copies_per_ug": 10.0, "source_sha256": "s", "pipeline_version": "0",
             "processed_at": pd.Timestamp("2026-01-01", tz="UTC")}
            for p, t in patient_timepoints]  # fmt: skip
    return pd.DataFrame(rows)


def test_conform_refuses_unknown_columns_and_fills_missing_ones():
    frame = _copies_frame([("P001", "D7")])
    table = conform(frame, CAR_COPIES)
    assert table.schema == CAR_COPIES.schema
    assert table.column("cq_mean").null_count == 1
    with pytest.raises(SchemaMismatch, match="not in the schema"):
        conform(frame.assign(surprise=1), CAR_COPIES)


def test_rewrite_replaces_exactly_its_own_files(tmp_path):
    warehouse = tmp_path / "warehouse"
    table = conform(_copies_frame([("P001", "D7"), ("P002", "D7")]), CAR_COPIES)
    first = write_source(warehouse, "s1", {"car_copies": table})
    other = write_source(
        warehouse, "s2", {"car_copies": conform(_copies_frame([("P001", "D7")]), CAR_COPIES)}
    )
    assert {o.path for o in first} == {
        "car_copies/patient_id=P001/timepoint=D7/s1.parquet",
        "car_copies/patient_id=P002/timepoint=D7/s1.parquet",
    }
    # the same source again, now only for P001: the P002 file it wrote before goes away
    again = write_source(
        warehouse, "s1", {"car_copies": conform(_copies_frame([("P001", "D7")]), CAR_COPIES)}, first
    )
    assert [o.path for o in again] == ["car_copies/patient_id=P001/timepoint=D7/s1.parquet"]
    assert not (warehouse / "car_copies/patient_id=P002").exists()
    con = connect(warehouse)
    counts = con.execute(
        "select patient_id, count(*) from car_copies group by 1 order by 1"
    ).fetchall()
    assert counts == [("P001", 2)]
    assert other[0].rows == 1
    assert not list(warehouse.rglob(".*"))  # no temporary files left behind
    stored = pq.read_table(warehouse / again[0].path)
    assert "patient_id" not in stored.column_names  # partition values live in folder names


def test_views_exist_for_tables_without_data(tmp_path):
    con = connect(tmp_path)
    assert con.execute("select count(*) from qpcr_runs").fetchone() == (0,)
    names = [r[0] for r in con.execute("describe qpcr_runs").fetchall()]
    assert names == QPCR_RUNS.column_names


def test_numeric_looking_ids_stay_strings(tmp_path):
    table = conform(_copies_frame([("001", "D7")]), CAR_COPIES)
    write_source(tmp_path, "s", {"car_copies": table})
    assert connect(tmp_path).execute("select patient_id from car_copies").fetchone() == ("001",)
