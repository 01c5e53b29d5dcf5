"""The page primitives, without a browser."""

from __future__ import annotations

import re

from pipelines.reports import html


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
