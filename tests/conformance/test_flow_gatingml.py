"""Gating-ML 2.0 compliance set 1: every gate gives exactly the expected membership, event by event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gating.analysis import Gating, gate_dataset
from gating.fcs import read_fcs
from gating.settings import FlowSettings
from gating.templates import load_template

pytestmark = pytest.mark.conformance

SET1 = "flow/gatingml-set1"
GATES_OUTSIDE_ALL_GATES = {
    "Ellipsoid3D": ("gml_ellipsoid3d_gate.xml", "Ellipsoid3D"),
    "ParQuadRect": ("gml_parent_quadrant_rect_gate.xml", "ParRectangle1"),
}
"""Truth files whose gate is not in gml_all_gates.xml: (Gating-ML file, gate ID)."""
TRUTH_NAMES = [
    "And1", "And2", "And3", "And4", "Ellipse1", "Ellipsoid3D", "FL2N-FL4N", "FL2N-FL4P",
    "FL2P-FL4N", "FL2P-FL4P", "FSCD-FL1P", "FSCD-SSCN-FL1N", "FSCN-SSCN", "FSCN-SSCP-FL1P",
    "FSCP-SSCN-FL1N", "Not1", "Or1", "Or2", "ParAnd2", "ParAnd3", "ParQuadRect", "Polygon1",
    "Polygon2", "Polygon3NS", "Polygon4", "Range1", "Range2", "RatRange1", "RatRange1a",
    "RatRange2", "Rectangle1", "Rectangle2", "Rectangle3", "Rectangle4", "Rectangle5",
    "ScalePar1", "ScaleRange1", "ScaleRange1c", "ScaleRange2", "ScaleRange2c", "ScaleRange3",
    "ScaleRange3c", "ScaleRange4", "ScaleRange4c", "ScaleRange5", "ScaleRange5c", "ScaleRange6",
    "ScaleRange6c", "ScaleRange7c", "ScaleRange8c", "ScaleRect1",
]  # fmt: skip


def _gate(folder: Path, template_name: str) -> Gating:
    dataset = read_fcs(folder / "data1.fcs")[0]
    return gate_dataset(dataset, load_template(folder / "gml" / template_name), FlowSettings())


@pytest.fixture(scope="module")
def all_gates(shared_data: Path) -> Gating:
    return _gate(shared_data / SET1, "gml_all_gates.xml")


def test_every_truth_file_is_covered(shared_data: Path) -> None:
    names = {p.stem.removeprefix("Results_") for p in (shared_data / SET1 / "truth").glob("*.txt")}
    assert names == set(TRUTH_NAMES)


@pytest.mark.parametrize("truth_name", TRUTH_NAMES)
def test_gate_membership_matches_truth(
    truth_name: str, shared_data: Path, all_gates: Gating
) -> None:
    folder = shared_data / SET1
    expected = np.loadtxt(folder / "truth" / f"Results_{truth_name}.txt", dtype=int).astype(bool)
    if truth_name in GATES_OUTSIDE_ALL_GATES:
        template_name, gate_id = GATES_OUTSIDE_ALL_GATES[truth_name]
        gating = _gate(folder, template_name)
    else:
        gating, gate_id = all_gates, truth_name
    membership = gating.membership(gate_id)
    assert membership.shape == expected.shape
    mismatches = np.flatnonzero(membership != expected)
    assert mismatches.size == 0, (
        f"{gate_id}: {mismatches.size} events differ, first {mismatches[:5]}"
    )
