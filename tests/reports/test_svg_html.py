"""The chart and page primitives, without a browser."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.reports import html
from pipelines.reports import svg as plot
from pipelines.reports.svg import Chart, Series, linear_ticks, log_ticks, render


def test_log_axis_spans_whole_decades():
    low, high, ticks = log_ticks(37.0, 2.1e5)
    assert (low, high) == (10.0, 1e6)
    assert ticks == [10.0, 100.0, 1000.0, 1e4, 1e5, 1e6]


def test_linear_axis_is_rounded():
    low, high, ticks = linear_ticks(-7, 90)
    assert low <= -7 and high >= 90 and ticks[0] == low and ticks[-1] == high


def test_chart_draws_points_reference_lines_spans_and_marks():
    svg = render(Chart(
        title="t <&>", x_label="day", y_label="copies", log_y=True,
        series=[Series("a", [(1, 100.0), (7, 5000.0)], hollow=[(-7, 50.0)])],
        hlines=[(50.0, "LOQ")], spans=[(7, 28, "aplasia")], marks=[(4, "alert D4")],
    ))  # fmt: skip
    assert svg.startswith('<svg class="plot"')
    assert len(re.findall(r'<circle class="point"', svg)) == 2
    assert 'class="point censored"' in svg and 'class="ref"' in svg
    assert 'class="span"' in svg and 'class="mark"' in svg
    assert "t &lt;&amp;&gt;" in svg  # text is escaped


def test_a_chart_with_nothing_to_draw_is_refused():
    with pytest.raises(ValueError, match="nothing to draw"):
        render(Chart(title="empty", x_label="x", y_label="y", series=[Series("a", [])]))


def test_page_is_self_contained_and_says_research_use():
    page = html.page("Report", [html.section("S", html.absent("No data."))])
    assert "research use; not a clinical decision" in page.lower()
    assert "default-src 'none'" in page  # the browser refuses anything from elsewhere
    assert not re.search(r"(src|href)=\"https?:", page)


def test_table_cells_leave_missing_values_empty():
    markup = html.table(["a", "b", "c"], [[None, float("nan"), 207371.8]])
    assert markup.count("<td></td>") == 2
    assert "207,372" in markup


def test_a_file_name_in_a_cell_cannot_reorder_the_page():
    markup = html.table(["file"], [["evil\u202ecod.fcs\n<b>"]])
    assert "<td>evil\\u202ecod.fcs\\n&lt;b&gt;</td>" in markup


def test_values_that_cannot_be_drawn_are_left_out():
    chart = Chart(
        title="t", x_label="day", y_label="copies", log_y=True,
        series=[Series("a", [(1, 100.0), (2, float("nan")), (3, 0.0), (float("inf"), 5.0)],
                       hollow=[(4, -1.0)], labelled=[(5, float("nan"), "not detected")])],
        hlines=[(float("nan"), "LOQ unknown"), (50.0, "LOQ")], marks=[(float("nan"), "alert")],
    )  # fmt: skip
    kept = plot.drawable(chart)
    assert kept.series[0].points == [(1, 100.0)]
    assert kept.series[0].hollow == [] and kept.series[0].labelled == []
    assert kept.hlines == [(50.0, "LOQ")] and kept.marks == []
    svg = render(chart)
    assert len(re.findall(r'<circle class="point"', svg)) == 1
    assert "LOQ unknown" not in svg and "nan" not in svg.lower()


def test_only_undrawable_values_mean_nothing_to_draw():
    nothing = Chart(
        title="t", x_label="x", y_label="y", log_y=True,
        series=[Series("a", [(1, 0.0), (2, float("nan"))])], hlines=[(50.0, "LOQ")],
    )  # fmt: skip
    assert not plot.has_points(nothing)
    assert plot.has_points(
        Chart(title="t", x_label="x", y_label="y", series=[Series("a", [(1, 0.0)])])
    )


def test_one_point_is_a_chart():
    svg = render(Chart(title="t", x_label="x", y_label="y", log_y=True,
                       series=[Series("a", [(-7, 40.0)])]))  # fmt: skip
    assert len(re.findall(r'<circle class="point"', svg)) == 1


def test_a_labelled_point_is_a_triangle_with_its_text():
    svg = render(Chart(title="t", x_label="x", y_label="y", log_y=True,
                       series=[Series("a", [], labelled=[(14, 50.0, "not detected")])]))  # fmt: skip
    assert re.search(r'<path class="point labelled" d="M[\d.]+,[\d.]+ L[\d.]+,[\d.]+ L', svg)
    assert ">not detected</text>" in svg and "a: day 14, not detected" in svg


coordinates = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=150, deadline=None)
@given(
    points=st.lists(st.tuples(coordinates, coordinates), max_size=6),
    hollow=st.lists(st.tuples(coordinates, coordinates), max_size=3),
    line=coordinates, log_y=st.booleans(),
)  # fmt: skip
def test_any_values_render_or_say_there_is_nothing(points, hollow, line, log_y):
    chart = Chart(title="t", x_label="x", y_label="y", log_y=log_y,
                  series=[Series("a", points, hollow=hollow)], hlines=[(line, "ref")])  # fmt: skip
    if not plot.has_points(chart):
        with pytest.raises(ValueError, match="nothing to draw"):
            render(chart)
        return
    svg = render(chart)
    numbers = re.findall(r'(?:cx|cy|x1|y1|x|y|d)="([^"]*)"', svg)
    assert not any("nan" in n or "inf" in n for n in numbers)
    drawn = len(re.findall(r"<circle ", svg))
    assert drawn == len(plot.drawable(chart).series[0].points) + len(
        plot.drawable(chart).series[0].hollow
    )
