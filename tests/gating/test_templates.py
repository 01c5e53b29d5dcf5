"""Templates: the shipped panels, Gating-ML bounds, and templates or panels that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flowkit import gates

from gating import FlowTemplateError, analyse_fcs, flow_settings_from_dict, gate_file
from gating.settings import DEFAULT_TEMPLATES, FlowSettings
from gating.templates import gates_of, load_template
from pipelines.demo.flow_files import fcs_bytes

GML_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
 xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
 xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
"""


def test_shipped_tcell_template_has_every_gate_kind() -> None:
    found = gates_of(load_template(DEFAULT_TEMPLATES["tcell"]).strategy)
    assert len(found) >= 12
    kinds = {type(g) for g in found}
    assert {gates.PolygonGate, gates.RectangleGate, gates.QuadrantGate, gates.BooleanGate} <= kinds


def test_template_that_does_not_validate_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(GML_HEAD + '<gating:RectangleGate gating:id="R"/></gating:Gating-ML>\n')
    with pytest.raises(FlowTemplateError, match=r"bad\.xml does not validate as Gating-ML 2\.0"):
        load_template(bad)
    prose = tmp_path / "notes.xml"
    prose.write_text("gate everything\n")
    with pytest.raises(FlowTemplateError, match="is not XML"):
        load_template(prose)


def test_missing_marker_names_what_the_file_has(demo_tubes) -> None:
    bcell = next(p for p, t in demo_tubes.items() if t.panel == "bcell" and t.patient_id == "P001")
    with pytest.raises(FlowTemplateError) as caught:
        gate_file(bcell, DEFAULT_TEMPLATES["tcell"])
    assert str(caught.value).startswith(
        "marker CAR not found; this file has: "
        "FSC-A, FSC-H, FSC-W, SSC-A, SSC-H, CD45, CD19, CD3, Viability, Time"
    )
    assert bcell.name in str(caught.value)


def test_tube_named_for_the_wrong_panel_raises_the_marker_error(demo_tubes) -> None:
    bcell = next(p for p, t in demo_tubes.items() if t.panel == "bcell")
    settings = FlowSettings(panel_patterns={"tcell": "B cell"})
    with pytest.raises(FlowTemplateError, match="marker CAR not found; this file has: "):
        analyse_fcs(bcell, settings)


def test_each_load_is_its_own_copy_and_an_edited_file_is_read_again(tmp_path: Path) -> None:
    """Loads are kept per file version: a copy per call (analysis edits the strategy it gets),
    and the file parsed again once it changes."""
    rectangle = (
        '<gating:RectangleGate gating:id="{}"><gating:dimension gating:min="1" '
        'gating:compensation-ref="uncompensated"><data-type:fcs-dimension data-type:name="FL1-A"/>'
        "</gating:dimension></gating:RectangleGate>"
    )
    path = tmp_path / "one.xml"
    path.write_text(GML_HEAD + rectangle.format("First") + "</gating:Gating-ML>\n")
    first, second = load_template(path), load_template(path)
    assert first.strategy is not second.strategy
    first.strategy.comp_matrices["edited"] = None
    assert "edited" not in load_template(path).strategy.comp_matrices
    path.write_text(GML_HEAD + rectangle.format("Renamed") + "</gating:Gating-ML>\n")
    assert [g.gate_name for g in gates_of(load_template(path).strategy)] == ["Renamed"]


def test_bound_max_clamps_like_the_spec(tmp_path: Path) -> None:
    """flin T=1000 A=0 maps 0..1000 to 0..1; boundMax 0.5 clamps 800 and 5000 to 0.5, so a range
    [0.45, 0.55] holds them too. FlowKit alone would count only the event at 500."""
    fcs = tmp_path / "lin.fcs"
    values = np.array([[100.0, 0], [500.0, 1], [800.0, 2], [5000.0, 3]], dtype=np.float32)
    fcs.write_bytes(fcs_bytes(values, ["FL1-A", "Time"], ["", ""], {}, False))
    template = tmp_path / "bounded.xml"
    template.write_text(
        GML_HEAD
        + """
 <transforms:transformation transforms:id="Lin" transforms:boundMax="0.5">
  <transforms:flin transforms:T="1000" transforms:A="0"/>
 </transforms:transformation>
 <gating:RectangleGate gating:id="Mid">
  <gating:dimension gating:min="0.45" gating:max="0.55" gating:compensation-ref="uncompensated"
   gating:transformation-ref="Lin"><data-type:fcs-dimension data-type:name="FL1-A"/></gating:dimension>
 </gating:RectangleGate>
</gating:Gating-ML>
"""
    )
    assert gate_file(fcs, template).set_index("population").loc["Mid", "count"] == 3


def test_settings_from_dict_extends_defaults(tmp_path: Path) -> None:
    settings = flow_settings_from_dict({
        "templates": {"tcell": str(tmp_path / "t.xml")},
        "marker_aliases": {"CAR": ["KappaCAR"]},
        "beads_per_test": 50000,
        "panel_keywords": ["TUBE NAME"],
    })  # fmt: skip
    assert settings.templates["tcell"] == tmp_path / "t.xml"
    assert settings.templates["bcell"] == DEFAULT_TEMPLATES["bcell"]
    assert (
        "KappaCAR" in settings.marker_aliases["CAR"] and "FMC63" in settings.marker_aliases["CAR"]
    )
    assert settings.panel_keywords == ("TUBE NAME",)
