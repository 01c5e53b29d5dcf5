"""The QC page (`qc.html`): a Levey-Jennings chart per run control with enough runs to judge, the
Westgard rule violations, and the controls with too few runs listed in a table instead.

A control is one series of `qc_trends` (e.g. the CAR standard curve's efficiency, an analyte's
bead-array curve R² in one kit). A chart needs at least `[derived] qc_min_runs_for_limits` runs:
the number from which a series gets limits of its own, so shorter series could only be drawn
against limits they do not have. Each chart plots the control's value per run against the run's
date, with the mean and ±1, 2 and 3 SD lines labelled, on a y range of mean ± 3.5 SD (widened to
every point), and colours each run by its Westgard outcome with the rules it broke written beside
it. qPCR runs link to their run page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import duckdb
import matplotlib.dates as mdates
import numpy as np
import pandas as pd

from pipelines.derived.qc_trends import FAILED_RUN
from pipelines.derived.settings import DerivedSettings
from pipelines.reports import html
from pipelines.reports.cohort import resolved_runs_overview
from pipelines.reports.plots import (
    COLOURS,
    FAIL_COLOUR,
    WARN_COLOUR,
    data_gid,
    new_figure,
    styled,
    svg,
)
from pipelines.reports.qpcr_run import FLEX, run_link, run_page_link

ASSAY_SECTIONS = {
    "qpcr": "qPCR run controls",
    "cba": "Bead-array standard curves",
    "flow": "Flow cytometry control tubes",
}
METRIC_NAMES = {
    "slope": "standard curve slope",
    "efficiency_pct": "amplification efficiency",
    "positive_control_copies_per_reaction": "positive control",
    "r_squared": "curve R²",
    "mean_recovery_pct": "standards' mean recovery",
    "pct_parent": "% of parent",
}
STATUS_STYLE = {
    "in_control": ("in control", COLOURS[0]),
    "warning": ("warning (1-2s)", WARN_COLOUR),
    "reject": ("reject", FAIL_COLOUR),
    "not_evaluated": ("not judged", "#888888"),
}
"""Legend label and colour of a run per Westgard status."""
SD_LINES = ((0, "mean", "-"), (1, "1 SD", ":"), (2, "2 SD", "--"), (3, "3 SD", "-."))


class Cell(str):
    """Table cell markup already escaped (a link); `html.cell` escapes every other value."""


@dataclass(frozen=True)
class Control:
    """One control series as the page names it."""

    key: str
    assay: str
    name: str
    unit: str


def control_name(key: str) -> str:
    """'qpcr:CAR:efficiency_pct' -> 'CAR amplification efficiency'; 'cba:<kit>:IL-6:r_squared'
    -> 'IL-6 curve R² (<kit>)'; 'flow:<panel>:<population>:pct_parent' -> '<panel> <population>
    % of parent'. An unknown shape is shown as it is stored."""
    parts = key.split(":")
    metric = METRIC_NAMES.get(parts[-1], parts[-1])
    if parts[0] == "qpcr" and len(parts) == 3:
        return f"{parts[1]} {metric}"
    if parts[0] == "cba" and len(parts) == 4:
        return f"{parts[2]} {metric} ({parts[1]})"
    if parts[0] == "flow" and len(parts) == 4:
        return f"{parts[1]} {parts[2]} {metric}"
    return key


def _axis_label(control: Control) -> str:
    metric = control.key.split(":")[-1]
    return control.unit or METRIC_NAMES.get(metric, metric)


def y_range(values: np.ndarray, mean: float | None, sd: float | None) -> tuple[float, float]:
    """Mean ± 3.5 SD, widened to hold every point; without an SD the values' own span, padded,
    so a flat series is not blown up into noise."""
    if mean is not None and sd is not None and sd > 0:
        low, high = mean - 3.5 * sd, mean + 3.5 * sd
        pad = 0.3 * sd
    else:
        low, high = float(values.min()), float(values.max())
        pad = max(abs(high - low) * 0.2, abs(float(values.mean())) * 0.05, 1e-9)
    return min(low, float(values.min()) - pad), max(high, float(values.max()) + pad)


def _run_dates(series: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(series["run_time"], utc=True).dt.tz_convert(None)


def levey_jennings_chart(control: Control, series: pd.DataFrame) -> str:
    """The control's Levey-Jennings chart: value per run date, mean and ±1/2/3 SD, each run
    coloured by its Westgard status and named by the rules it broke."""
    mean = series["target_mean"].iloc[0]
    sd = series["target_sd"].iloc[0]
    mean = None if pd.isna(mean) else float(mean)
    sd = None if pd.isna(sd) else float(sd)
    dates, values = _run_dates(series), series["value"].to_numpy(float)
    figure = new_figure(3.55, 2.8)
    axes = styled(figure.add_subplot())
    line = axes.plot(dates, values, color="#999999", lw=0.8, zorder=2)[0]
    line.set_gid(data_gid("lj series"))
    if mean is not None:
        for k, label, style in SD_LINES if sd else SD_LINES[:1]:
            for sign in (1, -1) if k else (1,):
                level = mean + sign * k * (sd or 0)
                axes.axhline(level, color="#555555", lw=0.7, ls=style, zorder=1)
                text = label if not k else f"{'+' if sign > 0 else '−'}{label}"
                axes.annotate(text, (1.0, level), xycoords=("axes fraction", "data"),
                              xytext=(2, 0), textcoords="offset points", va="center",
                              fontsize=7, color="#555555", annotation_clip=False)  # fmt: skip
    for status, (label, colour) in STATUS_STYLE.items():
        runs = series["westgard_status"] == status
        if not runs.any():
            continue
        points = axes.scatter(dates[runs], values[runs], s=22, color=colour, zorder=3,
                              label=label)  # fmt: skip
        points.set_gid(data_gid(f"lj {status}"))
        if control.assay == "qpcr":
            points.set_urls([run_page_link(r) for r in series.loc[runs, "run_id"]])
    failed = (series["run_verdict"] == FAILED_RUN).to_numpy()
    if failed.any():  # charted and judged, but never part of the limits (qc_trends)
        crosses = axes.scatter(dates[failed], values[failed], marker="x", s=40, color="#000000",
                               linewidths=1.4, zorder=4, label="run failed QC")  # fmt: skip
        crosses.set_gid(data_gid("lj failed run"))
    for date, value, rules, status in zip(
        dates, values, series["westgard_violations"], series["westgard_status"], strict=True
    ):
        if rules:
            axes.annotate(rules.replace(",", " "), (date, value), xytext=(0, 5),
                          textcoords="offset points", ha="center", fontsize=7,
                          color=STATUS_STYLE[status][1])  # fmt: skip
    axes.set_ylim(*y_range(values, mean, sd))
    locator = mdates.AutoDateLocator(maxticks=5)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_title(control.name, fontsize=9)
    axes.set_ylabel(_axis_label(control))
    axes.set_xlabel("run date")
    axes.grid(False, axis="y")  # the SD lines are the y grid
    figure.legend(loc="outside lower center", fontsize=7, handletextpad=0.2, columnspacing=0.8,
                  ncol=series["westgard_status"].nunique() + int(failed.any()))  # fmt: skip
    return svg(figure, f"Levey-Jennings chart of {control.name}, {len(series)} runs")


def _cells(row: list[object]) -> str:
    return "".join(f"<td>{v}</td>" if isinstance(v, Cell) else html.cell(v) for v in row)


def linked_table(headers: list[str], rows: list[list[object]]) -> str:
    """`html.table` whose `Cell` values are markup (links) put in as they are."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{_cells(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _run_cell(assay: str, run_id: str) -> object:
    return Cell(run_link(run_id)) if assay == "qpcr" else run_id


def violations_table(trends: pd.DataFrame, controls: dict[str, Control]) -> str:
    """Every run that broke a Westgard rule, newest first."""
    broken = trends[trends["westgard_violations"].fillna("") != ""]
    if broken.empty:
        return html.paragraph("No run broke a Westgard rule.")
    broken = broken.sort_values("run_time", ascending=False)
    rows = [
        [date, controls[r.control].name, r.value, r.westgard_violations.replace(",", ", "),
         r.westgard_status, _run_cell(r.assay, r.run_id)]
        for date, r in zip(_run_dates(broken), broken.itertuples(index=False), strict=True)
    ]  # fmt: skip
    return linked_table(["run date", "control", "value", "rules", "status", "run"], rows)


def short_series_group(control: Control) -> tuple[str, str]:
    """(row, item) of a control in the table of short series: a bead-array plate's analytes
    share one row per metric and kit, each named in it; other controls have a row each."""
    parts = control.key.split(":")
    if control.assay == "cba" and len(parts) == 4:
        return f"{METRIC_NAMES.get(parts[3], parts[3])} ({parts[1]})", parts[2]
    return control.name, ""


def short_series_table(
    trends: pd.DataFrame, controls: dict[str, Control], keys: list[str], minimum: int
) -> str:
    """The controls with fewer runs than a chart needs, with their values and runs."""
    if not keys:
        return html.paragraph(f"Every control has at least {minimum} runs.")
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(short_series_group(controls[key])[0], []).append(key)
    rows = []
    for name, members in groups.items():
        series = trends[trends["control"].isin(members)]
        values = "; ".join(
            " ".join(filter(None, [short_series_group(controls[key])[1], ", ".join(
                html.number(float(v)) for v in trends.loc[trends["control"] == key, "value"]
            )]))
            for key in members
        )  # fmt: skip
        assay = controls[members[0]].assay
        runs = ", ".join(
            run_link(r) if assay == "qpcr" else escape(r) for r in dict.fromkeys(series["run_id"])
        )  # fmt: skip
        unit = controls[members[0]].unit
        rows.append([name, unit, series["run_id"].nunique(), values, Cell(runs)])
    return linked_table(["control", "unit", "runs", "values", "run(s)"], rows)


def qc_page(con: duckdb.DuckDBPyConnection, settings: DerivedSettings) -> str:
    """The QC page from `qc_trends`."""
    trends = con.execute("SELECT * FROM qc_trends ORDER BY assay, control, run_index").fetchdf()
    title = "QC trends: run controls over time"
    links = '<p><a href="cohort.html">Cohort overview</a></p>'
    if trends.empty:
        return html.page(title, [links, html.absent("No QC data yet: no runs have been ingested.")])
    minimum = settings.qc_min_runs_for_limits
    controls = {
        key: Control(key, str(group["assay"].iloc[0]), control_name(key),
                     str(group["unit"].iloc[0] or ""))
        for key, group in trends.groupby("control", sort=True)
    }  # fmt: skip
    counts = trends.groupby("control").size()
    charted = [k for k in controls if counts[k] >= minimum]
    body = [
        links,
        resolved_runs_overview(con),
        html.paragraph(
            f"One Levey-Jennings chart per control with at least {minimum} runs (the "
            "qc_min_runs_for_limits setting: from that many runs a control has limits of its own). "
            "Lines: the mean and ±1, 2 and 3 SD. Runs are coloured by their Westgard outcome "
            "with the rules broken named beside them: 1-2s warns; 1-3s, 2-2s, R-4s, 4-1s and "
            "10-x reject. qPCR points and run names link to the run's page."
        ),
        html.section("Westgard rule violations", violations_table(trends, controls)),
    ]  # fmt: skip
    for assay, heading in ASSAY_SECTIONS.items():
        keys = [k for k in charted if controls[k].assay == assay]
        if not keys:
            continue
        charts = [
            levey_jennings_chart(controls[k], trends[trends["control"] == k].reset_index(drop=True))
            for k in keys
        ]  # fmt: skip
        body.append(html.section(heading, f'<div style="{FLEX}">{"".join(charts)}</div>'))
    if not charted:
        body.append(html.absent(f"No control has {minimum} runs yet, so none is charted."))
    short = [k for k in controls if counts[k] < minimum]
    body.append(html.section(
        f"Controls with fewer than {minimum} runs (not charted)",
        short_series_table(trends, controls, short, minimum),
    ))  # fmt: skip
    return html.page(title, body)
