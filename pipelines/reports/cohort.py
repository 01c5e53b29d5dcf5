"""The cohort overview: kinetics of every patient, NCA table, CRS alerts, CRS forecast vs outcome,
aplasia, quarantined files. The QC page is `pipelines.reports.qc`."""

from __future__ import annotations

from html import escape

import duckdb

from pipelines.reports import html, patient_figures
from pipelines.reports.crs_model import MODEL_PAGE, cohort_forecast_section
from pipelines.reports.figures import LeftOut
from pipelines.reports.patient_figures import Layer
from pipelines.reports.plots import COLOURS, svg

KINETICS_TITLE = "CAR transgene copies per ug gDNA, all patients"


def kinetics_overview(
    con: duckdb.DuckDBPyConnection, car_targets: list[str], left_out: LeftOut
) -> str:
    copies = con.execute(
        "SELECT patient_id, study_day, timepoint, copies_per_ug AS value FROM car_copies "
        "WHERE reportable AND NOT below_loq AND copies_per_ug > 0 AND isfinite(copies_per_ug) "
        "AND study_day >= 0 "
        "AND list_contains(?, target) "
        "ORDER BY patient_id, study_day", [car_targets],
    ).fetchdf()  # fmt: skip
    if copies.empty:
        return html.section("CAR-T kinetics", html.absent("No CAR qPCR results yet."))
    layers = [
        Layer(patient, group, colour=COLOURS[i % len(COLOURS)])
        for i, (patient, group) in enumerate(copies.groupby("patient_id", sort=True))
    ]
    chart = left_out.figure(
        KINETICS_TITLE,
        bool(layers),
        lambda: svg(patient_figures.time_series(
            KINETICS_TITLE, "copies / ug gDNA (log)", layers, y_axis=None
        ), KINETICS_TITLE),
        "no quantified sample after infusion yet",
    )  # fmt: skip
    nca = con.execute(
        "SELECT patient_id, cmax_copies_per_ug, tmax_day, auc_0_28, tlast_day, "
        "persistence_status, cmax_car_cells_per_ul, tmax_car_cells_day "
        "FROM car_kinetics ORDER BY patient_id"
    ).fetchdf()
    table = html.table(
        ["patient", "Cmax (copies/ug)", "Tmax (day)", "AUC0-28", "Tlast (day)", "persistence",
         "CAR+ cells/uL Cmax", "Tmax flow (day)"],
        nca.values.tolist(),
    ) if len(nca) else html.absent("Derived kinetics not computed yet.")  # fmt: skip
    return html.section("CAR-T kinetics", chart, table)


def _query_section(
    con: duckdb.DuckDBPyConnection, title: str, sql: str, headers: list[str], when_empty: str
) -> str:
    """A section holding the query's rows as a table, or a sentence saying there are none."""
    rows = con.execute(sql).fetchdf()
    if rows.empty:
        return html.section(title, html.absent(when_empty))
    return html.section(title, html.table(headers, rows.values.tolist()))


def alerts_overview(con: duckdb.DuckDBPyConnection) -> str:
    return _query_section(
        con, "CRS rule alerts",
        "SELECT patient_id, timepoint, study_day, rule_title, evidence, rule_source "
        "FROM crs_signals WHERE alert ORDER BY patient_id, study_day, rule_id",
        ["patient", "timepoint", "day", "rule", "evidence", "source"],
        "No CRS rule raised an alert.",
    )  # fmt: skip


def aplasia_overview(con: duckdb.DuckDBPyConnection) -> str:
    return _query_section(
        con, "B-cell aplasia",
        "SELECT patient_id, any_value(aplasia_onset_timepoint), any_value(aplasia_onset_day), "
        "any_value(recovery_timepoint), any_value(recovery_day), "
        "arg_max(aplasia, study_day) AS aplastic_now FROM b_cell_aplasia "
        "GROUP BY patient_id ORDER BY patient_id",
        ["patient", "onset", "onset day", "recovery", "recovery day", "aplastic now"],
        "No B-cell panel data yet.",
    )  # fmt: skip


def quarantine_overview(con: duckdb.DuckDBPyConnection) -> str:
    """Files in quarantine waiting for the lab, then the failed runs a passing repeat resolved
    (they stay in quarantine/, their QC figures in qpcr_runs)."""
    waiting = _query_section(
        con, "Quarantined files",
        "SELECT original_name, kind, reason, updated_at FROM ingest_log "
        "WHERE status = 'quarantined' AND resolved_by IS NULL ORDER BY updated_at",
        ["file", "kind", "reason", "when"],
        "No file is in quarantine.",
    )  # fmt: skip
    return waiting + resolved_runs_overview(con)


def resolved_runs_overview(con: duckdb.DuckDBPyConnection) -> str:
    """The runs that failed QC and the passing repeat that resolved each (the cohort and the QC
    page)."""
    return _query_section(
        con, "Failed runs resolved by a repeat",
        "SELECT f.original_name, f.reason, r.original_name, r.updated_at FROM ingest_log f "
        "LEFT JOIN ingest_log r ON r.source_sha256 = f.resolved_by "
        "WHERE f.status = 'quarantined' AND f.resolved_by IS NOT NULL ORDER BY f.updated_at",
        ["failed run", "why it failed", "resolved by", "repeat taken"],
        "No failed run has been resolved by a repeat.",
    )  # fmt: skip


def cohort_page(
    con: duckdb.DuckDBPyConnection, patients: list[str], car_targets: list[str], left_out: LeftOut
) -> str:
    links = (
        " | ".join(f'<a href="patient_{escape(p)}.html">{escape(p)}</a>' for p in patients)
        or "no patient reports yet"
    )
    return html.page("CAR-T trial: cohort overview", [
        f"<p>Patient reports: {links} | <a href=\"qc.html\">QC trends</a> | "
        f"<a href=\"{MODEL_PAGE}\">CRS forecast model card</a></p>",
        kinetics_overview(con, car_targets, left_out), alerts_overview(con),
        cohort_forecast_section(con), aplasia_overview(con),
        quarantine_overview(con),
    ])  # fmt: skip
