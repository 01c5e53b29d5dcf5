"""A small generated CRS cohort through the pipeline: its plates are taken, every patient gets the
CRS grades the truth says, and cytokines at baseline and on each early day.

The cohort is written and processed once for the module, without Prefect: each file through
`Processor.process` (manifest first), then every patient recomputed.
"""

from __future__ import annotations

import math

import pytest

from pipelines.demo.cba_files import ANALYTES
from pipelines.demo.crs_cohort import EARLY_DAYS, TIMEPOINTS, generate_cohort
from pipelines.demo.generate import write_crs_cohort
from pipelines.derived.recompute import recompute_patients
from pipelines.home import LabHome
from pipelines.ingest import Processor
from pipelines.warehouse import connect

pytestmark = pytest.mark.slow
PATIENTS = 10


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = LabHome(tmp_path_factory.mktemp("cohort-lab")).ensure()
    cohort, files = write_crs_cohort(home.inbox, PATIENTS, 7, lambda path: None)
    processor = Processor(home)
    outcomes = [processor.process(path) for path in files]
    processor.export_ledger()
    recomputed = recompute_patients(home, None, processor.validator)
    return home, cohort, outcomes, recomputed


def test_every_file_is_taken(lab):
    _, _, outcomes, recomputed = lab
    assert [(o.name, o.status) for o in outcomes if o.status != "ingested"] == []
    assert recomputed.failures == []


def test_every_patient_is_graded_as_the_truth_says(lab):
    home, cohort, _, _ = lab
    rows = connect(home.warehouse).execute(
        "SELECT patient_id, max(crs_grade), min(study_day) FILTER (WHERE crs_grade >= 3), "
        "count(*) FROM crs_grades GROUP BY patient_id ORDER BY patient_id"
    ).fetchall()  # fmt: skip
    assert rows == [(p.patient_id, p.max_grade, p.severe_onset_day, 15) for p in cohort.patients]
    assert any(p.severe for p in cohort.patients) and not all(p.severe for p in cohort.patients)


def test_cytokines_at_baseline_early_days_and_follow_up(lab):
    home, cohort, _, _ = lab
    found = set(
        connect(home.warehouse)
        .execute("SELECT DISTINCT patient_id, timepoint, analyte FROM cytokines")
        .fetchall()
    )
    expected = {(p.patient_id, t, a) for p in cohort.patients for t in TIMEPOINTS for a in ANALYTES}
    assert found == expected


def test_exact_early_fold_changes_recover_the_truth(lab):
    """Where neither end is censored, the measured fold change over baseline is the true one
    within the bead array's error (two 5PL read-backs, each within 10 %)."""
    home, cohort, _, _ = lab
    truth = {p.patient_id: p for p in cohort.patients}
    rows = connect(home.warehouse).execute(
        "SELECT patient_id, timepoint, analyte, fold_change FROM cytokine_fold_changes "
        f"WHERE fold_change_bound = 'exact' AND timepoint IN {tuple(EARLY_DAYS)}"
    ).fetchall()  # fmt: skip
    assert len(rows) > 0.8 * PATIENTS * len(EARLY_DAYS) * len(ANALYTES)
    for patient, timepoint, analyte, fold in rows:
        true_fold = math.exp(truth[patient].log_fold[timepoint][analyte])
        assert fold == pytest.approx(true_fold, rel=0.25), (patient, timepoint, analyte)


def test_generated_plates_hold_five_patients(lab):
    home, _, _, _ = lab
    per_plate = connect(home.warehouse).execute(
        "SELECT source_sha256, count(DISTINCT patient_id) FROM cytokines GROUP BY source_sha256"
    ).fetchall()  # fmt: skip
    assert sorted(n for _, n in per_plate) == [5, 5]
    assert generate_cohort(PATIENTS).truth() == lab[1].truth()
