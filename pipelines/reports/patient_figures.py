"""The figures of the patient page, drawn with matplotlib (`pipelines.reports.plots`).

Every figure has study days on its x axis, with the timepoint names (BL, D7, M2, ...) under the
days sampled, and units on both axes. The day axis is on a square-root scale (`day_axis`): the
first two weeks, where CAR-T cells expand and CRS happens, keep room for their six timepoints
instead of being squeezed by months of follow-up. The y axes are chosen so that the picture does
not invent a trend: a linear axis starts at 0 and spans at least a documented minimum (`LinearAxis`), so a
constant CD4:CD8 of 1.1 is drawn as the flat line it is; a log axis (copies, pg/mL, cells/uL)
spans whole decades. Cytokines are small multiples, one panel per analyte, each with the
patient's baseline and the fold lines the CRS rules look at (`cytokine_panels`).

The builders take plain frames (columns named below) and return a `Figure`; `patient.py` decides
what is drawable and embeds the figure with `plots.svg`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from pipelines.derived.crs import CrsRule
from pipelines.reports.plots import COLOURS, FAIL_COLOUR, data_gid, new_figure, styled

DAY_LABEL = "study day (0 = infusion; square-root scale)"
WIDTH_IN = 10.4
"""Figure width: the page's column, less its margins."""
HEIGHT_IN = 2.9
MARGIN_LEFT_IN, MARGIN_BOTTOM_IN, MARGIN_TOP_IN = 0.85, 0.75, 0.3
"""Room for the y label and ticks, the two-line day labels and the x label, the title."""
LEGEND_WIDTH_IN = 2.5
"""Room right of the axes for a legend (its longest entries are ~40 characters)."""
MIN_TICK_GAP_PX = 30
"""Timepoint labels closer than this to the previous label are not written (their tick stays)."""
PANEL_COLUMNS = 4
PANEL_DAY_LABEL = "study day (sqrt scale)"
PANEL_HEIGHT_IN = 1.75
PANEL_TOP_IN, PANEL_BOTTOM_IN = 0.55, 1.55
"""Room above the grid for the title, below it for the day labels and the legend."""
MARKER = 5.5
REFERENCE_COLOUR = "#555555"
BASELINE_FOLD = 10.0
"""The fold line drawn in every cytokine panel besides the rules' own thresholds."""


@dataclass(frozen=True)
class LinearAxis:
    """A linear y axis from 0 that reaches at least `min_top` (in the axis' unit), or exactly
    `fixed_top` when the scale has a natural end (100 % of a parent, grade 4)."""

    min_top: float
    fixed_top: float | None = None

    def apply(self, axes: Axes, values: Sequence[float]) -> None:
        if self.fixed_top is not None:
            axes.set_ylim(0, self.fixed_top)
            return
        highest = max((v for v in values if math.isfinite(v)), default=0.0)
        axes.set_ylim(0, max(highest * 1.15, self.min_top))


PERCENT_AXIS = LinearAxis(min_top=10.0)
"""% of a parent population: at least 0-10 %, so a few tenths of a percent stay near the floor."""
SUBSET_AXIS = LinearAxis(min_top=100.0, fixed_top=100.0)
RATIO_AXIS = LinearAxis(min_top=2.0)
"""CD4:CD8: at least 0-2, so the 1:1 line sits mid-axis and a flat ratio looks flat."""
CELLS_AXIS = LinearAxis(min_top=10.0)
GRADE_AXIS = LinearAxis(min_top=4.0, fixed_top=4.4)
"""ASTCT grades 0-4 (a little headroom so grade 4 points are not cut by the frame)."""


@dataclass(frozen=True)
class Layer:
    """Points of one kind on a chart: a frame with `study_day`, `timepoint` and `value`."""

    label: str
    points: pd.DataFrame
    colour: str = COLOURS[0]
    open_marker: str | None = None
    """Draw as open markers of this shape, unjoined (censored, below a limit); None: filled
    circles joined by a line."""


def reference_gid(kind: str) -> str:
    """A unique SVG id for a reference line (LOQ, baseline, threshold): not a data mark."""
    return "ref-" + data_gid(kind).removeprefix("data-")


def timepoints_of(frames: Sequence[pd.DataFrame]) -> dict[float, str]:
    """Study day -> timepoint name over the frames (the first name where two share a day)."""
    days: dict[float, str] = {}
    for frame in frames:
        if "timepoint" not in frame.columns:
            continue
        for day, timepoint in zip(frame["study_day"], frame["timepoint"], strict=True):
            if pd.notna(day):
                days.setdefault(float(day), str(timepoint))
    return days


def _root(days: np.ndarray) -> np.ndarray:
    return np.sign(days) * np.sqrt(np.abs(days))


def _square(roots: np.ndarray) -> np.ndarray:
    return np.sign(roots) * roots**2


def day_axis(
    axes: Axes, days: Sequence[float], timepoints: Mapping[float, str], width_px: float
) -> None:
    """x on a square-root scale of study days (negative days mirrored), from the first to the
    last day with a margin; a tick under every day sampled, labelled with its timepoint and day
    where there is room. Axes sharing x with `axes` get the same."""
    axes.set_xscale("function", functions=(_root, _square))
    low, high = (float(v) for v in _root(np.array([min(days), max(days)])))
    margin = max((high - low) * 0.04, 0.3)
    axes.set_xlim(*_square(np.array([low - margin, high + margin])))
    if not timepoints:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        per_px = (high - low + 2 * margin) / width_px
        roots = {day: float(_root(np.array(day))) for day in timepoints}
        kept: list[float] = []
        for day in sorted(timepoints):
            if not kept or (roots[day] - roots[kept[-1]]) / per_px >= MIN_TICK_GAP_PX:
                kept.append(day)
        axes.set_xticks(kept, [f"{timepoints[d]}\n{d:g}" for d in kept])
        axes.set_xticks(sorted(timepoints), minor=True)


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade(value: float, _position: object = None) -> str:
    """A decade tick as plain text: 0.1 to 1000 written out, others as 10 with a superscript
    (plain text, not mathtext: it stays searchable and costs no parsing)."""
    exponent = round(math.log10(value))
    if -1 <= exponent <= 3:
        return f"{10.0**exponent:g}"
    return "10" + str(exponent).translate(SUPERSCRIPTS)


def log_decades(axes: Axes, values: Sequence[float], minor: bool = True) -> None:
    """A log y axis over whole decades holding every value, at least one decade tall; `minor`
    ticks at 2-9 of each decade (left out in small panels, where they crowd)."""
    positive = [v for v in values if math.isfinite(v) and v > 0]
    low = 10.0 ** math.floor(math.log10(min(positive)))
    high = 10.0 ** math.ceil(math.log10(max(positive)))
    axes.set_yscale("log")
    axes.set_ylim(low, max(high, low * 10))
    axes.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
    axes.yaxis.set_major_formatter(FuncFormatter(decade))
    axes.yaxis.set_minor_formatter(NullFormatter())
    if not minor:
        axes.yaxis.set_minor_locator(NullLocator())


def _draw(axes: Axes, layer: Layer) -> None:
    points = layer.points.sort_values("study_day", kind="stable")
    if layer.open_marker is None:
        axes.plot(
            points["study_day"], points["value"], marker="o", markersize=MARKER, linewidth=1.6,
            color=layer.colour, label=layer.label, gid=data_gid(layer.label),
        )  # fmt: skip
        return
    axes.plot(
        points["study_day"], points["value"], linestyle="none", marker=layer.open_marker,
        markersize=MARKER + 1, markerfacecolor="white", markeredgewidth=1.4, color=layer.colour,
        label=layer.label, gid=data_gid(layer.label),
    )  # fmt: skip


def _values(layers: Sequence[Layer]) -> list[float]:
    return [float(v) for layer in layers for v in layer.points["value"]]


def _days(layers: Sequence[Layer]) -> list[float]:
    return [float(d) for layer in layers for d in layer.points["study_day"]]


def time_series(
    title: str, y_label: str, layers: Sequence[Layer], y_axis: LinearAxis | None,
    references: Sequence[tuple[float, str]] = (), spans: Sequence[tuple[float, float, str]] = (),
) -> Figure:  # fmt: skip
    """Layers over study days: linear from 0 (`y_axis`) or, when None, log in whole decades;
    `references` are dashed horizontal lines (value, legend text), `spans` shaded day ranges."""
    legend = len(layers) > 1 or references or spans or any(layer.open_marker for layer in layers)
    figure = new_figure(WIDTH_IN, HEIGHT_IN, fixed_margins=True)
    # fixed margins (room for the legend on the right): the constrained layout would measure
    # every label once more, which costs as much as drawing the figure
    right = LEGEND_WIDTH_IN if legend else 0.2
    axes = styled(figure.add_axes((
        MARGIN_LEFT_IN / WIDTH_IN, MARGIN_BOTTOM_IN / HEIGHT_IN,
        1 - (MARGIN_LEFT_IN + right) / WIDTH_IN, 1 - (MARGIN_BOTTOM_IN + MARGIN_TOP_IN) / HEIGHT_IN,
    )))  # fmt: skip
    for start, end, label in spans:
        axes.axvspan(start, end, color="#CC79A7", alpha=0.18, linewidth=0, label=label,
                     gid=reference_gid("span"))  # fmt: skip
    for value, label in references:
        axes.axhline(value, color=REFERENCE_COLOUR, linestyle="--", linewidth=1, label=label,
                     gid=reference_gid(label))  # fmt: skip
    for layer in layers:
        _draw(axes, layer)
    values = _values(layers) + [value for value, _ in references]
    if y_axis is None:
        log_decades(axes, values)
    else:
        y_axis.apply(axes, values)
    days = _days(layers) + [d for start, end, _ in spans for d in (start, end)]
    width_px = (WIDTH_IN - MARGIN_LEFT_IN - right) * 100
    day_axis(axes, days, timepoints_of([layer.points for layer in layers]), width_px)
    axes.set_xlabel(DAY_LABEL)
    axes.set_ylabel(y_label)
    axes.set_title(title, loc="left", fontweight="bold")
    if legend:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return figure


# --- cytokines ----------------------------------------------------------------------------------

CENSORED_MARKERS = {"below_lloq": "v", "not_detected": "v", "above_uloq": "^"}
CENSORED_WORDS = {
    "below_lloq": "below LLOQ (open, at the LLOQ)",
    "not_detected": "below LLOQ (open, at the LLOQ)",
    "above_uloq": "above ULOQ (open, at the ULOQ)",
}


@dataclass(frozen=True)
class FoldLine:
    """A horizontal line in one analyte's panel: `value` pg/mL over the days `first`-`last`
    (None: the whole axis)."""

    value: float
    label: str
    style: str
    first: float | None = None
    last: float | None = None


def fold_lines(
    analyte: str, baseline_pg_ml: float | None, rules: Sequence[CrsRule]
) -> list[FoldLine]:
    """The lines of one analyte's panel: its baseline (dashed), 10x baseline (dotted) and each
    rule that looks at this analyte as its threshold over its window of study days (a fold rule
    as a multiple of the baseline, a concentration rule at its pg/mL)."""
    lines: list[FoldLine] = []
    has_baseline = baseline_pg_ml is not None and baseline_pg_ml > 0
    if has_baseline:
        lines += [
            FoldLine(baseline_pg_ml, "patient baseline", "--"),
            FoldLine(baseline_pg_ml * BASELINE_FOLD, f"{BASELINE_FOLD:g}x baseline", ":"),
        ]
    for rule in rules:
        if not rule.considers(analyte):
            continue
        window = f"days {rule.window_first_day} to {rule.window_last_day}"
        if rule.kind == "fold_change" and has_baseline and rule.min_fold:
            value, label = baseline_pg_ml * rule.min_fold, f"rule: {rule.min_fold:g}x baseline"
        elif rule.kind == "concentration" and rule.thresholds_pg_ml:
            value = rule.thresholds_pg_ml[analyte]
            label = f"rule: {value:g} pg/mL"
        else:
            continue
        lines.append(FoldLine(value, f"{label}, {window}", "-.", rule.window_first_day,
                              rule.window_last_day))  # fmt: skip
    return lines


def _panel(axes: Axes, analyte: str, samples: pd.DataFrame, lines: Sequence[FoldLine],
           alert_days: Sequence[float], colour: str) -> None:  # fmt: skip
    axes.set_gid(f"panel-{data_gid(analyte).removeprefix('data-')}")
    for day in alert_days:
        axes.axvline(day, color=FAIL_COLOUR, linewidth=1.2, alpha=0.6, label="CRS rule alert",
                     gid=reference_gid("alert"))  # fmt: skip
    for line in lines:
        low, high = axes.get_xlim()
        start = low if line.first is None else max(line.first, low)
        end = high if line.last is None else min(line.last, high)
        axes.plot([start, end], [line.value, line.value], linestyle=line.style,
                  color=REFERENCE_COLOUR, linewidth=1, label=line.label,
                  gid=reference_gid(line.label))  # fmt: skip
        axes.set_xlim(low, high)
    exact = samples[samples["censoring"] == "none"]
    _draw(axes, Layer("measured", exact, colour))
    for censoring, group in samples[samples["censoring"] != "none"].groupby("censoring"):
        marker = CENSORED_MARKERS.get(str(censoring), "o")
        _draw(axes, Layer(CENSORED_WORDS.get(str(censoring), str(censoring)), group, colour,
                          open_marker=marker))  # fmt: skip
    axes.set_title(analyte, loc="left", fontweight="bold")


def cytokine_panels(
    title: str, samples: pd.DataFrame, baselines: Mapping[str, float], rules: Sequence[CrsRule],
    alert_days: Sequence[float],
) -> Figure:  # fmt: skip
    """One log-pg/mL panel per analyte of `samples` (columns analyte, timepoint, study_day,
    value, censoring; only drawable values), sharing the study-day axis; `baselines` are the
    patient's baseline pg/mL by analyte, `alert_days` the days a CRS rule alerted."""
    analytes = sorted(samples["analyte"].unique())
    rows = math.ceil(len(analytes) / PANEL_COLUMNS)
    columns = min(PANEL_COLUMNS, len(analytes))
    height = PANEL_HEIGHT_IN * rows + PANEL_TOP_IN + PANEL_BOTTOM_IN
    figure = new_figure(WIDTH_IN, height, fixed_margins=True)
    # fixed margins instead of the constrained layout: laying out ten panels' labels costs more
    # than drawing them, and the grid's margins are known in advance
    margins = {
        "left": 0.75 / WIDTH_IN, "right": 1 - 0.15 / WIDTH_IN, "top": 1 - PANEL_TOP_IN / height,
        "bottom": PANEL_BOTTOM_IN / height, "hspace": 0.75, "wspace": 0.3,
    }  # fmt: skip
    grid = figure.subplots(rows, columns, sharex=True, squeeze=False, gridspec_kw=margins)
    days = [float(d) for d in samples["study_day"]] + list(alert_days)
    day_axis(grid[0, 0], days, timepoints_of([samples]), WIDTH_IN * 80 / columns)
    for index, axes in enumerate(grid.flat):
        styled(axes)
        if index >= len(analytes):
            axes.set_visible(False)
            continue
        analyte = analytes[index]
        group = samples[samples["analyte"] == analyte]
        column = index % columns
        last_row = index + columns >= len(analytes)
        lines = fold_lines(analyte, baselines.get(analyte), rules)
        _panel(axes, analyte, group, lines, alert_days, COLOURS[0])
        log_decades(axes, [*group["value"], *(line.value for line in lines)], minor=False)
        if column == 0:
            axes.set_ylabel("pg/mL (log)")
        if last_row:
            axes.tick_params(axis="x", labelbottom=True)
            axes.set_xlabel(PANEL_DAY_LABEL)
    figure.suptitle(title, x=0.01, y=1 - 0.08 / height, ha="left", va="top", fontweight="bold",
                    fontsize=10)  # fmt: skip
    handles: dict[str, object] = {}
    for axes in grid.flat:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncols=min(3, len(handles)),
                  bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    return figure


def alert_days_of(alerts: pd.DataFrame) -> list[float]:
    """The distinct study days on which a CRS rule raised an alert."""
    days = alerts["study_day"].dropna().unique() if len(alerts) else np.array([])
    return sorted(float(d) for d in days)
