"""End to end under Prefect's test harness: the demo trial through the flows, the warehouse and
the command line, idempotency, supersession and bad input."""

from __future__ import annotations

import io
import json
import stat
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.generate import FAILING_PLATE, TRUTH_FILE, write_demo_trial
from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import B_CELLS_PER_UL, CAR_PCT_OF_CD3, PRODUCT_CAR_PCT_OF_CD3, Sample
from pipelines.home import LabHome
from pipelines.ledger import Ledger
from pipelines.runtime.run_records import outcomes_of
from pipelines.warehouse import connect

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def demo_lab(harness, tmp_path_factory):
    """The demo trial written and swept once; shared by the read-only assertions below."""
    from pipelines import flows

    home = LabHome(tmp_path_factory.mktemp("demo") / "lab").ensure()
    demo = write_demo_trial(home.inbox, seed=7)
    outcomes = outcomes_of(flows.process_inbox(home=str(home.root), return_state=True))
    return home, demo, outcomes


def _table_counts(home: LabHome) -> dict[str, int]:
    con = connect(home.warehouse)
    return {
        t: con.execute(f"select count(*) from {t}").fetchone()[0]
        for t in ("qpcr_wells", "qpcr_runs", "car_copies")
    }


def test_demo_sweep_takes_every_file_but_the_failing_plate(demo_lab):
    home, demo, outcomes = demo_lab
    status = {o.name: o.status for o in outcomes}
    assert status.pop(FAILING_PLATE) == "quarantined"
    assert set(status.values()) == {"ingested"}
    assert len(status) == len(demo.files) - 1
    assert demo.unexpected_outcomes(outcomes) == []
    reason = (home.quarantine / f"{FAILING_PLATE}.reason.txt").read_text()
    assert "CAR: amplification efficiency 74." in reason and "outside 90–110 %" in reason
    assert reason.rstrip().endswith("(this run's QC figures are kept in qpcr_runs)")
    assert not list(home.inbox.iterdir())
    assert sorted(p.name for p in home.processed.iterdir()) == sorted(status)


def test_raw_store_keeps_every_file_read_only(demo_lab):
    home, demo, _ = demo_lab
    stored = [p for p in home.raw.rglob("*") if p.is_file()]
    assert len(stored) == len(demo.files)
    assert all(not (p.stat().st_mode & stat.S_IWUSR) for p in stored)
    # the raw store's bytes are its own: no processed or quarantined file shares them, so a
    # technician who edits one (the failing plate, to fix it) cannot change the raw store
    inodes = {p.stat().st_ino for p in stored}
    assert all(p.stat().st_nlink == 1 for p in stored)
    assert not {p.stat().st_ino for p in home.processed.iterdir()} & inodes
    assert (home.quarantine / FAILING_PLATE).stat().st_ino not in inodes


def test_copy_numbers_recover_the_truth(demo_lab):
    home, _, _ = demo_lab
    truth = json.loads((home.root / TRUTH_FILE).read_text())["car_copies_per_ug"]
    rows = (
        connect(home.warehouse)
        .execute(
            "select patient_id, timepoint, copies_per_ug, result, study_day from car_copies "
            "where target = 'CAR'"
        )
        .fetchall()
    )
    assert len(rows) == 4 * 10
    checked = 0
    for patient, timepoint, measured, result, _ in rows:
        expected = truth[patient][timepoint]
        if expected == 0:  # no template: not detected, with no copy number (never 0)
            assert (measured, result) == (None, "not_detected"), (patient, timepoint)
        else:
            assert result in ("quantified", "below_loq"), (patient, timepoint, result)
            assert measured == pytest.approx(expected, rel=0.15), (patient, timepoint)
            checked += result == "quantified"
    assert checked >= 30
    study_days = {(p, t): d for p, t, _, _, d in rows}
    assert study_days[("P001", "BL")] == -7 and study_days[("P003", "M3")] == 90


def test_cytokines_recover_the_truth_and_censor_outside_the_range(demo_lab):
    home, _, _ = demo_lab
    truth = json.loads((home.root / TRUTH_FILE).read_text())["cytokines_pg_ml"]
    rows = (
        connect(home.warehouse)
        .execute(
            "select c.sample_name, c.analyte, c.concentration_pg_ml, c.censoring, "
            "c.censor_limit_pg_ml from cytokines c"
        )
        .fetchall()
    )
    assert len(rows) == 40 * 10
    quantified = 0
    for sample, analyte, measured, censoring, limit in rows:
        expected = truth[sample][analyte]
        if censoring == "none":
            assert measured == pytest.approx(expected, rel=0.10), (sample, analyte)
            quantified += 1
        elif censoring == "below_lloq":
            assert measured is None and expected < limit * 1.1, (sample, analyte)
        else:
            assert censoring == "above_uloq" and measured is None and expected > limit * 0.9
    assert quantified > 200


def test_flow_populations_recover_the_truth(demo_lab):
    home, _, _ = demo_lab
    con = connect(home.warehouse)
    car = con.execute(
        "select patient_id, timepoint, pct_parent from flow_populations "
        "where population = 'CAR+ T cells'"
    ).fetchall()
    assert len(car) == 4 * 10 + 4  # every blood draw and every product
    for patient, timepoint, pct in car:
        expected = (
            PRODUCT_CAR_PCT_OF_CD3[patient] if timepoint == "PRODUCT"
            else CAR_PCT_OF_CD3[patient][timepoint]
        )  # fmt: skip
        assert pct == pytest.approx(expected, abs=1.0), (patient, timepoint)
    b_cells = con.execute(
        "select patient_id, timepoint, cells_per_ul from flow_populations "
        "where population = 'CD19+ B cells'"
    ).fetchall()
    assert len(b_cells) == 4 * 10
    for patient, timepoint, per_ul in b_cells:
        assert per_ul == pytest.approx(B_CELLS_PER_UL[patient][timepoint], rel=0.05, abs=0.1)


def test_validation_results_and_ledger_export(demo_lab):
    home, _, _ = demo_lab
    con = connect(home.warehouse)
    failed = con.execute(
        "select table_name, expectation from validation_results where not success"
    ).fetchall()
    assert failed == []  # the failed plate's QC figures are valid data, kept with verdict FAIL
    verdicts = con.execute(
        "select r.target, r.qc_verdict from qpcr_runs r join ingest_log l using (source_sha256) "
        "where l.original_name = ? order by r.target", [FAILING_PLATE],
    ).fetchall()  # fmt: skip
    assert verdicts == [("CAR", "FAIL"), ("RNaseP", "PASS")]
    log = con.execute(
        "select f.status, r.original_name from ingest_log f "
        "join ingest_log r on r.source_sha256 = f.resolved_by where f.original_name = ?",
        [FAILING_PLATE],
    ).fetchall()
    assert log == [("quarantined", "2026-04-22_CAR-qPCR_plate4_P003-P004_repeat.csv")]
    assert (home.gx / "docs" / "index.html").exists()


def _plate_file(path: Path, names: list[str], shift: float = 0.0, run_id: str = "T-1") -> Path:
    sample = Sample("x", "P001", "D14", datetime(2026, 1, 1).date(), 200.0)
    curves = {t: type(c)(c.slope, c.intercept + shift) for t, c in GOOD_CURVES.items()}
    plate = build_plate(
        instrument_format="quantstudio-text", run_id=run_id, instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[(n, sample) for n in names],
        curves=curves, rng=np.random.default_rng(0), cq_noise_sd=0.0,
    )  # fmt: skip
    write_quantstudio_text(path, plate)
    return path


@pytest.fixture()
def lab(harness, tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    return home


def _cli(home: LabHome, *args: str):
    return CliRunner().invoke(app, [*args, "--home", str(home.root)])


def test_same_file_twice_and_a_corrected_reexport(lab, tmp_path):
    first = _plate_file(tmp_path / "plate.txt", ["P001_D7", "P001_D14"])
    assert _cli(lab, "ingest", str(first)).exit_code == 0
    counts = _table_counts(lab)
    result = _cli(lab, "ingest", str(first))
    assert result.exit_code == 0 and "already had" in result.output
    assert _table_counts(lab) == counts

    corrected = _plate_file(tmp_path / "plate_corrected.txt", ["P001_D7", "P001_D14"], shift=0.4)
    result = _cli(lab, "ingest", str(corrected))
    assert result.exit_code == 0, result.output
    assert "replaces plate.txt" in result.output
    assert _table_counts(lab) == counts
    statuses = {r.original_name: r.status for r in Ledger(lab.ledger_path).records()}
    assert statuses == {"plate.txt": "superseded", "plate_corrected.txt": "ingested"}
    sources = (
        connect(lab.warehouse).execute("select distinct source_sha256 from car_copies").fetchall()
    )
    assert len(sources) == 1


def _bad_inputs(folder: Path) -> dict[str, str]:
    """File name → a phrase its quarantine reason must contain."""
    good = _plate_file(folder / "good.txt", ["P001_D7"])
    text = good.read_text()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "random.bin").write_bytes(np.random.default_rng(1).bytes(4096))
    (folder / "truncated.txt").write_text(text[: len(text) // 3])
    (folder / "other.csv").write_text("date,temperature,humidity\n2026-01-01,21.5,40\n")
    _plate_file(folder / "unknown_samples.txt", ["Mystery sample 1"], run_id="T-2")
    (folder / "unsafe_manifest.csv").write_text("accession,patient_id,timepoint\nA1,../../etc,D7\n")
    (folder / "duplicate_manifest.csv").write_text(
        "accession,patient_id,timepoint\nA1,P001,D7\nA1,P002,D7\n"
    )
    good.unlink()
    return {
        "empty.txt": "empty",
        "random.bin": "not a recognised export",
        "truncated.txt": "truncated.txt",
        "other.csv": "not a recognised export",
        "unknown_samples.txt": "is not in the manifest",
        "unsafe_manifest.csv": "unsafe patient id '../../etc'",
        "duplicate_manifest.csv": "more than once: A1",
    }


def test_bad_input_is_quarantined_with_a_reason_and_nothing_written(lab, tmp_path):
    folder = tmp_path / "drops"
    folder.mkdir()
    expected = _bad_inputs(folder)
    for name in expected:
        (folder / name).rename(lab.inbox / name)
    result = _cli(lab, "run")
    assert result.exit_code == 3, result.output
    for name, phrase in expected.items():
        reason = (lab.quarantine / f"{name}.reason.txt").read_text()
        assert phrase in reason, (name, reason)
        assert f"quarantined {name}" in " ".join(result.output.split())
    assert _table_counts(lab) == {"qpcr_wells": 0, "qpcr_runs": 0, "car_copies": 0}
    assert Ledger(lab.ledger_path).manifest_rows() == []
    assert "Traceback" not in result.output


def test_query_and_status_commands(demo_lab):
    home, _, _ = demo_lab
    result = CliRunner().invoke(
        app,
        [
            "query",
            "select count(*) as n from car_copies",
            "--home",
            str(home.root),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0 and json.loads(result.output) == [{"n": 40}]
    bad = CliRunner().invoke(app, ["query", "select * from nowhere", "--home", str(home.root)])
    assert bad.exit_code == 2
    status = CliRunner().invoke(app, ["status", "--home", str(home.root)])
    assert status.exit_code == 0 and FAILING_PLATE in " ".join(status.output.split())


def test_demo_summary_says_the_failed_plate_was_resolved_by_its_repeat(demo_lab):
    from rich.console import Console

    from pipelines.demo.summary import print_summary

    home, demo, _ = demo_lab
    printed = io.StringIO()
    print_summary(Console(file=printed, width=400), home, demo)
    lines = printed.getvalue().splitlines()
    [at] = [i for i, line in enumerate(lines) if line.startswith("quarantined")]
    assert FAILING_PLATE in lines[at] and "expected" in lines[at]
    [resolved] = [line.strip() for line in lines[at:] if "resolved by" in line]
    assert resolved.startswith("resolved by the repeat ") and resolved.endswith("passed QC")
    assert "_repeat" in resolved


def test_data_docs_index_lists_the_files_and_the_derived_tables_of_the_sweep(demo_lab):
    home, _, _ = demo_lab
    index = (home.gx / "docs" / "index.html").read_text(encoding="utf-8")
    assert "(qpcr_runs)" in index and "(flow_populations)" in index
    assert "derived (car_kinetics)" in index
