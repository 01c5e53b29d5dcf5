"""A patient page from partial warehouse tables: every section says what it lacks, a chart with
nothing to draw is replaced by a one-line note (also returned to the run), and CAR copies are drawn
by their result (the car_copies contract: quantified, below_loq, not_detected, not_measured).

The charts are read back with tests/reports/figure_marks.py.

The warehouse is an empty one (`connect` gives every table as an empty view) with the tables a test
needs replaced by frames conformed to their schema."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.derived.crs import load_rules
from pipelines.derived.settings import SHIPPED_CRS_RULES, DerivedSettings
from pipelines.reports.figures import LeftOut
from pipelines.reports.patient import patient_page
from pipelines.settings import Settings
from pipelines.warehouse import conform, connect, view_query
from tests.reports.figure_marks import groups, line_y, marks, open_marks, panel
from tests.reports.figure_marks import plot as svg
from validation.schemas import TABLES

LOQ_PER_REACTION, DNA_NG = 10.0, 200.0
LOQ_PER_UG = LOQ_PER_REACTION * 1000 / DNA_NG  # 50 copies/ug
NO_DNA = "no DNA input for this sample: add dna_input_ng to the manifest"


def _arrow(name: str, rows: list[dict]) -> pa.Table:
    """The rows as the table's Arrow schema, plus any column the schema does not have yet (the
    car_copies result columns before their schema lands) as strings."""
    frame = pd.DataFrame(rows)
    known = [c for c in frame.columns if c in TABLES[name].column_names]
    table = conform(frame[known], TABLES[name])
    for extra in (c for c in frame.columns if c not in TABLES[name].column_names):
        table = table.append_column(extra, pa.array(frame[extra], type=pa.string()))
    return table


def warehouse(tmp_path: Path, **tables: list[dict]) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "warehouse")
    for name, rows in tables.items():
        con.execute(f'DROP VIEW "{name}"')
        con.register(f"{name}_rows", _arrow(name, rows))
        con.execute(f'CREATE VIEW "{name}" AS {view_query(name, f"SELECT * FROM {name}_rows")}')
    return con


def page(tmp_path: Path, **tables: list[dict]) -> tuple[str, LeftOut]:
    left_out = LeftOut()
    settings, derived = Settings.load(tmp_path), DerivedSettings.load(tmp_path)
    con, rules = warehouse(tmp_path, **tables), load_rules(SHIPPED_CRS_RULES)
    markup = patient_page(con, "P001", settings, derived, rules, left_out)
    return markup, left_out


def copies_row(timepoint: str, day: int, copies_per_ug: float | None, **fields) -> dict:
    row = {
        "patient_id": "P001", "timepoint": timepoint, "study_day": day, "run_id": "plate1",
        "sample_name": f"P001_{timepoint}", "target": "CAR", "copies_per_ug": copies_per_ug,
        "copies_per_reaction": None if copies_per_ug is None else copies_per_ug * DNA_NG / 1000,
        "dna_input_ng": DNA_NG, "below_loq": False, "below_lod": False,
        "loq_copies_per_reaction": LOQ_PER_REACTION, "plate_qc_verdict": "PASS",
        "source_sha256": "a" * 64,
    }  # fmt: skip
    return {**row, **fields}


CONTRACT_ROWS = [
    copies_row("BL", -7, None, below_loq=True, below_lod=True, result="not_detected",
               result_reason="no replicate amplified (0 of 3)"),
    copies_row("D7", 7, 20_000.0, result="quantified", result_reason=None),
    copies_row("D14", 14, 30_000.0, result="quantified", result_reason=None),
    copies_row("M2", 60, 30.0, below_loq=True, result="below_loq",
               result_reason="detected in 2 of 3 replicates, 6 copies/reaction < LOQ 10"),
    copies_row("M3", 90, None, dna_input_ng=None, result="not_measured", result_reason=NO_DNA),
]  # fmt: skip
TITLE = "P001: CAR transgene copies per ug gDNA"


def test_copies_are_drawn_by_their_result(tmp_path):
    markup, left_out = page(tmp_path, car_copies=CONTRACT_ROWS)
    chart = svg(markup, TITLE)
    assert chart is not None and left_out.lines == []
    quantified = marks(chart, "quantified")
    assert len(quantified) == 2  # D7 and D14
    assert quantified[1][1] < quantified[0][1]  # 30,000 at day 14 is drawn above 20,000 at day 7
    assert "LOQ 50 copies/µg" in chart
    loq = line_y(chart, "loq")
    # below the LOQ: an open circle at the kept estimate (30), below the LOQ line, not at it
    below = marks(chart, "detected-below-the-loq")
    assert len(below) == 1 and below[0][1] > loq + 5 and open_marks(chart, "detected-below-the-loq")
    assert below[0][0] > quantified[1][0]  # day 60, right of day 14
    # not detected: an open triangle on the LOQ line, said in the legend, left of every other point
    not_detected = marks(chart, "not-detected")
    assert len(not_detected) == 1 and not_detected[0][1] == pytest.approx(loq, abs=0.01)
    assert not_detected[0][0] < quantified[0][0] and open_marks(chart, "not-detected")
    assert ">not detected (at the LOQ)</text>" in chart
    # not measured: not a point, listed under the chart with its reason
    listed = markup[markup.index("Not on the chart") :]
    listed = listed[: listed.index("</table>")]
    assert f"<td>not measured</td><td>{NO_DNA}</td>" in listed
    assert listed.count("<tr>") == 2  # the header and M3
    assert "1 CAR qPCR sample(s) after infusion could not be measured" not in markup  # no kinetics


def test_rows_without_the_result_columns_are_read_from_their_flags(tmp_path):
    """Lab homes written before the contract stored 0 copies below the LOQ and no reason."""
    legacy = [
        copies_row("BL", -7, 0.0, below_loq=True, below_lod=True),
        copies_row("D7", 7, 20_000.0),
        copies_row("M2", 60, 0.0, below_loq=True),
        copies_row("M3", 90, None, dna_input_ng=None),
    ]
    markup, left_out = page(tmp_path, car_copies=legacy)
    chart = svg(markup, TITLE)
    assert len(marks(chart, "quantified")) == 1
    loq = line_y(chart, "loq")
    # no estimate kept: below the LOQ is drawn at the LOQ, as before
    [(_, below_y)] = marks(chart, "detected-below-the-loq")
    assert below_y == pytest.approx(loq, abs=0.01)
    assert len(marks(chart, "not-detected")) == 1
    assert f"<td>not measured</td><td>{NO_DNA}</td>" in markup


def test_no_copies_at_all_leave_the_chart_out_with_one_note(tmp_path):
    rows = [copies_row(t, d, None, dna_input_ng=None) for t, d in (("D7", 7), ("D14", 14))]
    markup, left_out = page(tmp_path, car_copies=rows)
    assert svg(markup, TITLE) is None
    note = f"{TITLE}: not drawn, no sample has copies per ug gDNA to draw (see the list below)."
    assert left_out.lines == [note]
    assert f'<p class="absent">{note}</p>' in markup
    assert markup.count(f"<td>not measured</td><td>{NO_DNA}</td>") == 2


def test_kinetics_say_which_samples_could_not_be_measured(tmp_path):
    rows = [copies_row("D7", 7, 20_000.0), copies_row("D14", 14, None, dna_input_ng=None)]
    kinetics = [{"patient_id": "P001", "cmax_copies_per_ug": 20_000.0, "tmax_day": 7,
                 "n_qpcr_samples": 1, "persistence_status": "persisting", "persistence_json": "[]",
                 "blq_handling": "as documented", "derived_from": "a" * 64,
                 "source_sha256": "b" * 64}]  # fmt: skip
    markup, _ = page(tmp_path, car_copies=rows, car_kinetics=kinetics)
    assert "1 CAR qPCR sample(s) after infusion could not be measured" in markup


def _tube(population: str, parent: str | None, count: int, pct: float | None) -> dict:
    return {
        "patient_id": "P001", "timepoint": "BL", "study_day": -7, "population": population,
        "parent": parent, "count": count, "pct_parent": pct, "cells_per_ul": count / 20,
        "source_sha256": "c" * 64, "dataset": 1, "gate_path": population,
    }  # fmt: skip


def test_a_baseline_t_cell_tube_without_car_cells_gets_its_charts_and_a_note(tmp_path):
    """The issue's crash: one baseline T-cell tube, no CAR+ events, so every memory subset of
    CAR+ has no % of parent."""
    tube = [
        _tube("CD3+ T cells", "Live", 14_000, 77.8), _tube("CAR+ T cells", "CD3+ T cells", 0, 0.0),
        _tube("CD4+", "CD3+ T cells", 8_000, 57.1), _tube("CD8+", "CD3+ T cells", 4_000, 28.6),
        *(_tube(f"CAR+ {s}", "CAR+ T cells", 0, None) for s in ("naive/TSCM", "TCM", "TEM")),
    ]  # fmt: skip
    markup, left_out = page(tmp_path, flow_populations=tube)
    assert left_out.lines == [
        "P001: memory subsets of CAR+ T cells: not drawn, no CAR+ T cells to divide into "
        "subsets in any blood tube yet."
    ]
    assert svg(markup, "P001: memory subsets of CAR+ T cells") is None
    assert "P001: memory subsets of CAR+ T cells: not drawn" in markup
    ratio = svg(markup, "P001: CD4:CD8 ratio of T cells")
    [(_, ratio_y)] = marks(ratio, "cd4-cd8")
    assert ratio_y < line_y(ratio, "1-1")  # 8000 / 4000 = 2, above the 1:1 line
    assert len(marks(svg(markup, "P001: CAR+ % of CD3+ T cells"), "car-of-cd3")) == 1


def _cytokine(timepoint: str, day: int, analyte: str, pg_ml: float, censoring: str = "none"):
    return {
        "patient_id": "P001", "timepoint": timepoint, "study_day": day, "analyte": analyte,
        "concentration_pg_ml": pg_ml if censoring == "none" else None, "censoring": censoring,
        "censor_limit_pg_ml": pg_ml if censoring != "none" else None, "run_id": "cba1",
        "source_sha256": "d" * 64, "processed_at": pd.Timestamp("2026-06-01", tz="UTC"),
    }  # fmt: skip


CYTOKINES = "P001: plasma cytokines"


def test_cytokines_of_one_timepoint_are_charted_without_fold_changes(tmp_path):
    rows = [_cytokine("D4", 4, "IL-6", 350.0), _cytokine("D4", 4, "IFN-γ", 5.0, "below_lloq")]
    markup, left_out = page(tmp_path, cytokines=rows)
    chart = svg(markup, CYTOKINES)
    assert len(marks(panel(chart, "il-6"), "measured")) == 1
    assert marks(panel(chart, "ifn"), "measured") == []
    assert len(marks(panel(chart, "ifn"), "below-lloq")) == 1
    assert not groups(chart, "ref-patient-baseline-")  # no baseline, so no fold lines
    assert "no baseline (BL or SCREEN) cytokine sample for this patient yet" in markup
    assert left_out.lines == []


def _fold(timepoint: str, day: int, analyte: str, pg_ml: float, baseline: float) -> dict:
    return {
        "patient_id": "P001", "timepoint": timepoint, "study_day": day, "analyte": analyte,
        "concentration_pg_ml": pg_ml, "censoring": "none", "baseline_pg_ml": baseline,
        "baseline_censoring": "none", "fold_change": pg_ml / baseline,
        "fold_change_bound": "exact", "derived_from": "d" * 64, "source_sha256": "d" * 64,
    }  # fmt: skip


def test_cytokines_are_one_panel_per_analyte_with_baseline_and_fold_lines(tmp_path):
    series = {"IL-6": (4.0, 80.0, 900.0), "IFN-γ": (10.0, 60.0, 5000.0), "MCP-1": (300.0,) * 3}
    rows = [
        _cytokine(t, d, analyte, values[i], "above_uloq" if values[i] == 5000.0 else "none")
        for analyte, values in series.items()
        for i, (t, d) in enumerate((("BL", -7), ("D4", 4), ("D7", 7)))
    ] + [_cytokine("D4", 4, "IL-10", 0.0, "not_measured")]  # fmt: skip
    folds = [
        _fold(t, d, analyte, values[i], values[0])
        for analyte, values in series.items()
        for i, (t, d) in enumerate((("BL", -7), ("D4", 4), ("D7", 7)))
    ]  # fmt: skip
    markup, left_out = page(tmp_path, cytokines=rows, cytokine_fold_changes=folds)
    chart = svg(markup, CYTOKINES)
    assert left_out.lines == []
    assert len(groups(chart, "panel-")) == 3  # IL-10 has no value: no panel, said below
    assert "No panel for IL-10: no value above 0 pg/mL with a study day." in markup
    for analyte_id in ("il-6", "ifn", "mcp-1"):
        one = panel(chart, analyte_id)
        drawn = marks(one, "measured") + marks(one, "above-uloq")
        assert len(drawn) == 3
        baseline = line_y(one, "patient-baseline")
        assert drawn[0][1] == pytest.approx(baseline, abs=0.01)  # BL sits on its baseline line
        assert line_y(one, "10x-baseline") < baseline  # ten times higher: up the page
        # the shipped rules' thresholds, over their window of days 0 to 7
        assert line_y(one, "rule-250x") < line_y(one, "rule-75x") < line_y(one, "10x-baseline")
    # IFN-γ at D7 was above the ULOQ: an open marker at the limit, named in the legend
    assert open_marks(panel(chart, "ifn"), "above-uloq")
    assert ">above ULOQ (open, at the ULOQ)</text>" in chart
    assert ">rule: 75x baseline, days 0 to 7</text>" in chart


def test_b_cells_counted_at_zero_are_not_called_uncounted(tmp_path):
    rows = [{
        "patient_id": "P001", "timepoint": t, "study_day": d, "b_cells_per_ul": 0.0,
        "b_cells_pct_of_lymphocytes": 0.0, "aplasia": True, "aplasia_basis": "cells_per_ul",
        "threshold_cells_per_ul": 10.0, "threshold_pct_of_lymphocytes": 1.0,
        "aplasia_onset_day": 7, "aplasia_onset_timepoint": "D7", "derived_from": "e" * 64,
        "source_sha256": "f" * 64,
    } for t, d in (("D7", 7), ("D14", 14))]  # fmt: skip
    markup, left_out = page(tmp_path, b_cell_aplasia=rows)
    assert "not counted" not in markup
    assert left_out.lines == [
        "P001: CD19+ B cells per uL: not drawn, no counted timepoint above 0 B cells/uL to draw "
        "on the log axis (see the table)."
    ]


def test_an_empty_warehouse_gives_a_page_of_notes(tmp_path):
    markup, left_out = page(tmp_path)
    assert "<svg" not in markup and left_out.lines == []
    for said in ("No kinetics", "No CAR qPCR results yet.", "No T-cell panel data yet.",
                 "No cytokine data yet.", "No B-cell panel data yet."):  # fmt: skip
        assert said in markup


def test_crs_grades_are_drawn_on_the_whole_grade_scale(tmp_path):
    rows = [{
        "patient_id": "P001", "study_day": d, "observation_date": pd.Timestamp("2026-03-10").date(),
        "temperature_c": 38.5, "fever": True, "hypotension": "none", "oxygen_support": "none",
        "crs_grade": g, "grade_scale": "ASTCT 2019", "grade_basis": "fever",
        "notice": "research use", "derived_from": "e" * 64, "source_sha256": "e" * 64,
    } for d, g in ((0, 0), (1, 1), (2, 1), (3, 0))]  # fmt: skip
    markup, left_out = page(tmp_path, crs_grades=rows)
    chart = svg(markup, "P001: CRS grade (ASTCT 2019)")
    assert left_out.lines == []
    drawn = marks(chart, "crs-grade")
    assert len(drawn) == 4
    zero, one = drawn[0][1], drawn[1][1]
    assert one < zero and drawn[2][1] == pytest.approx(one) and drawn[3][1] == pytest.approx(zero)
    assert ">4</text>" in chart and ">0</text>" in chart  # the whole scale, whatever was graded
