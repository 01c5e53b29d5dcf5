"""The qPCR run pages and the QC page: every standard well on its curve, the plate map marking
exactly the failing wells, one Levey-Jennings chart per control with enough runs, a known 1-3s
run marked, and both pages opening offline in headless Chromium with every plot drawn.

Plates are built with the demo's plate builder, analysed by `qpcr.analysis` and put in a real
DuckDB warehouse with the table registry's schemas; QC series go through `qc_trends`' own
Levey-Jennings and Westgard code."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipelines import __version__
from pipelines.demo.qpcr_plates import GOOD_CURVES, build_plate
from pipelines.demo.trial import Sample
from pipelines.derived.qc_trends import levey_jennings
from pipelines.derived.settings import ControlTarget, DerivedSettings
from pipelines.home import LabHome
from pipelines.reports.figures import LeftOut
from pipelines.reports.html import write_page
from pipelines.reports.patient import qc_section
from pipelines.reports.qc import qc_page
from pipelines.reports.qpcr_run import (
    plate_position,
    plate_shape,
    run_page,
    run_page_link,
    runs_in_warehouse,
    well_marks,
    write_run_pages,
)
from pipelines.warehouse import conform, connect
from qpcr.analysis import analyse_plate
from qpcr.model import AMPLIFICATION_COLUMNS, QpcrPlate
from qpcr.readers import read_plate
from qpcr.settings import QpcrSettings
from tests.browser import inspect, png_is_blank
from validation.schemas import TABLES

SVG = "{http://www.w3.org/2000/svg}"
SETTINGS = QpcrSettings()


def demo_plate(run_id: str) -> QpcrPlate:
    """A 96-well duplex plate (CAR and RNaseP): 6 standard levels in triplicate, 3 NTCs, the
    positive control and two samples in triplicate."""
    sample = Sample("x", "P001", "D14", date(2026, 1, 1), 200.0)
    return build_plate(
        instrument_format="quantstudio-text", run_id=run_id, instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[("P001_D7", sample), ("P001_D14", sample)],
        curves=GOOD_CURVES, rng=np.random.default_rng(0), wells_per_plate=96,
    )  # fmt: skip


def failing_plate(run_id: str) -> tuple[QpcrPlate, set[str], set[str]]:
    """The demo plate with a contaminated NTC, a CAR standard without a Cq and an omitted sample
    well; returns it with the wells that fail QC and the well that was excluded."""
    plate = demo_plate(run_id)
    wells = plate.wells
    car = wells["target"] == "CAR"
    ntc = wells[car & (wells["task"] == "NTC")].index[0]
    wells.loc[ntc, ["cq", "amplified", "amp_status"]] = [31.2, True, "AMP"]
    standard = wells[car & (wells["task"] == "STANDARD")].index[4]
    wells.loc[standard, ["cq", "amplified", "amp_status"]] = [np.nan, False, "Undetermined"]
    omitted_well = wells[wells["sample_name"] == "P001_D7"]["well"].iloc[0]
    wells.loc[wells["well"] == omitted_well, "omitted"] = True
    return plate, {wells.loc[ntc, "well"], wells.loc[standard, "well"]}, {omitted_well}


def stored(con: duckdb.DuckDBPyConnection, plates: list[QpcrPlate]) -> duckdb.DuckDBPyConnection:
    """The plates' analysed `qpcr_wells` and `qpcr_runs` rows as the warehouse holds them."""
    for name, part in (("qpcr_wells", "wells"), ("qpcr_runs", "runs")):
        frames = []
        for number, plate in enumerate(plates):
            rows = getattr(analyse_plate(plate, SETTINGS), part)
            frames.append(rows.assign(
                source_sha256=f"{number:064d}", pipeline_version=__version__,
                processed_at=datetime(2026, 5, 1, 12, tzinfo=UTC),
            ))  # fmt: skip
        con.execute(f'DROP VIEW "{name}"')
        con.register(name, conform(pd.concat(frames, ignore_index=True), TABLES[name]))
    return con


def plot(markup: str, label_start: str) -> ET.Element:
    """The inline SVG whose aria-label starts with `label_start`, parsed."""
    match = re.search(
        rf'<svg class="plot"[^>]*aria-label="{re.escape(label_start)}[^"]*".*?</svg>', markup, re.S
    )
    assert match, f"no plot labelled {label_start!r}"
    return ET.fromstring(match.group(0).replace("&nbsp;", " "))


def markers(figure: ET.Element, kind: str) -> list[tuple[float, float]]:
    """Positions of the markers in every artist whose gid names `kind` (`data_gid`)."""
    pattern = re.compile(rf"data-{re.escape(kind)}-\d+$")
    groups = [g for g in figure.iter(f"{SVG}g") if pattern.match(g.get("id", ""))]
    return [
        (round(float(use.get("x")), 1), round(float(use.get("y")), 1))
        for group in groups for use in group.iter(f"{SVG}use")
    ]  # fmt: skip


def test_every_standard_well_is_on_its_curve(tmp_path):
    plate, _, _ = failing_plate("run-std")
    markup = run_page(runs_in_warehouse(stored(connect(tmp_path), [plate]))[0], SETTINGS, LeftOut())
    for target in ("CAR", "RNaseP"):
        standards = plate.wells[(plate.wells["target"] == target)
                                & (plate.wells["task"] == "STANDARD")]  # fmt: skip
        curve = plot(markup, f"Standard curve of {target}")
        assert len(markers(curve, "standard")) == len(standards) == 18
    car = plot(markup, "Standard curve of CAR")
    text = " ".join(car.itertext())
    assert "no Cq (1)" in text and "standard (17)" in text
    assert re.search(
        r"efficiency 9\d\.\d %, R² 0\.9\d{3}\s+slope -3\.\d{3}, intercept 3\d\.\d\d", text
    )


def test_the_plate_map_marks_exactly_the_failing_and_excluded_wells(tmp_path):
    plate, failing, excluded = failing_plate("run-fail")
    marks = well_marks(analyse_plate(plate, SETTINGS).wells, SETTINGS)
    assert set(marks.loc[marks["failed"], "well"]) == failing
    assert set(marks.loc[marks["excluded"], "well"]) == excluded
    run = runs_in_warehouse(stored(connect(tmp_path), [plate]))[0]
    assert set(run.targets["qc_verdict"]) == {"FAIL", "PASS"}  # CAR fails on its NTC
    markup = run_page(run, SETTINGS, LeftOut())
    plate_map = plot(markup, "Plate map")
    rings, crosses = markers(plate_map, "well-failed"), markers(plate_map, "well-excluded")
    assert len(rings) == len(failing) and len(crosses) == len(excluded)
    ntc_wells, standard_wells = markers(plate_map, "well-ntc"), markers(plate_map, "well-standard")
    assert len(ntc_wells) == 3 and len(standard_wells) == 18
    assert [ring in ntc_wells for ring in rings].count(True) == 1  # the contaminated NTC
    assert [ring in standard_wells for ring in rings].count(True) == 1  # the lost standard
    listed = set(re.findall(r"<tr><td[^>]*>([A-H]\d+)</td>", markup))
    assert listed == failing | excluded


def test_run_pages_are_written_when_missing_or_changed_only(tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    con = stored(connect(home.warehouse), [demo_plate("run-a"), demo_plate("run-b")])
    first = write_run_pages(home, con, SETTINGS, LeftOut())
    assert sorted(p.parent.name for p in first) == ["qpcr", "qpcr"] and len(set(first)) == 2
    assert write_run_pages(home, con, SETTINGS, LeftOut()) == []
    first[0].unlink()
    assert write_run_pages(home, con, SETTINGS, LeftOut()) == [first[0]]


def qc_series(runs: dict[str, int], outlier_sd: float = 0.0) -> pd.DataFrame:
    """qc_trends rows: controls with the given number of weekly runs, values within ±1 SD of a
    mean of 100 (SD 2) except the 8th run of the first control, `outlier_sd` SD above it."""
    rows = []
    for number, (control, count) in enumerate(runs.items()):
        for run in range(count):
            value = 100 + 2 * (0.5 if run % 2 else -0.5)
            if number == 0 and run == 7:
                value = 100 + 2 * outlier_sd
            rows.append({
                "control": control, "assay": control.split(":")[0], "metric": "efficiency_pct",
                "unit": "%", "run_id": f"plate-{run}", "value": value,
                "run_time": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(weeks=run),
                "source_sha256": "0" * 64, "run_verdict": "PASS",
            })  # fmt: skip
    targets = {control: ControlTarget(mean=100.0, sd=2.0) for control in runs}
    return levey_jennings(pd.DataFrame(rows), DerivedSettings(qc_targets=targets))


def with_trends(tmp_path: Path, trends: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "warehouse")
    con.execute('DROP VIEW "qc_trends"')
    con.register("qc_trends", conform(trends, TABLES["qc_trends"]))
    return con


def test_a_chart_per_control_with_enough_runs_and_a_table_for_the_rest(tmp_path):
    runs = {"qpcr:CAR:efficiency_pct": 12, "qpcr:RNaseP:efficiency_pct": 5,
            "cba:fcap-array-csv:IL-6:r_squared": 4, "qpcr:CAR:slope": 1}  # fmt: skip
    markup = qc_page(with_trends(tmp_path, qc_series(runs)), DerivedSettings())
    assert DerivedSettings().qc_min_runs_for_limits == 5
    assert markup.count('<svg class="plot"') == 2
    assert "Levey-Jennings chart of CAR amplification efficiency, 12 runs" in markup
    assert "Levey-Jennings chart of RNaseP amplification efficiency, 5 runs" in markup
    assert "Controls with fewer than 5 runs" in markup
    assert "<td>curve R² (fcap-array-csv)</td>" in markup and "IL-6 99, 101, 99, 101" in markup
    assert "<td>CAR standard curve slope</td>" in markup
    chart = plot(markup, "Levey-Jennings chart of CAR")
    assert len(markers(chart, "lj-in-control")) == 12
    assert {"mean", "+3 SD", "−3 SD", "+1 SD"} <= set(chart.itertext())


def test_a_run_beyond_3_sd_is_marked_with_its_rule(tmp_path):
    trends = qc_series({"qpcr:CAR:efficiency_pct": 10}, outlier_sd=3.5)
    assert trends.loc[7, "westgard_violations"] == "1-2s,1-3s"
    markup = qc_page(with_trends(tmp_path, trends), DerivedSettings())
    chart = plot(markup, "Levey-Jennings chart of CAR")
    assert len(markers(chart, "lj-reject")) == 1
    assert len(markers(chart, "lj-in-control")) == 9
    assert "1-2s 1-3s" in set(chart.itertext())
    assert "<td>1-2s, 1-3s</td>" in markup and 'href="qpcr/plate-7-' in markup


@pytest.mark.slow
def test_run_and_qc_pages_open_offline_with_every_plot_drawn(browser, tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    plate, _, _ = failing_plate("run-shown")
    (run,) = write_run_pages(home, stored(connect(home.warehouse), [plate]), SETTINGS, LeftOut())
    trends = qc_series({"qpcr:CAR:efficiency_pct": 12, "qpcr:CAR:slope": 6}, outlier_sd=3.5)
    qc = write_page(home.reports / "qc.html", qc_page(with_trends(tmp_path, trends),
                                                      DerivedSettings()))  # fmt: skip
    # two standard curves, two amplification plots and the plate map; two Levey-Jennings charts
    for page, plots in ((run, 5), (qc, 2)):
        check = inspect(browser, page, screenshot=tmp_path / f"{page.stem}.png")
        assert check.errors == [] and check.requested == [page.as_uri()]
        assert check.plots == plots and check.undrawn == []
        assert not png_is_blank(check.screenshot)


def test_the_quantstudio_reader_keeps_the_amplification_data(shared_data):
    plate = read_plate(shared_data / "qpcr" / "appbio_quantstudio_example04.txt")
    curves = plate.amplification
    assert plate.amplification_measure == "Delta Rn"
    assert list(curves.columns) == list(AMPLIFICATION_COLUMNS)
    assert len(curves) == 240 and curves.groupby(["well", "target"]).size().eq(40).all()
    first = curves.iloc[0]
    assert (first["well"], first["target"], first["cycle"], first["fluorescence"]) == (
        "A1", "RNase P", 1, 0.008,
    )  # fmt: skip
    results_only = read_plate(shared_data / "qpcr" / "example_quantsudio_results_only.txt")
    assert results_only.amplification.empty and results_only.amplification_measure == ""


def test_the_rdml_reader_keeps_the_amplification_data(shared_data):
    plate = read_plate(shared_data / "qpcr" / "stepone_std.rdml")
    curves = plate.amplification
    assert plate.amplification_measure == "fluorescence"
    assert curves.groupby(["well", "target"]).size().eq(40).all()
    assert set(zip(curves["well"], curves["target"], strict=True)) == set(
        zip(plate.wells["well"], plate.wells["target"], strict=True)
    )
    first = curves.iloc[0]
    assert (first["well"], first["target"], first["cycle"]) == ("A1", "RNase P", 1)
    assert first["fluorescence"] == pytest.approx(0.689337)


def test_a_real_export_draws_its_amplification_curves(shared_data, tmp_path):
    real = read_plate(shared_data / "qpcr" / "appbio_quantstudio_example04.txt")
    bare = read_plate(shared_data / "qpcr" / "example_quantsudio_results_only.txt")
    runs = runs_in_warehouse(stored(connect(tmp_path), [real, bare]))
    pages = {run.run_id: run_page(run, SETTINGS, LeftOut()) for run in runs}
    markup = pages[real.run_id]
    drawn = 0
    for target in dict.fromkeys(real.amplification["target"]):
        figure = plot(markup, f"Amplification curves of {target}")
        drawn += sum(
            len(group.findall(f".//{SVG}path"))
            for group in figure.iter(f"{SVG}g")
            if group.get("id", "").startswith("data-amplification-")
        )  # fmt: skip
    assert drawn == real.amplification.groupby(["well", "target"]).ngroups == 6
    assert "holds no amplification data" in pages[bare.run_id]
    assert "holds no amplification data" not in markup


@pytest.mark.parametrize(
    ("wells", "shape"),
    [(["A1", "H12"], (8, 12)), (["A1", "A13"], (16, 24)), (["P24"], (16, 24)),
     (["AF48", "A1"], (32, 48))],
)  # fmt: skip
def test_the_plate_map_is_the_smallest_plate_holding_every_well(wells, shape):
    assert plate_shape([plate_position(w) for w in wells]) == shape


def test_a_run_with_curve_rows_but_no_wells_still_gets_its_page(tmp_path):
    con = stored(connect(tmp_path), [failing_plate("run-rows-only")[0]])
    con.execute('DROP VIEW "qpcr_wells"')
    con.register("qpcr_wells", TABLES["qpcr_wells"].schema.empty_table())
    left_out = LeftOut()
    markup = run_page(runs_in_warehouse(con)[0], SETTINGS, left_out)
    assert re.search(r"<td[^>]*>CAR</td><td[^>]*>car</td><td[^>]*>FAIL</td>", markup)
    assert "holds no amplification data" in markup and "has no wells in qpcr_wells" in markup
    assert markup.count('<svg class="plot"') == 0
    assert len(left_out.lines) == 3  # two standard curves and the plate map, each said why


def test_the_patient_page_links_its_runs_pages(tmp_path):
    plate = demo_plate("run-linked")
    con = stored(connect(tmp_path), [plate])
    con.execute('DROP VIEW "car_copies"')
    copies = analyse_plate(plate, SETTINGS).copies.assign(
        patient_id="P001", source_sha256="0" * 64, pipeline_version=__version__,
        processed_at=datetime(2026, 5, 1, 12, tzinfo=UTC),
    )  # fmt: skip
    con.register("car_copies", conform(copies, TABLES["car_copies"]))
    markup = qc_section(con, "P001")
    assert f'<a href="{run_page_link("run-linked")}">run-linked</a>' in markup


def test_a_run_that_failed_qc_is_crossed_on_its_chart(tmp_path):
    trends = qc_series({"qpcr:CAR:efficiency_pct": 8})
    trends.loc[3, "run_verdict"] = "FAIL"
    chart = plot(qc_page(with_trends(tmp_path, trends), DerivedSettings()), "Levey-Jennings")
    assert len(markers(chart, "lj-failed-run")) == 1
    assert "run failed QC" in set(chart.itertext())
