"""`cartflow gate`: a scientist checks a template against one file."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.flow_files import demo_tubes, write_tube
from pipelines.demo.trial import CAR_PCT_OF_CD3

TEMPLATES = "gating/templates"


def test_gate_prints_populations_with_counts_and_pct_parent(tmp_path):
    tube = next(
        t
        for t in demo_tubes()
        if t.patient_id == "P002" and t.timepoint == "D10" and t.panel == "tcell"
    )
    fcs = write_tube(tmp_path / tube.file_name, tube, np.random.default_rng(3))
    result = CliRunner().invoke(
        app, ["gate", str(fcs), "--template", f"{TEMPLATES}/tcell_panel.xml"]
    )
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    cd3 = int(lines["CD3+ T cells"].split("│")[3].replace(",", ""))
    car = int(lines["CAR+ T cells"].split("│")[3].replace(",", ""))
    assert (cd3, car) == (tube.counts["t_cells"], tube.counts["car"])
    assert abs(car / cd3 * 100 - CAR_PCT_OF_CD3["P002"]["D10"]) < 1.0


def test_gate_refuses_a_text_file_renamed_fcs(tmp_path):
    fake = tmp_path / "notes.fcs"
    fake.write_text("this is not an FCS file\n")
    result = CliRunner().invoke(
        app, ["gate", str(fake), "--template", f"{TEMPLATES}/tcell_panel.xml"]
    )
    assert result.exit_code == 3
    assert "notes.fcs" in result.output and "Traceback" not in result.output


def test_gate_with_a_flowjo_workspace(shared_data):
    folder = shared_data / "flow" / "flowjo"
    result = CliRunner().invoke(
        app,
        ["gate", str(folder / "data_set_simple_line_100.fcs"), "--template",
         str(folder / "simple_poly_and_rect.wsp")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "poly1" in result.output and "rect1" in result.output
