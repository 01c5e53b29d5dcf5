"""A patient page from partial warehouse tables: every section says what it lacks, a chart with
nothing to draw is replaced by a one-line note (also returned to the run), and CAR copies are drawn
by their result (the car_copies contract: quantified, below_loq, not_detected, not_measured).

The warehouse is an empty one (`connect` gives every table as an empty view) with the tables a test
needs replaced by frames conformed to their schema."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.derived.settings import DerivedSettings
from pipelines.reports.figures import LeftOut
from pipelines.reports.patient import patient_page
from pipelines.settings import Settings
from pipelines.warehouse import conform, connect
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
        con.register(name, _arrow(name, rows))
    return con


def page(tmp_path: Path, **tables: list[dict]) -> tuple[str, LeftOut]:
    left_out = LeftOut()
    settings, derived = Settings.load(tmp_path), DerivedSettings.load(tmp_path)
    markup = patient_page(warehouse(tmp_path, **tables), "P001", settings, derived, left_out)
    return markup, left_out


def svg(markup: str, title: str) -> str | None:
    match = re.search(
        rf'<svg class="plot"[^>]*aria-label="{re.escape(title)}".*?</svg>', markup, re.S
    )
    return match.group(0) if match else None


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


def _loq_line_y(chart: str) -> float:
    return float(re.search(r'<line class="ref" x1="[\d.]+" y1="([\d.]+)"', chart).group(1))


def _filled(chart: str) -> list[str]:
    return re.findall(r'<circle class="point" [^>]*><title>([^<]*)</title>', chart)


def test_copies_are_drawn_by_their_result(tmp_path):
    markup, left_out = page(tmp_path, car_copies=CONTRACT_ROWS)
    chart = svg(markup, TITLE)
    assert chart is not None and left_out.lines == []
    assert _filled(chart) == ["copies/ug: day 7, 2e+04", "copies/ug: day 14, 3e+04"]
    assert "LOQ 50 copies/ug" in chart
    # below the LOQ: an open circle at the kept estimate (30), not at 0 and not at the LOQ
    hollow = re.findall(r'class="point censored" cx="[\d.]+" cy="([\d.]+)"[^>]*><title>([^<]*)<',
                        chart)  # fmt: skip
    assert [title for _, title in hollow] == ["copies/ug: day 60, censored at 30"]
    assert float(hollow[0][0]) > _loq_line_y(chart)  # drawn lower on the page than the LOQ
    # not detected: a triangle on the LOQ line, labelled
    triangle = re.search(r'class="point labelled" d="M[\d.]+,([\d.]+) [^>]*><title>([^<]*)<', chart)
    assert float(triangle.group(1)) + 4 == pytest.approx(_loq_line_y(chart), abs=0.11)
    assert triangle.group(2) == "copies/ug: day -7, not detected"
    assert ">not detected</text>" in chart
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
    assert _filled(chart) == ["copies/ug: day 7, 2e+04"]
    assert "copies/ug: day 60, censored at 50" in chart  # no estimate kept: at the LOQ, as before
    assert "copies/ug: day -7, not detected" in chart
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
    assert "CD4:CD8: day -7, 2</title>" in ratio  # 8000 / 4000
    assert "CAR+ % CD3: day -7, 0</title>" in svg(markup, "P001: CAR+ % of CD3+ T cells")


def _cytokine(timepoint: str, day: int, analyte: str, pg_ml: float, censoring: str = "none"):
    return {
        "patient_id": "P001", "timepoint": timepoint, "study_day": day, "analyte": analyte,
        "concentration_pg_ml": pg_ml if censoring == "none" else None, "censoring": censoring,
        "censor_limit_pg_ml": pg_ml if censoring != "none" else None, "run_id": "cba1",
        "source_sha256": "d" * 64, "processed_at": pd.Timestamp("2026-06-01", tz="UTC"),
    }  # fmt: skip


def test_cytokines_of_one_timepoint_are_charted_without_fold_changes(tmp_path):
    rows = [_cytokine("D4", 4, "IL-6", 350.0), _cytokine("D4", 4, "IFN-γ", 5.0, "below_lloq")]
    markup, left_out = page(tmp_path, cytokines=rows)
    chart = svg(markup, "P001: plasma cytokines")
    assert "IL-6: day 4, 350</title>" in chart
    assert "IFN-γ: day 4, censored at 5</title>" in chart
    assert "no baseline (BL or SCREEN) cytokine sample for this patient yet" in markup
    assert left_out.lines == []


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
