"""A plate that fails QC and its repeat, through the real flows: the QC reason and remedy, the
failed run's figures kept, the repeat resolving it, and one reportable result per sample."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.qpcr_plates import FAILING_CURVES
from pipelines.home import LabHome
from pipelines.ingest import INGESTED, QUARANTINED, sha256_of
from pipelines.ledger import Ledger
from pipelines.warehouse import connect
from tests.plates import qpcr_plate

pytestmark = pytest.mark.flow

FAILED_REASON = (
    "plate_fail.txt: plate failed QC, no result reported for P701_D14, P701_D7: CAR: "
    "amplification efficiency 74.2 % outside 90–110 % (slope -4.15 over 6 standard levels). "
    "Re-run the assay on a new plate and drop its export into the inbox (this run's QC figures "
    "are kept in qpcr_runs)"
)


@pytest.fixture(scope="module")
def lab(harness, tmp_path_factory) -> LabHome:
    home = LabHome(tmp_path_factory.mktemp("failed-runs") / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    return home


def _sweep(lab: LabHome, path: Path):
    from pipelines import flows
    from pipelines.runtime.run_records import outcomes_of

    [outcome] = outcomes_of(flows.process_inbox(home=str(lab.root), return_state=True))
    assert outcome.name == path.name
    return outcome


def _status(lab: LabHome) -> str:
    result = CliRunner().invoke(app, ["status", "--home", str(lab.root)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def runs(lab: LabHome) -> dict[str, str]:
    """A first passing plate (half the DNA loaded: half the copies), a plate that fails QC,
    then its passing repeat, each swept alone; their SHA-256 by role."""
    first = qpcr_plate(
        lab.inbox / "plate_first.txt", "P701", "RUN-1",
        run_started=datetime(2026, 5, 1, 9), dna_loaded_ng=100.0,
    )  # fmt: skip
    shas = {"first": sha256_of(first)}
    assert _sweep(lab, first).status == INGESTED
    failed = qpcr_plate(
        lab.inbox / "plate_fail.txt", "P701", "RUN-2", FAILING_CURVES,
        run_started=datetime(2026, 5, 8, 9),
    )  # fmt: skip
    shas["failed"] = sha256_of(failed)
    outcome = _sweep(lab, failed)
    assert (outcome.status, outcome.reason) == (QUARANTINED, FAILED_REASON)
    assert outcome.rows == {"qpcr_wells": 60, "qpcr_runs": 2}
    shas["status_after_failure"] = _status(lab)
    repeat = qpcr_plate(
        lab.inbox / "plate_repeat.txt", "P701", "RUN-3", run_started=datetime(2026, 5, 15, 9)
    )
    shas["repeat"] = sha256_of(repeat)
    assert _sweep(lab, repeat).status == INGESTED
    return shas


def test_the_failed_plate_is_quarantined_with_its_qc_reason_and_the_remedy(lab, runs):
    assert (lab.quarantine / "plate_fail.txt.reason.txt").read_text() == FAILED_REASON + "\n"
    assert "quarantined plate_fail.txt (qpcr, quantstudio-text;" in runs["status_after_failure"]
    assert FAILED_REASON in runs["status_after_failure"]


def test_the_cli_advises_re_running_the_assay_for_a_failed_plate(harness, tmp_path):
    plate = qpcr_plate(tmp_path / "plate_again_fail.txt", "P702", "RUN-9", FAILING_CURVES)
    home = tmp_path / "lab"
    result = CliRunner().invoke(app, ["ingest", str(plate), "--home", str(home)])
    output = " ".join(result.output.split())
    assert result.exit_code == 3, result.output
    assert "quarantined plate_again_fail.txt: plate failed QC" in output
    assert (
        "→ the file is right about a run that failed QC: re-run the assay on a new plate" in output
    )
    assert "fix it and drop it" not in output


def test_the_failed_run_keeps_its_qc_figures_and_no_copies(lab, runs):
    con = connect(lab.warehouse)
    failed = con.execute(
        "select target, qc_verdict, round(efficiency_pct, 1), round(slope, 2) from qpcr_runs "
        "where source_sha256 = ? order by target", [runs["failed"]],
    ).fetchall()  # fmt: skip
    assert failed == [("CAR", "FAIL", 74.2, -4.15), ("RNaseP", "PASS", 97.6, -3.38)]
    wells = con.execute(
        "select count(*) from qpcr_wells where source_sha256 = ?", [runs["failed"]]
    ).fetchone()
    assert wells == (60,)
    copies = con.execute(
        "select count(*) from car_copies where source_sha256 = ?", [runs["failed"]]
    ).fetchone()
    assert copies == (0,)


def test_qc_trends_include_the_failed_run_with_its_verdict(lab, runs):
    trend = (
        connect(lab.warehouse)
        .execute(
            "select regexp_extract(run_id, 'RUN-[0-9]'), run_verdict, round(value, 2) "
            "from qc_trends where control = 'qpcr:CAR:slope' order by run_index"
        )
        .fetchall()
    )
    assert trend == [("RUN-1", "PASS", -3.34), ("RUN-2", "FAIL", -4.15), ("RUN-3", "PASS", -3.34)]


def test_the_repeat_resolves_the_failed_run_in_the_ledger_status_and_log(lab, runs):
    record = Ledger(lab.ledger_path).get(runs["failed"])
    assert record is not None
    assert (record.status, record.resolved_by) == ("quarantined", runs["repeat"])
    first = Ledger(lab.ledger_path).get(runs["first"])
    assert first is not None and first.resolved_by is None
    status = _status(lab)
    assert "1 resolved" in status and "quarantined plate_fail" not in status
    assert "resolved plate_fail.txt (qpcr, quantstudio-text;" in status
    assert "resolved by plate_repeat.txt: a later run that passed QC" in status
    logged = (
        connect(lab.warehouse)
        .execute("select resolved_by from ingest_log where original_name = 'plate_fail.txt'")
        .fetchone()
    )
    assert logged == (runs["repeat"],)


def test_the_cohort_and_qc_pages_list_the_failed_run_as_resolved(lab, runs):
    for page in ("cohort.html", "qc.html"):
        text = (lab.root / "reports" / page).read_text()
        section = text.split("Failed runs resolved by a repeat", 1)[1]
        assert "plate_fail.txt" in section and "plate_repeat.txt" in section, page
    cohort = (lab.root / "reports" / "cohort.html").read_text()
    waiting = cohort.split("Quarantined files", 1)[1].split("Failed runs resolved", 1)[0]
    assert "plate_fail.txt" not in waiting


def test_one_reportable_result_per_sample_and_target_from_the_latest_passing_run(lab, runs):
    rows = (
        connect(lab.warehouse)
        .execute(
            "select sample_name, source_sha256, reportable, copies_per_ug from car_copies "
            "order by sample_name, reportable"
        )
        .fetchall()
    )
    first, repeat = runs["first"], runs["repeat"]
    assert [(name, sha, flag) for name, sha, flag, _ in rows] == [
        ("P701_D14", first, False), ("P701_D14", repeat, True),
        ("P701_D7", first, False), ("P701_D7", repeat, True),
    ]  # fmt: skip
    # the first plate held half the DNA the setting says: half the copies per ug
    assert rows[0][3] == pytest.approx(rows[1][3] / 2, rel=1e-3)  # Cq exported to 3 decimals


def test_kinetics_come_from_the_repeat_only(lab, runs):
    cmax, derived_from = (
        connect(lab.warehouse)
        .execute(
            "select cmax_copies_per_ug, derived_from from car_kinetics where patient_id = 'P701'"
        )
        .fetchone()
    )
    reportable = (
        connect(lab.warehouse)
        .execute(
            "select max(copies_per_ug) from car_copies where reportable and patient_id = 'P701'"
        )
        .fetchone()[0]
    )
    assert cmax == pytest.approx(reportable, rel=1e-9)
    assert runs["repeat"] in derived_from and runs["first"] not in derived_from


def test_the_patient_page_charts_reportable_results_and_lists_the_replaced_ones(lab, runs):
    page = (lab.root / "reports" / "patient_P701.html").read_text()
    replaced = page.split("Measured again: not reportable", 1)[1].split("</table>", 1)[0]
    assert replaced.count("RUN-1") == 2 and "RUN-3" not in replaced
