"""The chart and page primitives, without a browser."""

from __future__ import annotations

import re

import pytest

from pipelines.reports import html
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
