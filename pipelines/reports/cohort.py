"""The cohort overview (kinetics of every patient, NCA table, CRS alerts, aplasia, quarantined
files) and the QC page (Levey-Jennings charts with Westgard outcomes)."""

from __future__ import annotations

from html import escape

import duckdb
import pandas as pd

from pipelines.reports import html
from pipelines.reports.figures import LeftOut
from pipelines.reports.svg import PALETTE, Chart, Series

DAY = "study day (0 = infusion)"


def kinetics_overview(
    con: duckdb.DuckDBPyConnection, car_targets: list[str], left_out: LeftOut
) -> str:
    copies = con.execute(
        "SELECT patient_id, study_day, copies_per_ug FROM car_copies "
        "WHERE reportable AND NOT below_loq AND copies_per_ug > 0 AND study_day >= 0 "
        "AND list_contains(?, target) "
        "ORDER BY patient_id, study_day", [car_targets],
    ).fetchdf()  # fmt: skip
    if copies.empty:
        return html.section("CAR-T kinetics", html.absent("No CAR qPCR results yet."))
    series = [
        Series(patient, list(zip(group["study_day"].astype(float), group["copies_per_ug"],
                                 strict=True)), color=PALETTE[i % len(PALETTE)])
        for i, (patient, group) in enumerate(copies.groupby("patient_id", sort=True))
    ]  # fmt: skip
    chart = left_out.chart(Chart(
        title="CAR transgene copies per ug gDNA, all patients", x_label=DAY,
        y_label="copies / ug gDNA (log)", log_y=True, series=series,
    ), "no quantified sample after infusion yet", height=360)  # fmt: skip
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
        f"<p>Patient reports: {links} | <a href=\"qc.html\">QC trends</a></p>",
        kinetics_overview(con, car_targets, left_out), alerts_overview(con), aplasia_overview(con),
        quarantine_overview(con),
    ])  # fmt: skip


def levey_jennings_chart(control: str, series: pd.DataFrame, left_out: LeftOut) -> str:
    mean, sd = series["target_mean"].iloc[0], series["target_sd"].iloc[0]
    unit = series["unit"].iloc[0] or ""
    points = list(zip(series["run_index"].astype(float), series["value"], strict=True))
    flagged = series[series["westgard_status"] == "reject"]
    hlines, band = [], None
    if pd.notna(mean) and pd.notna(sd):
        hlines = [(mean, "mean")] + [(mean + k * sd, f"{k:+d} SD") for k in (-3, -2, 2, 3)]
        band = (mean - sd, mean + sd)
    elif pd.notna(mean):
        hlines = [(mean, "mean (no limits yet)")]
    chart = Chart(
        title=f"{control}", x_label="run (in time order)", y_label=unit or "value",
        series=[Series("value", points)] + ([Series(
            "Westgard reject", [], color=PALETTE[1],
            hollow=list(zip(flagged["run_index"].astype(float), flagged["value"], strict=True)),
        )] if len(flagged) else []),
        hlines=hlines, band=band,
    )  # fmt: skip
    return left_out.chart(chart, "no value to plot", height=240)


def qc_page(con: duckdb.DuckDBPyConnection, left_out: LeftOut) -> str:
    trends = con.execute("SELECT * FROM qc_trends ORDER BY assay, control, run_index").fetchdf()
    if trends.empty:
        return html.page("QC trends", [html.absent("No QC data yet: no runs have been ingested.")])
    summary = (
        trends.groupby(["assay", "control"], sort=True)
        .agg(runs=("run_index", "max"), basis=("limits_basis", "first"),
             latest=("westgard_status", "last"),
             violations=("westgard_violations", lambda v: ", ".join(sorted({
                 r for joined in v for r in (joined or "").split(",") if r}))))
        .reset_index()
    )  # fmt: skip
    body = [
        '<p><a href="cohort.html">Cohort overview</a></p>',
        resolved_runs_overview(con),
        html.paragraph(
            "Levey-Jennings charts per control: green band mean +/- 1 SD, dashed lines the mean "
            "and +/- 2 and 3 SD. Westgard rules 1-2s (warning), 1-3s, 2-2s, R-4s, 4-1s, 10-x "
            "(reject). Limits come from the settings or the series' first runs; short series "
            "are charted but not judged."
        ),
        html.section("Summary", html.table(
            ["assay", "control", "runs", "limits", "latest status", "rules violated"],
            summary.values.tolist(),
        )),
    ]  # fmt: skip
    for assay, group in trends.groupby("assay", sort=True):
        charts = [
            levey_jennings_chart(c, s, left_out) for c, s in group.groupby("control", sort=True)
        ]
        body.append(html.section(f"{assay} controls", *charts))
    return html.page("QC trends: run controls over time", body)
