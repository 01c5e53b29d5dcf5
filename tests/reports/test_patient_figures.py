"""The patient page's figure builders (pipelines/reports/patient_figures.py), read back from the
matplotlib figures they return: axes ranges, tick labels, lines and markers."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from pipelines.derived.crs import CrsRule, load_rules
from pipelines.derived.settings import SHIPPED_CRS_RULES
from pipelines.reports import patient_figures as figures
from pipelines.reports.patient_figures import Layer

TIMEPOINTS = (("BL", -7), ("D1", 1), ("D4", 4), ("D7", 7), ("D10", 10), ("D14", 14), ("M3", 90))


def frame(values: list[float], **columns: list) -> pd.DataFrame:
    days = TIMEPOINTS[: len(values)]
    return pd.DataFrame({
        "timepoint": [t for t, _ in days], "study_day": [float(d) for _, d in days],
        "value": values, **columns,
    })  # fmt: skip


def test_a_flat_ratio_is_drawn_flat_on_an_axis_from_zero():
    """The issue's CD4:CD8 of 1.1 at every timepoint was drawn on a 1.0-1.12 axis."""
    flat = figures.time_series(
        "t", "CD4:CD8", [Layer("CD4:CD8", frame([1.1] * 6))], figures.RATIO_AXIS,
        references=[(1.0, "1:1")],
    )  # fmt: skip
    assert flat.axes[0].get_ylim() == (0.0, figures.RATIO_AXIS.min_top) == (0.0, 2.0)
    rising = figures.time_series(
        "t", "CD4:CD8", [Layer("r", frame([1.0, 3.0]))], figures.RATIO_AXIS
    )
    assert rising.axes[0].get_ylim() == pytest.approx((0.0, 3.45))  # the highest value + 15 %


def test_percentages_of_a_parent_span_the_whole_scale():
    subsets = figures.time_series(
        "t", "%", [Layer("TEM", frame([40.0, 41.0]))], figures.SUBSET_AXIS
    )
    assert subsets.axes[0].get_ylim() == (0.0, 100.0)


def test_log_axes_span_whole_decades_labelled_in_plain_text():
    figure = figures.time_series("t", "copies", [Layer("c", frame([37.0, 2.1e5]))], None)
    axes = figure.axes[0]
    assert axes.get_yscale() == "log" and axes.get_ylim() == pytest.approx((10.0, 1e6))
    one = figures.time_series("t", "copies", [Layer("c", frame([40.0]))], None)
    assert one.axes[0].get_ylim() == pytest.approx((10.0, 100.0))  # at least one decade
    assert [figures.decade(v) for v in (0.01, 0.1, 1, 100, 1000, 1e4, 1e6)] == [
        "10⁻²", "0.1", "1", "100", "1000", "10⁴", "10⁶",
    ]  # fmt: skip


def test_days_are_labelled_with_their_timepoints_where_there_is_room():
    figure = figures.time_series("t", "%", [Layer("a", frame([1.0] * 7))], figures.PERCENT_AXIS)
    axes = figure.axes[0]
    assert axes.get_xscale() == "function"
    assert [t.get_text() for t in axes.get_xticklabels()] == [
        f"{t}\n{d}" for t, d in TIMEPOINTS
    ]  # wide enough for every timepoint
    narrow = figures.new_figure(3, 2).add_subplot()
    figures.day_axis(narrow, [-7, 90], {d: t for t, d in TIMEPOINTS}, width_px=150)
    # on 150 px the square roots of -7..90 (with margins) give ~11.5 px per root unit: a label
    # needs 30 px (2.6 units) from the previous one, so D4, D7 and D10 stay unlabelled
    assert list(narrow.get_xticks()) == [-7, 1, 14, 90]
    ticked = {*narrow.get_xticks(), *narrow.get_xticks(minor=True)}
    assert ticked == {d for _, d in TIMEPOINTS}  # every day sampled has its tick


def test_fold_lines_follow_the_baseline_and_the_rules_that_apply():
    rules = load_rules(SHIPPED_CRS_RULES)  # 75x and 250x over days 0 to 7, every analyte
    lines = figures.fold_lines("IL-6", 4.0, rules)
    assert [(line.value, line.first, line.last) for line in lines] == [
        (4.0, None, None), (40.0, None, None), (300.0, 0, 7), (1000.0, 0, 7),
    ]  # fmt: skip
    assert lines[0].label == "patient baseline" and lines[2].label.startswith("rule: 75x")
    mcp1 = CrsRule(
        id="early_mcp1", title="MCP-1", kind="concentration", source="s", window_first_day=0,
        window_last_day=1, analytes=("MCP-1",), min_analytes=1, thresholds_pg_ml={"MCP-1": 1500.0},
    )  # fmt: skip
    # without a baseline no fold line, but an absolute threshold still applies
    assert [(line.value, line.label) for line in figures.fold_lines("MCP-1", None, [mcp1])] == [
        (1500.0, "rule: 1500 pg/mL, days 0 to 1")
    ]
    assert figures.fold_lines("IL-6", None, [mcp1]) == []
    # a concentration rule before a fold rule: still no fold line without a baseline
    assert len(figures.fold_lines("MCP-1", None, [mcp1, *rules])) == 1


def test_cytokine_panels_draw_censored_values_open_at_their_limit():
    samples = pd.concat([
        frame([4.0, 80.0, 900.0], analyte=["IL-6"] * 3, censoring=["none"] * 3),
        frame([2.0, 50.0, 5000.0], analyte=["IFN-γ"] * 3,
              censoring=["below_lloq", "none", "above_uloq"]),
    ])  # fmt: skip
    figure = figures.cytokine_panels("t", samples, {"IL-6": 4.0}, [], [4.0])
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title(loc="left") for axes in panels] == ["IFN-γ", "IL-6"]
    lines = {line.get_label(): line for line in panels[0].get_lines()}
    below, above = lines["below LLOQ (open, at the LLOQ)"], lines["above ULOQ (open, at the ULOQ)"]
    assert list(below.get_ydata()) == [2.0] and below.get_marker() == "v"
    assert list(above.get_ydata()) == [5000.0] and above.get_marker() == "^"
    assert to_hex(below.get_markerfacecolor()) == to_hex(above.get_markerfacecolor()) == "#ffffff"
    assert list(lines["measured"].get_ydata()) == [50.0]
    assert to_hex(lines["measured"].get_markerfacecolor()) != "#ffffff"
    assert "patient baseline" not in lines  # IFN-γ has no baseline here; IL-6 has
    il6 = {line.get_label(): line for line in panels[1].get_lines()}
    assert list(il6["patient baseline"].get_ydata()) == [4.0, 4.0]
    assert list(il6["10x baseline"].get_ydata()) == [40.0, 40.0]
    assert panels[0].get_shared_x_axes().joined(panels[0], panels[1])
    assert panels[1].get_ylim() == pytest.approx((1.0, 1000.0))
