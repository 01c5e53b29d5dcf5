"""The per-patient report: expansion, phenotype, cytokines and CRS alerts, B cells, QC, sources.

Everything comes from the warehouse (curated and derived tables). Partial data is the normal state
of a running trial: a section whose data is absent says so in one line, and a chart none of whose
values can be drawn is left out with a one-line note (`LeftOut`); neither breaks the page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from pipelines.derived.crs import CrsRule, per_sample_cytokines
from pipelines.derived.results import copies_results
from pipelines.derived.settings import DerivedSettings
from pipelines.reports import html, patient_figures
from pipelines.reports.crs_model import patient_forecast_section
from pipelines.reports.figures import LeftOut
from pipelines.reports.patient_figures import Layer
from pipelines.reports.plots import COLOURS, svg
from pipelines.reports.qpcr_run import run_link
from pipelines.reports.tube import Tube, tube_links
from validation.timepoints import PRODUCT

MEMORY_SUBSETS = ("naive/TSCM", "TCM", "TEM", "TEMRA")
"""Suffixes of the memory populations under a CAR+ population in the gating template."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, patient: str) -> pd.DataFrame:
    return con.execute(sql, [patient]).fetchdf()


def _points(frame: pd.DataFrame, y: str, log: bool = False) -> pd.DataFrame:
    """The rows that can be drawn (a study day and a finite `y`, above 0 on a `log` axis), with
    `y` as the `value` column that `patient_figures` draws."""
    value = pd.to_numeric(frame[y], errors="coerce").astype(float)
    keep = frame["study_day"].notna() & np.isfinite(value) & ((value > 0) | (not log))
    return frame[keep].assign(value=value[keep], study_day=frame["study_day"][keep].astype(float))


def _figure(left_out: LeftOut, title: str, layers: list[Layer], why: str, **drawing) -> str:
    """A `time_series` figure of the layers that hold points, or `left_out`'s note."""
    layers = [layer for layer in layers if len(layer.points)]
    return left_out.figure(
        title,
        bool(layers),
        lambda: svg(patient_figures.time_series(title, layers=layers, **drawing), title),
        why,
    )


def car_results(con: duckdb.DuckDBPyConnection, patient: str, settings) -> pd.DataFrame:
    """The patient's CAR-target `car_copies` rows in day order, each with its result."""
    copies = _rows(con, "SELECT * FROM car_copies WHERE patient_id = ?", patient)
    copies = copies[copies["target"].map(settings.qpcr.role_of) == "car"]
    return copies_results(copies.sort_values("study_day", kind="stable"))


def kinetics_section(con: duckdb.DuckDBPyConnection, patient: str, copies: pd.DataFrame) -> str:
    rows = _rows(con, "SELECT * FROM car_kinetics WHERE patient_id = ?", patient)
    if rows.empty:
        return html.section("CAR-T kinetics", html.absent("No kinetics: no CAR qPCR or flow data."))
    k = rows.iloc[0]
    if not k.get("n_qpcr_samples") and pd.isna(k.get("cmax_car_cells_per_ul")):
        return html.section("CAR-T kinetics", html.absent(
            "No kinetics yet: no CAR qPCR sample and no CAR+ T cells counted by flow after "
            "infusion."
        ))  # fmt: skip
    later = json.loads(k["persistence_json"] or "[]")
    table = html.table(
        ["Cmax (copies/ug)", "Tmax (day)", "AUC0-28 (copies/ug x day)", "AUC ends (day)",
         "Tlast (day)", "persistence", "lost from day", "CAR+ cells/uL Cmax", "Tmax (day)"],
        [[k["cmax_copies_per_ug"], k["tmax_day"], k["auc_0_28"], k["auc_0_28_end_day"],
          k["tlast_day"], k["persistence_status"], k["persistence_lost_day"],
          k["cmax_car_cells_per_ul"], k["tmax_car_cells_day"]]],
    )  # fmt: skip
    persistence = html.table(
        ["timepoint", "day", "status", "copies/ug"],
        [[p["timepoint"], p["study_day"], p["status"], p["copies_per_ug"]] for p in later],
    ) if later else html.absent("No samples after day 28 yet.")  # fmt: skip
    unmeasured = copies[(copies["result"] == "not_measured") & (copies["study_day"] >= 0)]
    caveat = html.absent(
        f"{len(unmeasured)} CAR qPCR sample(s) after infusion could not be measured and are not "
        "in these figures (see 'Not on the chart' under CAR transgene by qPCR)."
    ) if len(unmeasured) else ""  # fmt: skip
    return html.section(
        "CAR-T kinetics", table, caveat, "<h3>Persistence after day 28</h3>", persistence,
        html.paragraph(f"BLQ handling: {k['blq_handling']}."),
    )  # fmt: skip


RESULT_WORDS = {
    "quantified": "quantified", "below_loq": "detected below the LOQ",
    "not_detected": "not detected", "not_measured": "not measured",
}  # fmt: skip


def copies_positions(copies: pd.DataFrame) -> pd.Series:
    """Where each result is drawn (copies/ug), NaN where it cannot be: quantified at its value,
    below the LOQ at its estimate (at the LOQ for rows that kept none), not detected at the LOQ,
    not measured nowhere."""
    result, value, loq = copies["result"], copies["copies_per_ug"], copies["loq"]
    estimate = value.where(value > 0, loq)
    y = pd.Series(np.nan, index=copies.index, dtype=float)
    y = y.mask(result == "quantified", value).mask(result == "below_loq", estimate)
    y = y.mask(result == "not_detected", loq)
    drawable = np.isfinite(y) & (y > 0) & copies["study_day"].notna()
    return y.where(drawable)


def _why_not_drawn(row: pd.Series) -> str:
    if row["result"] == "not_measured":
        return row["result_reason"] if pd.notna(row["result_reason"]) else "not measured"
    if pd.isna(row["study_day"]):
        return "no study day (e.g. the infused product)"
    if row["result"] == "not_detected":
        return "not detected; no LOQ in copies/ug to draw it at (no DNA input)"
    return "no copies per ug gDNA to draw"


def car_copies_section(copies: pd.DataFrame, patient: str, left_out: LeftOut) -> str:
    """Copies per ug over time by result (see `copies_positions`), from the reportable rows
    only (one per sample and target, `car_copies.reportable`); what cannot be drawn is listed
    under the chart with the reason, and results a later run replaced are listed last."""
    if copies.empty:
        return html.section("CAR transgene by qPCR", html.absent("No CAR qPCR results yet."))
    replaced = copies[~copies["reportable"].astype(bool)]
    copies = copies[copies["reportable"].astype(bool)]
    copies = copies.assign(loq=copies["loq_copies_per_reaction"] * 1000 / copies["dna_input_ng"])
    placed = copies.assign(y=copies_positions(copies))
    drawn = placed[placed["y"].notna()]

    def at(result: str) -> pd.DataFrame:
        return _points(drawn[drawn["result"] == result], "y", log=True)

    loqs = copies["loq"][np.isfinite(copies["loq"]) & (copies["loq"] > 0)]
    loq_line = [(float(loqs.max()), f"LOQ {loqs.max():.3g} copies/µg")] if len(loqs) else []
    parts = [
        _figure(
            left_out, f"{patient}: CAR transgene copies per ug gDNA",
            [Layer("quantified", at("quantified")),
             Layer("detected below the LOQ (at the estimate)", at("below_loq"), open_marker="o"),
             Layer("not detected (at the LOQ)", at("not_detected"), open_marker="v")],
            "no sample has copies per ug gDNA to draw (see the list below)",
            y_label="copies / µg gDNA (log)", y_axis=None,
            references=loq_line,
        ),
        html.paragraph(
            "Filled circles: quantified. Open circles: detected below the LOQ, drawn at the "
            "estimate (at the LOQ where no estimate was kept). Open triangles on the LOQ line: "
            "not detected."
        ),
    ]  # fmt: skip
    missing = placed[placed["y"].isna()]
    if len(missing):
        parts += ["<h3>Not on the chart</h3>", html.table(
            ["timepoint", "day", "run", "result", "why"],
            [[r["timepoint"], r["study_day"], r["run_id"],
              RESULT_WORDS.get(r["result"], r["result"]), _why_not_drawn(r)]
             for _, r in missing.iterrows()],
        )]  # fmt: skip
    if len(replaced):
        parts += ["<h3>Measured again: not reportable</h3>", html.paragraph(
            "Each sample reports the result of its latest run that passed QC; these earlier "
            "results of the same samples are kept but not charted."
        ), html.table(
            ["timepoint", "day", "run", "result", "copies/ug"],
            [[r["timepoint"], r["study_day"], r["run_id"],
              RESULT_WORDS.get(r["result"], r["result"]), r["copies_per_ug"]]
             for _, r in replaced.iterrows()],
        )]  # fmt: skip
    return html.section("CAR transgene by qPCR", *parts)


def _tube_ratio(pops: pd.DataFrame, numerator: str, denominator: str) -> pd.DataFrame:
    """numerator count / denominator count within each tube, by study day."""
    keys = ["source_sha256", "dataset"]
    top = pops[pops["population"] == numerator][[*keys, "timepoint", "study_day", "count"]]
    bottom = pops[pops["population"] == denominator][[*keys, "count"]]
    merged = top.merge(bottom, on=keys, suffixes=("", "_d"))
    merged = merged[merged["count_d"] > 0]
    return merged.assign(ratio=merged["count"] / merged["count_d"])


def _first(pops: pd.DataFrame, names: Sequence[str]) -> str | None:
    present = set(pops["population"])
    return next((n for n in names if n in present), None)


def car_flow_section(
    pops: pd.DataFrame, patient: str, derived: DerivedSettings, left_out: LeftOut
) -> str:
    car = _first(pops, derived.car_positive_populations)
    cd3 = _first(pops, derived.cd3_populations)
    if pops.empty or car is None or cd3 is None:
        return html.section("CAR+ T cells by flow", html.absent("No T-cell panel data yet."))
    post = pops[pops["timepoint"] != PRODUCT]
    pct = _tube_ratio(post, car, cd3)
    per_ul = post[(post["population"] == car) & post["cells_per_ul"].notna()]
    charts = [_figure(
        left_out, f"{patient}: CAR+ % of CD3+ T cells",
        [Layer("CAR+ % of CD3+", _points(pct.assign(pct=100 * pct["ratio"]), "pct"))],
        "no blood tube with CD3+ T cells and a study day yet",
        y_label="% of CD3+ T cells", y_axis=patient_figures.PERCENT_AXIS,
    )]  # fmt: skip
    if not per_ul.empty:
        charts.append(_figure(
            left_out, f"{patient}: CAR+ T cells per uL blood",
            [Layer("CAR+ cells/µL", _points(per_ul, "cells_per_ul"), COLOURS[2])],
            "no counted blood tube with a study day yet",
            y_label="CAR+ T cells / µL blood", y_axis=patient_figures.CELLS_AXIS,
        ))  # fmt: skip
    else:
        charts.append(html.absent("No counting beads in the T-cell tubes: no cells/uL."))
    return html.section("CAR+ T cells by flow", *charts)


def _subset_rank(population: str) -> int:
    """The memory subset's place in `MEMORY_SUBSETS` (naive first, TEMRA last)."""
    return next(i for i, s in enumerate(MEMORY_SUBSETS) if population.endswith(" " + s))


def phenotype_section(
    pops: pd.DataFrame, patient: str, derived: DerivedSettings, left_out: LeftOut
) -> str:
    car = _first(pops, derived.car_positive_populations)
    post = pops[pops["timepoint"] != PRODUCT]
    ratio = _tube_ratio(post, "CD4+", "CD8+") if not post.empty else post
    memory = post[
        post["parent"].isin([car]) & post["population"].map(
            lambda n: any(str(n).endswith(" " + s) for s in MEMORY_SUBSETS)
        )
    ] if car is not None and not post.empty else post.iloc[0:0]  # fmt: skip
    parts = []
    if len(ratio):
        parts.append(_figure(
            left_out, f"{patient}: CD4:CD8 ratio of T cells",
            [Layer("CD4:CD8", _points(ratio, "ratio"), COLOURS[3])],
            "no blood tube with CD8+ T cells and a study day yet",
            y_label="CD4+ / CD8+ T cells (ratio)", y_axis=patient_figures.RATIO_AXIS,
            references=[(1.0, "1:1")],
        ))  # fmt: skip
    else:
        parts.append(html.absent("No CD4+/CD8+ populations yet."))
    if len(memory):
        layers = [
            Layer(name, _points(group, "pct_parent"), COLOURS[_subset_rank(name)])
            for name, group in sorted(
                memory.groupby("population"), key=lambda g: _subset_rank(g[0])
            )
        ]
        parts.append(_figure(
            left_out, f"{patient}: memory subsets of CAR+ T cells", layers,
            "no CAR+ T cells to divide into subsets in any blood tube yet",
            y_label="% of CAR+ T cells", y_axis=patient_figures.SUBSET_AXIS,
        ))  # fmt: skip
    else:
        parts.append(html.absent("No CAR+ memory subsets yet (no CAR+ events or no T-cell panel)."))
    return html.section("CD4:CD8 and memory subsets", *parts)


def cytokine_chart(
    patient: str, samples: pd.DataFrame, folds: pd.DataFrame, rules: Sequence[CrsRule],
    alerts: pd.DataFrame, left_out: LeftOut,
) -> str:  # fmt: skip
    """One panel per analyte over time, with the patient's baseline, 10x baseline and the CRS
    rules' thresholds where a baseline exists; censored values open at their limit. Analytes
    with no value to draw are named under the panels."""
    title = f"{patient}: plasma cytokines"
    drawable = _points(samples, "value", log=True)
    known = (
        folds[folds["baseline_pg_ml"].notna()].drop_duplicates("analyte") if len(folds) else folds
    )
    baselines = {str(r["analyte"]): float(r["baseline_pg_ml"]) for _, r in known.iterrows()}

    def draw() -> str:
        days = patient_figures.alert_days_of(alerts)
        return svg(patient_figures.cytokine_panels(title, drawable, baselines, rules, days), title)

    panels = left_out.figure(
        title, len(drawable) > 0, draw, "no concentration above 0 pg/mL with a study day yet"
    )
    undrawn = sorted(set(samples["analyte"]) - set(drawable["analyte"]))
    if len(drawable) and undrawn:
        return panels + html.absent(
            f"No panel for {', '.join(undrawn)}: no value above 0 pg/mL with a study day."
        )
    return panels


def cytokine_section(
    con: duckdb.DuckDBPyConnection, patient: str, rules: Sequence[CrsRule], left_out: LeftOut
) -> str:
    """The measured concentrations (also before a baseline exists), then the fold changes over
    the patient's baseline and the CRS rule alerts where a baseline was measured."""
    measured = _rows(con, "SELECT * FROM cytokines WHERE patient_id = ?", patient)
    if measured.empty:
        return html.section("Cytokines and CRS signals", html.absent("No cytokine data yet."))
    folds = _rows(con, "SELECT * FROM cytokine_fold_changes WHERE patient_id = ?", patient)
    signals = _rows(
        con, "SELECT * FROM crs_signals WHERE patient_id = ? ORDER BY study_day, rule_id", patient
    )
    alerts = signals[signals["alert"].fillna(False).astype(bool)]
    chart = cytokine_chart(patient, per_sample_cytokines(measured), folds, rules, alerts, left_out)
    legend = html.paragraph(
        "Open triangles: censored, drawn at the limit (pointing down: below the LLOQ, up: above "
        "the ULOQ). Dashed: the patient's baseline; dotted: 10x baseline; dash-dot: a CRS "
        "rule's threshold over the days it applies. Red lines: days a CRS rule raised an alert."
    )
    if folds.empty:
        return html.section("Cytokines and CRS signals", chart, legend, html.absent(
            "No fold changes or CRS rule alerts: no baseline (BL or SCREEN) cytokine sample for "
            "this patient yet."
        ))  # fmt: skip
    alert_table = html.table(
        ["timepoint", "day", "rule", "evidence", "source"],
        [[a["timepoint"], a["study_day"], a["rule_title"], a["evidence"], a["rule_source"]]
         for _, a in alerts.iterrows()],
    ) if len(alerts) else html.absent("No CRS rule raised an alert.")  # fmt: skip
    peaks = folds[folds["fold_change"].notna()].sort_values("fold_change", ascending=False)
    peak_table = html.table(
        ["analyte", "peak fold over baseline", "bound", "timepoint", "baseline pg/mL",
         "baseline censoring"],
        [[r["analyte"], r["fold_change"], r["fold_change_bound"], r["timepoint"],
          r["baseline_pg_ml"], r["baseline_censoring"]]
         for _, r in peaks.drop_duplicates("analyte").iterrows()],
    ) if len(peaks) else html.absent("No fold change could be computed yet.")  # fmt: skip
    return html.section(
        "Cytokines and CRS signals", chart, legend, "<h3>CRS rule alerts</h3>", alert_table,
        "<h3>Peak fold change per analyte</h3>", peak_table,
    )  # fmt: skip


def crs_grade_section(con: duckdb.DuckDBPyConnection, patient: str, left_out: LeftOut) -> str:
    grades = _rows(con, "SELECT * FROM crs_grades WHERE patient_id = ? ORDER BY study_day", patient)
    if grades.empty:
        return html.section("CRS grade", html.absent("No clinical observations for this patient."))
    chart = _figure(
        left_out, f"{patient}: CRS grade ({grades['grade_scale'].iloc[0]})",
        [Layer("CRS grade", _points(grades, "crs_grade"), COLOURS[1])], "no graded day",
        y_label="CRS grade (0 = none)", y_axis=patient_figures.GRADE_AXIS,
    )  # fmt: skip
    table = html.table(
        ["day", "temperature degC", "hypotension", "oxygen", "grade", "scale", "basis"],
        [[g["study_day"], g["temperature_c"], g["hypotension"], g["oxygen_support"],
          g["crs_grade"], g["grade_scale"], g["grade_basis"]] for _, g in grades.iterrows()],
    )  # fmt: skip
    return html.section("CRS grade", chart, table)


def b_cell_section(con: duckdb.DuckDBPyConnection, patient: str, left_out: LeftOut) -> str:
    rows = _rows(
        con, "SELECT * FROM b_cell_aplasia WHERE patient_id = ? ORDER BY study_day", patient
    )
    if rows.empty:
        return html.section("B cells and aplasia", html.absent("No B-cell panel data yet."))
    first = rows.iloc[0]
    spans = []
    if pd.notna(first["aplasia_onset_day"]):
        end = first["recovery_day"] if pd.notna(first["recovery_day"]) else rows["study_day"].max()
        spans.append((float(first["aplasia_onset_day"]), float(end), "B-cell aplasia"))
    threshold = float(first["threshold_cells_per_ul"])
    counted = rows[rows["b_cells_per_ul"].notna()]
    chart = _figure(
        left_out, f"{patient}: CD19+ B cells per uL",
        [Layer("CD19+ B cells/µL", _points(counted, "b_cells_per_ul", log=True), COLOURS[4])],
        "no counted timepoint above 0 B cells/uL to draw on the log axis (see the table)",
        y_label="CD19+ B cells / µL blood (log)", y_axis=None,
        references=[(threshold, f"aplasia below {threshold:g}/µL")], spans=spans,
    ) if len(counted) else html.absent("B cells were not counted (no counting beads).")  # fmt: skip
    table = html.table(
        ["onset", "onset day", "onset date", "recovery", "recovery day", "recovery date"],
        [[first["aplasia_onset_timepoint"], first["aplasia_onset_day"],
          first["aplasia_onset_date"], first["recovery_timepoint"], first["recovery_day"],
          first["recovery_date"]]],
    )  # fmt: skip
    detail = html.table(
        ["timepoint", "day", "B cells/uL", "% of lymphocytes", "aplasia", "days so far"],
        [[r["timepoint"], r["study_day"], r["b_cells_per_ul"], r["b_cells_pct_of_lymphocytes"],
          bool(r["aplasia"]), r["aplasia_days_so_far"]] for _, r in rows.iterrows()],
    )  # fmt: skip
    return html.section(
        "B cells and aplasia", chart, html.paragraph("Shaded: B-cell aplasia."), table, detail
    )


def qc_section(con: duckdb.DuckDBPyConnection, patient: str) -> str:
    qpcr = con.execute(
        "SELECT r.run_id, r.target, r.instrument, r.slope, r.efficiency_pct, r.r_squared, "
        "r.ntc_verdict, r.qc_verdict, string_agg(DISTINCT t.westgard_status, ',') AS westgard "
        "FROM qpcr_runs r LEFT JOIN qc_trends t ON t.run_id = r.run_id AND t.assay = 'qpcr' "
        "AND t.control LIKE 'qpcr:' || r.target || ':%' "
        "WHERE r.run_id IN (SELECT run_id FROM car_copies WHERE patient_id = ?) "
        "GROUP BY ALL ORDER BY r.run_id, r.target", [patient],
    ).fetchdf()  # fmt: skip
    cba = con.execute(
        "SELECT c.run_id, c.instrument_format, count(*) AS analytes, "
        "count(*) FILTER (WHERE c.verdict = 'PASS') AS passed, min(c.r_squared) AS min_r2 "
        "FROM cba_curves c WHERE c.run_id IN (SELECT run_id FROM cytokines WHERE patient_id = ?) "
        "GROUP BY ALL ORDER BY c.run_id", [patient],
    ).fetchdf()  # fmt: skip
    flow = con.execute(
        "SELECT timepoint, panel, cytometer, event_count, compensation_source, read_warnings "
        "FROM flow_samples WHERE patient_id = ? ORDER BY study_day, panel", [patient],
    ).fetchdf()  # fmt: skip
    parts = ["<h3>qPCR runs</h3>"]
    parts.append(html.table(list(qpcr.columns), qpcr.values.tolist()) if len(qpcr)
                 else html.absent("No qPCR runs."))  # fmt: skip
    if len(qpcr):
        pages = ", ".join(run_link(run) for run in dict.fromkeys(qpcr["run_id"]))
        parts.append(f"<p>Run pages (standard curves, amplification, plate map): {pages}</p>")
    parts.append("<h3>Bead-array plates</h3>")
    parts.append(html.table(list(cba.columns), cba.values.tolist()) if len(cba)
                 else html.absent("No bead-array plates."))  # fmt: skip
    parts.append("<h3>Flow tubes</h3>")
    parts.append(html.table(list(flow.columns), flow.values.tolist()) if len(flow)
                 else html.absent("No flow tubes."))  # fmt: skip
    return html.section("QC of contributing runs", *parts)


def sources_section(con: duckdb.DuckDBPyConnection, patient: str, tubes: Sequence[Tube]) -> str:
    union = " UNION ".join(
        f"SELECT DISTINCT source_sha256 FROM {t} WHERE patient_id = $p"
        for t in ("car_copies", "cytokines", "flow_samples")
    )
    rows = con.execute(
        f"SELECT s.source_sha256, l.original_name, l.kind, l.instrument_format, l.status, "
        f"l.received_at FROM ({union}) s LEFT JOIN ingest_log l USING (source_sha256) "
        "ORDER BY l.received_at, l.original_name", {"p": patient},
    ).fetchdf()  # fmt: skip
    if rows.empty:
        return html.section("Source files", html.absent("No source files."))
    return html.section(
        "Source files",
        html.table(["sha256", "file", "kind", "format", "status", "received"],
                   rows.values.tolist()),
        tube_links(tubes),
    )  # fmt: skip


def patient_page(
    con: duckdb.DuckDBPyConnection,
    patient: str,
    settings,
    derived,
    rules: Sequence[CrsRule],
    left_out: LeftOut,
    tubes: Sequence[Tube] = (),
) -> str:
    """The patient's page; sections without data say so, charts that cannot be drawn are
    noted in `left_out`. `rules` are the CRS rules whose thresholds the cytokine panels draw;
    `tubes` the flow tubes whose gating pages it links to."""
    pops = _rows(con, "SELECT * FROM flow_populations WHERE patient_id = ?", patient)
    copies = car_results(con, patient, settings)
    body = [
        kinetics_section(con, patient, copies),
        car_copies_section(copies, patient, left_out),
        car_flow_section(pops, patient, derived, left_out),
        phenotype_section(pops, patient, derived, left_out),
        cytokine_section(con, patient, rules, left_out),
        crs_grade_section(con, patient, left_out),
        patient_forecast_section(con, patient),
        b_cell_section(con, patient, left_out),
        qc_section(con, patient),
        sources_section(con, patient, tubes),
        '<p><a href="cohort.html">Cohort overview</a> | <a href="qc.html">QC trends</a></p>',
    ]
    return html.page(f"CAR-T monitoring report: patient {patient}", body)
