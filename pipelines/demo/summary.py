"""The per-patient summary `cartflow demo` prints once the demo trial is processed."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.demo.crs_cohort import CrsCohort
from pipelines.demo.generate import DemoTrial
from pipelines.home import LabHome
from pipelines.warehouse import connect
from validation.names import shown

_KINETICS_SQL = """
WITH c AS (
    SELECT patient_id, timepoint, study_day, result,
           CASE WHEN result = 'quantified' THEN copies_per_ug END AS quantified_per_ug
    FROM car_copies WHERE target = 'CAR'
)
SELECT
    patient_id,
    count(*) AS samples,
    max(quantified_per_ug) AS peak_copies_per_ug,
    arg_max(timepoint, quantified_per_ug) AS peak_timepoint,
    arg_max(timepoint, CASE WHEN result = 'quantified' THEN study_day END) AS last_quantifiable,
    max(quantified_per_ug) FILTER (WHERE timepoint = 'M3') AS m3_copies_per_ug
FROM c GROUP BY patient_id ORDER BY patient_id
"""


def _cohort_grades_line(con, cohort: CrsCohort) -> str:
    """What `crs_grades` recovered of the cohort: graded patients, and those with grade >= 3."""
    ids = [p.patient_id for p in cohort.patients]
    graded, severe = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE worst >= 3) FROM (SELECT patient_id, "
        "max(crs_grade) AS worst FROM crs_grades WHERE list_contains(?, patient_id) "
        "GROUP BY patient_id)",
        [ids],
    ).fetchone()
    return f"  graded in crs_grades: {graded} of them, {severe} with ASTCT grade >= 3"


def print_summary(console: Console, home: LabHome, demo: DemoTrial) -> None:
    """CAR kinetics per patient as recovered from the warehouse, beside the generator's truth."""
    con = connect(home.warehouse)
    rows = con.execute(_KINETICS_SQL).fetchall()
    truth = demo.truth["car_copies_per_ug"]
    table = Table(title="CAR transgene in blood (qPCR, copies/µg gDNA)")
    for column in ("patient", "samples", "peak (measured)", "peak (true)", "at",
                   "last above LOQ", "M3"):  # fmt: skip
        table.add_column(column, justify="right" if column != "patient" else "left")
    for patient, samples, peak, at, last, m3 in rows:
        true_peak = max(truth[patient].values())
        table.add_row(
            patient,
            str(samples),
            f"{peak:,.0f}" if peak is not None else "—",
            f"{true_peak:,.0f}",
            str(at or "—"),
            str(last or "—"),
            f"{m3:,.0f}" if m3 is not None else "—",
        )
    console.print(table)
    alerts = con.execute(
        "SELECT patient_id, string_agg(DISTINCT timepoint, ', ') FROM crs_signals WHERE alert "
        "GROUP BY patient_id ORDER BY patient_id"
    ).fetchall()
    for patient, timepoints in alerts:
        console.print(
            f"CRS early-warning alert (research use; not a clinical decision): {patient} at {timepoints}"
        )
    kinetics = con.execute(
        "SELECT patient_id, tlast_day, persistence_status FROM car_kinetics ORDER BY patient_id"
    ).fetchall()
    lost = [f"{p} (last quantifiable day {t})" for p, t, status in kinetics if status == "lost"]
    if lost:
        console.print(f"CAR persistence lost: {', '.join(lost)}")
    quarantined = con.execute(
        "SELECT q.original_name, q.reason, r.original_name FROM ingest_log q "
        "LEFT JOIN ingest_log r ON r.source_sha256 = q.resolved_by "
        "WHERE q.status = 'quarantined' ORDER BY q.original_name"
    ).fetchall()
    for name, reason, repeat in quarantined:
        expected = (
            " (expected: the demo's failing plate)" if name in demo.expected_quarantined else ""
        )
        console.print(f"quarantined{expected}: {escape(shown(name))}\n  {escape(shown(reason))}")
        if repeat:
            console.print(f"  resolved by the repeat {escape(shown(repeat))}, which passed QC")
    if demo.cohort is not None:
        console.print(demo.cohort.summary_line())
        console.print(_cohort_grades_line(con, demo.cohort))
    console.print(
        f"reports: {home.reports} (cohort.html, qc.html, one page per patient, per flow tube and per qPCR run)\n"
        f"tables: {home.warehouse}\n"
        'query them, e.g.: cartflow query "select patient_id, timepoint, copies_per_ug '
        'from car_copies order by patient_id, study_day"'
    )
