"""The CRS forecast on the pages: the model card (`crs_model.html`), the forecast section of the
patient page and the forecast-vs-outcome section of the cohort page. Everything comes from
`crs_forecasts`, `crs_model_card` and `crs_rule_performance` (pipelines/derived/forecast.py).
"""

from __future__ import annotations

import json
from html import escape

import duckdb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipelines.reports import html
from pipelines.reports.figures import LeftOut
from pipelines.reports.plots import COLOURS, FAIL_COLOUR, data_gid, new_figure, svg

MODEL_PAGE = "crs_model.html"
RELIABILITY_TITLE = "CRS forecast: reliability (leave-one-patient-out)"
AUC_TITLE = "CRS forecast: AUC by day, 95 % interval"
COHORT_TITLE = "CRS forecast vs observed outcome, graded patients"


def _model_card(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("SELECT * FROM crs_model_card ORDER BY study_day").fetchdf()


def reliability_figure(bins: list[dict]) -> Figure:
    """Mean forecast against the observed share of severe CRS per bin; the diagonal is perfect
    calibration, the point size the bin's patients."""
    figure = new_figure(4.6, 3.6)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#888888", label="perfect calibration")
    x = [b["mean_forecast"] for b in bins]
    y = [b["observed_severe"] for b in bins]
    sizes = [20 + 8 * b["patients"] for b in bins]
    axes.plot(x, y, color=COLOURS[0], linewidth=1, gid=data_gid("reliability line"))
    axes.scatter(x, y, s=sizes, color=COLOURS[0], gid=data_gid("reliability"), label="bins")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean forecast probability",
             ylabel="observed share with severe CRS", title=RELIABILITY_TITLE)  # fmt: skip
    axes.legend(loc="upper left")
    return figure


def auc_figure(card: pd.DataFrame) -> Figure:
    """Leave-one-patient-out AUC per forecast day with its interval; 0.5 is chance."""
    figure = new_figure(4.6, 3.2)
    axes = figure.add_subplot()
    days = card["study_day"].astype(float).to_numpy()
    auc = card["lopo_auc"].astype(float).to_numpy()
    below = auc - card["auc_ci_low"].astype(float).to_numpy()
    above = card["auc_ci_high"].astype(float).to_numpy() - auc
    bars = axes.errorbar(days, auc, yerr=[below, above], fmt="o", color=COLOURS[0], capsize=4)
    bars.lines[0].set_gid(data_gid("auc"))
    axes.axhline(0.5, linestyle=":", color="#888888", label="chance")
    axes.set(ylim=(0, 1), xlabel="forecast day (study day)", ylabel="AUC",
             xticks=days, title=AUC_TITLE)  # fmt: skip
    axes.legend(loc="lower right")
    return figure


def _rule_table(con: duckdb.DuckDBPyConnection) -> str:
    rules = con.execute(
        "SELECT rule_title, method, n_patients, n_severe, true_positives, false_negatives, "
        "false_positives, true_negatives, sensitivity, specificity, median_lead_time_days, "
        "note, rule_source FROM crs_rule_performance ORDER BY method DESC, rule_id"
    ).fetchdf()
    if rules.empty:
        return html.absent("No rule has been judged yet (no graded patient with cytokines).")
    return html.table(
        ["alert", "kind", "patients", "severe", "TP", "FN", "FP", "TN", "sensitivity",
         "specificity", "median lead time (days)", "note", "source"],
        rules.values.tolist(),
    )  # fmt: skip


def crs_model_page(con: duckdb.DuckDBPyConnection, left_out: LeftOut) -> str:
    """The model card: per forecast day the patients, events and performance; the reliability
    and AUC plots of the fitted days; the coefficients; the rules on the same patients."""
    card = _model_card(con)
    links = '<p><a href="cohort.html">Cohort overview</a></p>'
    if card.empty:
        return html.page("CRS forecast: model card", [links, html.section(
            "Model", html.absent("No forecast yet: no patient has cytokine fold changes.")
        )])  # fmt: skip
    last = card.iloc[-1]
    fitted = card[card["status"] == "fitted"]
    summary = html.table(
        ["forecast day", "status", "graded patients", "severe", "non-severe", "LOPO AUC",
         "95 % CI low", "95 % CI high", "Brier score", "note", "model version"],
        card[["timepoint", "status", "n_patients", "n_severe", "n_non_severe", "lopo_auc",
              "auc_ci_low", "auc_ci_high", "brier_score", "note", "model_version"]
             ].values.tolist(),
    )  # fmt: skip
    refusal = (
        html.paragraph(f"The model was not fitted: {last['note'].removeprefix('not fitted: ')}.")
        if last["status"] != "fitted" else ""
    )  # fmt: skip
    bins = json.loads(last["reliability_json"] or "[]")
    # with no model at all the refusal above is the whole story: no chart is "left out"
    plots = [
        svg(auc_figure(fitted), AUC_TITLE),
        left_out.figure(RELIABILITY_TITLE, bool(bins),
                        lambda: svg(reliability_figure(bins), RELIABILITY_TITLE),
                        "the last forecast day has no fitted model"),
    ] if len(fitted) else [html.absent("No model fitted: nothing to plot.")]  # fmt: skip
    weights = json.loads(last["coefficients_json"] or "[]")
    coefficients = html.table(
        ["input (standardised)", "coefficient (log-odds per SD)"],
        [[w["input"], w["coefficient"]] for w in weights],
    ) if weights else html.absent("No coefficients: no model fitted.")  # fmt: skip
    return html.page("CRS forecast: model card", [
        links,
        html.section(
            "Model", html.paragraph(f"{last['model_kind']}; penalty C = {last['penalty_c']:g}."),
            html.paragraph(f"Outcome: {last['outcome_definition']}."),
            html.paragraph(
                f"Fitted only with at least {last['min_severe']} severe and "
                f"{last['min_non_severe']} non-severe graded patients. Each graded patient's "
                "forecast comes from a model fitted without that patient (leave one patient out)."
            ),
            refusal, summary,
        ),
        html.section("Discrimination and calibration", *plots),
        html.section(f"Coefficients (forecast day {last['study_day']})", coefficients),
        html.section(
            "Published rules on the same patients and early window",
            html.paragraph(
                f"Days {last['study_day'] - len(card) + 1}-{last['study_day']}: an alert counts "
                "for a severe patient only on or before the onset of severe CRS; lead time is "
                "onset day minus the first such alert."
            ),
            _rule_table(con),
        ),
    ])  # fmt: skip


def patient_forecast_figure(
    title: str, forecasts: pd.DataFrame, alert_days: list[float], grades: pd.DataFrame
) -> Figure:
    """The forecast over the early days, the days a rule alerted (red lines) and the observed
    CRS grade (steps, right axis)."""
    figure = new_figure(7.5, 3.0)
    axes = figure.add_subplot()
    shown = forecasts[forecasts["probability_severe"].notna()]
    axes.plot(shown["study_day"], shown["probability_severe"], marker="o", color=COLOURS[0],
              label="forecast probability", gid=data_gid("forecast"))  # fmt: skip
    for day in alert_days:
        axes.axvline(day, color=FAIL_COLOUR, linewidth=1, alpha=0.7)
    axes.set(ylim=(0, 1), xlabel="study day", ylabel="probability of severe CRS", title=title)
    handles = list(axes.get_lines()[:1])
    if len(grades):
        grade_axes = axes.twinx()
        grade_axes.step(grades["study_day"], grades["crs_grade"], where="post", color=COLOURS[1],
                        label="observed CRS grade", gid=data_gid("grade"))  # fmt: skip
        grade_axes.set(ylim=(0, 4.2), ylabel="observed CRS grade")
        grade_axes.grid(False)
        handles += grade_axes.get_lines()
    axes.legend(handles=handles, loc="upper left")
    return figure


def observed_outcome(row: pd.Series) -> str:
    """The patient's observed outcome in words (`severe_crs` is empty until it is known)."""
    if not bool(row["outcome_known"]):
        return "not known yet (follow-up not complete)"
    if bool(row["severe_crs"]):
        return f"severe CRS from day {int(row['severe_onset_day'])}"
    return "no severe CRS"


def patient_forecast_section(con: duckdb.DuckDBPyConnection, patient: str) -> str:
    """The patient's forecast at each early timepoint, next to the rule alerts and grade."""
    forecasts = con.execute(
        "SELECT * FROM crs_forecasts WHERE patient_id = ? ORDER BY study_day", [patient]
    ).fetchdf()
    if forecasts.empty:
        return html.section("CRS forecast", html.absent(
            "No CRS forecast: no cytokine sample over a baseline in the early window."
        ))  # fmt: skip
    last_day = int(forecasts["study_day"].max())
    alerts = con.execute(
        "SELECT study_day, string_agg(rule_id, ', ' ORDER BY rule_id) AS rules FROM crs_signals "
        "WHERE patient_id = ? AND alert GROUP BY study_day ORDER BY study_day", [patient]
    ).fetchdf()  # fmt: skip
    grades = con.execute(
        "SELECT study_day, crs_grade FROM crs_grades WHERE patient_id = ? ORDER BY study_day",
        [patient],
    ).fetchdf()
    title = f"{patient}: CRS forecast, rule alerts and observed grade"
    early_grades = grades[grades["study_day"] <= max(last_day, 14)]
    # an unfitted model's note is in every row below: no chart is "left out"
    chart = (
        svg(patient_forecast_figure(
            title, forecasts, list(alerts["study_day"].astype(float)), early_grades
        ), title)
        if forecasts["probability_severe"].notna().any()
        else html.absent("No forecast: no model fitted (see the note).")
    )  # fmt: skip
    rules_by_day = dict(zip(alerts["study_day"], alerts["rules"], strict=True))
    grade_by_day = dict(zip(grades["study_day"], grades["crs_grade"], strict=True))
    rows = [
        [f["timepoint"], f["study_day"], f["probability_severe"], f["forecast_basis"],
         rules_by_day.get(f["study_day"], ""), grade_by_day.get(f["study_day"]),
         f["samples_used"], f["inputs_bounded"], f["note"]]
        for _, f in forecasts.iterrows()
    ]  # fmt: skip
    first = forecasts.iloc[0]
    observed = observed_outcome(first)
    return html.section(
        "CRS forecast", chart,
        html.paragraph(f"Observed outcome: {observed} ({first['outcome_definition']})."),
        html.table(["timepoint", "day", "probability of severe CRS", "basis", "rule alerts",
                    "grade that day", "samples used", "censored inputs (bounds)", "note"], rows),
        f'<p>Model: {escape(first["model_version"])}; '
        f'<a href="{MODEL_PAGE}">model card</a>.</p>',
    )  # fmt: skip


def cohort_forecast_figure(outcomes: pd.DataFrame) -> Figure:
    """Each graded patient's last early forecast, by observed outcome (jittered strips)."""
    figure = new_figure(4.6, 3.2)
    axes = figure.add_subplot()
    jitter = np.random.default_rng(0)
    for position, (label, severe) in enumerate((("no severe CRS", False), ("severe CRS", True))):
        group = outcomes[outcomes["severe_crs"] == severe]
        x = position + jitter.uniform(-0.15, 0.15, len(group))
        axes.scatter(x, group["probability_severe"], color=COLOURS[position], s=18,
                     gid=data_gid(label))  # fmt: skip
    axes.set(xticks=[0, 1], xticklabels=["no severe CRS", "severe CRS"], xlim=(-0.5, 1.5),
             ylim=(0, 1), ylabel="forecast probability (leave one patient out)",
             title=COHORT_TITLE)  # fmt: skip
    return figure


def cohort_forecast_section(con: duckdb.DuckDBPyConnection) -> str:
    """Forecast vs outcome for every graded patient, at their last early timepoint."""
    outcomes = con.execute(
        "SELECT patient_id, arg_max(timepoint, study_day) AS timepoint, max(study_day) AS day, "
        "arg_max(probability_severe, study_day) AS probability_severe, "
        "any_value(severe_crs) AS severe_crs, any_value(severe_onset_day) AS onset, "
        "any_value(note) AS note FROM crs_forecasts WHERE outcome_known "
        "GROUP BY patient_id ORDER BY patient_id"
    ).fetchdf()
    link = f'<p><a href="{MODEL_PAGE}">CRS forecast model card</a></p>'
    if outcomes.empty:
        return html.section("CRS forecast vs outcome", link, html.absent(
            "No graded patient with an early forecast yet."
        ))  # fmt: skip
    drawable = outcomes[outcomes["probability_severe"].notna()]
    # an unfitted model's note is in every row below: no chart is "left out"
    chart = (
        svg(cohort_forecast_figure(drawable), COHORT_TITLE)
        if len(drawable)
        else html.absent("No forecast: no model fitted (see the note).")
    )
    return html.section("CRS forecast vs outcome", link, chart, html.table(
        ["patient", "timepoint", "day", "forecast probability", "severe CRS", "onset day", "note"],
        outcomes.values.tolist(),
    ))  # fmt: skip
