"""The derived tables on the demo trial, against the generator's truth (`pipelines/demo/trial.py`).

The demo lab is generated and processed once for the module, without Prefect: each file goes
through `Processor.process` (manifest first, as write_demo_trial lists it), then every patient is
recomputed.
"""

from __future__ import annotations

import math
import re

import pytest

from pipelines.demo import trial
from pipelines.demo.flow_files import EVENTS_PER_CELL_PER_UL, TCELL_TUBE, tcell_counts
from pipelines.demo.generate import write_demo_trial
from pipelines.derived.recompute import recompute_patients
from pipelines.home import LabHome
from pipelines.ingest import Processor
from pipelines.reports import PATIENTS_PARALLEL_FROM
from pipelines.warehouse import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = LabHome(tmp_path_factory.mktemp("demo-lab")).ensure()
    demo = write_demo_trial(home.inbox)
    processor = Processor(home)
    outcomes = [processor.process(path) for path in demo.files]
    assert not demo.unexpected_outcomes(outcomes)
    processor.export_ledger()
    outcome = recompute_patients(home, None, processor.validator)
    assert outcome.failures == []
    return home, processor, outcome


def _by_hand_auc_0_28(points: list[tuple[int, float]]) -> float:
    """Linear trapezoid while rising, log trapezoid while falling, written out from the truth."""
    auc = 0.0
    for (t1, c1), (t2, c2) in zip(points, points[1:], strict=False):
        if t2 > 28:
            break
        if c2 >= c1:
            auc += (c1 + c2) / 2 * (t2 - t1)
        else:
            auc += (c1 - c2) * (t2 - t1) / math.log(c1 / c2)
    return auc


def _truth(patient: str) -> dict[str, float]:
    copies = trial.CAR_COPIES_PER_UG[patient]
    post = [(trial.STUDY_DAY[t], v) for t, v in copies.items() if trial.STUDY_DAY[t] > 0 and v > 0]
    peak_day, peak = max(post, key=lambda p: p[1])
    return {
        "cmax": peak, "tmax": peak_day, "tlast": max(d for d, _ in post),
        "auc": _by_hand_auc_0_28([(0, 0.0), *post]),
    }  # fmt: skip


@pytest.mark.parametrize("patient", trial.PATIENTS)
def test_kinetics_match_the_truth(lab, patient):
    home, _, _ = lab
    row = connect(home.warehouse).execute(
        "SELECT * FROM car_kinetics WHERE patient_id = ?", [patient]
    ).fetchdf().iloc[0]  # fmt: skip
    truth = _truth(patient)
    assert row["cmax_copies_per_ug"] == pytest.approx(truth["cmax"], rel=0.10)
    assert row["tmax_day"] == truth["tmax"]
    assert row["auc_0_28"] == pytest.approx(truth["auc"], rel=0.10)
    assert row["tlast_day"] == truth["tlast"]


@pytest.mark.parametrize("patient", trial.PATIENTS)
def test_car_cells_per_ul_match_the_flow_truth(lab, patient):
    home, _, _ = lab
    row = connect(home.warehouse).execute(
        "SELECT * FROM car_kinetics WHERE patient_id = ?", [patient]
    ).fetchdf().iloc[0]  # fmt: skip
    per_ul = {
        t: tcell_counts(pct, trial.CD4_CD8_RATIO[patient], TCELL_TUBE)["car"]
        / EVENTS_PER_CELL_PER_UL
        for t, pct in trial.CAR_PCT_OF_CD3[patient].items()
    }
    assert row["cmax_car_cells_per_ul"] == pytest.approx(max(per_ul.values()), rel=0.10)


def test_the_patient_who_loses_persistence_has_the_earliest_tlast(lab):
    home, _, _ = lab
    tlast = dict(
        connect(home.warehouse).execute("SELECT patient_id, tlast_day FROM car_kinetics").fetchall()
    )
    lost = trial.LOSES_PERSISTENCE_PATIENT
    assert all(tlast[lost] < day for p, day in tlast.items() if p != lost)
    status = (
        connect(home.warehouse)
        .execute("SELECT patient_id FROM car_kinetics WHERE persistence_status = 'lost'")
        .fetchall()
    )
    assert status == [(lost,)]


def test_only_the_severe_crs_patient_raises_the_fold_change_alert(lab):
    home, _, _ = lab
    con = connect(home.warehouse)
    alerted = con.execute(
        "SELECT DISTINCT patient_id FROM crs_signals WHERE alert AND rule_kind = 'fold_change'"
    ).fetchall()
    assert alerted == [(trial.SEVERE_CRS_PATIENT,)]
    notices = con.execute("SELECT DISTINCT notice FROM crs_signals").fetchall()
    assert notices == [("research use; not a clinical decision",)]


@pytest.mark.parametrize("patient", trial.PATIENTS)
def test_aplasia_onset_and_recovery_match_the_truth(lab, patient):
    home, _, _ = lab
    b_cells = trial.B_CELLS_PER_UL[patient]
    threshold = trial.B_CELL_APLASIA_THRESHOLD_PER_UL
    order = sorted(b_cells, key=trial.STUDY_DAY.get)
    onset = next(t for t in order if trial.STUDY_DAY[t] > 0 and b_cells[t] < threshold)
    after = [t for t in order if trial.STUDY_DAY[t] > trial.STUDY_DAY[onset]]
    recovery = next((t for t in after if b_cells[t] >= threshold), None)
    row = connect(home.warehouse).execute(
        "SELECT * FROM b_cell_aplasia WHERE patient_id = ? AND timepoint = 'BL'", [patient]
    ).fetchdf().iloc[0]  # fmt: skip
    assert row["aplasia_onset_timepoint"] == onset
    assert row["aplasia_onset_day"] == trial.STUDY_DAY[onset]
    if recovery is None:
        assert row["recovery_timepoint"] is None
    else:
        assert row["recovery_timepoint"] == recovery
        infusion = trial.INFUSION_DATE[patient]
        expected = infusion.toordinal() + trial.STUDY_DAY[recovery]
        assert row["recovery_date"].toordinal() == expected


def test_every_derived_row_traces_to_curated_sources(lab):
    home, _, _ = lab
    con = connect(home.warehouse)
    curated = {h for (h,) in con.execute(
        "SELECT source_sha256 FROM car_copies UNION SELECT source_sha256 FROM flow_populations "
        "UNION SELECT source_sha256 FROM cytokines"
    ).fetchall()}  # fmt: skip
    for table in ("car_kinetics", "b_cell_aplasia", "cytokine_fold_changes", "crs_signals"):
        derived = con.execute(f"SELECT derived_from FROM {table}").fetchall()
        assert derived, table
        assert all(set(d.split(",")) <= curated for (d,) in derived), table


def test_recompute_replaces_a_patients_files_in_place(lab):
    home, processor, first = lab
    again = recompute_patients(home, [trial.SEVERE_CRS_PATIENT], processor.validator)
    assert again.failures == []
    assert again.rows["car_kinetics"] == 1
    folder = home.warehouse / "crs_signals" / f"patient_id={trial.SEVERE_CRS_PATIENT}"
    assert [p.name for p in folder.iterdir()] == ["derived.parquet"]
    total = connect(home.warehouse).execute("SELECT count(*) FROM crs_signals").fetchone()[0]
    assert total == first.rows["crs_signals"]


def test_qc_trends_follow_the_runs_and_reports_are_written(lab):
    home, _, outcome = lab
    con = connect(home.warehouse)
    controls = {c for (c,) in con.execute("SELECT DISTINCT control FROM qc_trends").fetchall()}
    assert {"qpcr:CAR:slope", "qpcr:CAR:efficiency_pct"} <= controls
    assert any(c.startswith("cba:") for c in controls)
    pages = {p.relative_to(home.reports).as_posix() for p in outcome.reports}
    run_pages = {p for p in pages if p.startswith("qpcr/")}
    assert pages - run_pages == {f"patient_{p}.html" for p in trial.PATIENTS} | {
        "cohort.html", "qc.html", "crs_model.html",
    }  # fmt: skip
    runs = con.execute("SELECT count(DISTINCT run_id) FROM qpcr_runs").fetchone()[0]
    assert len(run_pages) == runs > 0


def test_patient_pages_drawn_on_every_core_come_back_in_order_each_its_own(lab):
    """The demo's four patients reach PATIENTS_PARALLEL_FROM: their pages are shared out between
    processes, and still listed in the patients' order, each page about its patient."""
    home, _, outcome = lab
    assert len(trial.PATIENTS) >= PATIENTS_PARALLEL_FROM
    patient_pages = [p for p in outcome.reports if p.name.startswith("patient_")]
    assert [p.name for p in patient_pages] == [f"patient_{p}.html" for p in sorted(trial.PATIENTS)]
    for page, patient in zip(patient_pages, sorted(trial.PATIENTS), strict=True):
        title = re.search(r"<title>([^<]*)</title>", page.read_text(encoding="utf-8")).group(1)
        assert patient in title
        assert not any(other in title for other in trial.PATIENTS if other != patient)
