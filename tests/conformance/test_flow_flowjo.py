"""FlowJo 10 workspace: counts equal FlowJo's stored counts where the workspace stores them (exact
for rectangles and quadrants, within 1 % for polygons and ellipses, which FlowJo computes on binned
data), and equal an independent geometric count on the raw events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from gating import gate_file, read_fcs

pytestmark = pytest.mark.conformance

FOLDER = "flow/flowjo"
FCS = "data_set_simple_line_100.fcs"
WSP = "simple_poly_and_rect.wsp"
GATING_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
DATATYPE_NS = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"


def _stored_populations(wsp: Path) -> dict[str, tuple[str, int, etree._Element]]:
    """Population name -> (gate type, FlowJo's stored count, gate element) for the sample node."""
    found = {}
    for population in etree.parse(str(wsp)).iter("Population"):
        gate = next(e for e in population.find("Gate") if isinstance(e.tag, str))
        kind = etree.QName(gate).localname
        found[population.get("name")] = (kind, int(population.get("count")), gate)
    return found


def _inside_rectangle(events: np.ndarray, gate: etree._Element) -> np.ndarray:
    inside = np.ones(len(events), dtype=bool)
    for k, dim in enumerate(gate.iter(f"{{{GATING_NS}}}dimension")):
        low = float(dim.get(f"{{{GATING_NS}}}min", "-inf"))
        high = float(dim.get(f"{{{GATING_NS}}}max", "inf"))
        inside &= (events[:, k] >= low) & (events[:, k] < high)
    return inside


def _inside_polygon(events: np.ndarray, gate: etree._Element) -> np.ndarray:
    """Even-odd ray casting."""
    vertices = np.array([
        [float(c.get(f"{{{DATATYPE_NS}}}value")) for c in v.iter(f"{{{GATING_NS}}}coordinate")]
        for v in gate.iter(f"{{{GATING_NS}}}vertex")
    ])  # fmt: skip
    x, y = events[:, 0], events[:, 1]
    inside = np.zeros(len(events), dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_cross)
    return inside


@pytest.fixture(scope="module")
def gated(shared_data: Path):
    folder = shared_data / FOLDER
    return gate_file(folder / FCS, folder / WSP).set_index("population")


def test_counts_equal_flowjo_where_stored(shared_data: Path, gated) -> None:
    stored = _stored_populations(shared_data / FOLDER / WSP)
    assert set(stored) == set(gated.index)
    for name, (kind, count, _) in stored.items():
        if count < 0:  # FlowJo writes -1 when it did not compute the statistic
            continue
        ours = gated.loc[name, "count"]
        if kind in ("RectangleGate", "QuadrantGate"):
            assert ours == count, name
        else:
            assert abs(ours - count) <= max(1, 0.01 * count), name


def test_counts_equal_geometry_on_raw_events(shared_data: Path, gated) -> None:
    events = read_fcs(shared_data / FOLDER / FCS)[0].events()
    for name, (kind, _, gate) in _stored_populations(shared_data / FOLDER / WSP).items():
        inside = _inside_rectangle if kind == "RectangleGate" else _inside_polygon
        expected = int(inside(events, gate).sum())
        ours = gated.loc[name, "count"]
        tolerance = 0 if kind == "RectangleGate" else max(1, 0.01 * expected)
        assert abs(ours - expected) <= tolerance, name
