"""A 13-gate strategy built with FlowKit's API on generated events, against FlowKit."""

from __future__ import annotations

import flowkit
import numpy as np
import pytest
from flowkit import Dimension, QuadrantDivider
from flowkit import gates as fk_gates
from flowkit import transforms as fk_transforms

from gating.engine import (
    THREADS_VARIABLE,
    ChannelLabels,
    GatingResult,
    compile_strategy,
    gate_sample,
)
from gating.templates import BoundedTransform, load_template

LABELS = ["FSC-A", "FSC-H", "SSC-A", "FL1-A", "FL2-A", "FL3-A", "FL4-A", "FL5-A", "Time"]
DETECTORS = LABELS[3:8]
SPILL = np.array(
    [
        [1.0, 0.12, 0.03, 0.0, 0.0],
        [0.02, 1.0, 0.15, 0.04, 0.0],
        [0.0, 0.05, 1.0, 0.10, 0.02],
        [0.0, 0.0, 0.08, 1.0, 0.06],
        [0.01, 0.0, 0.0, 0.09, 1.0],
    ]
)
LOGICLE = fk_transforms.LogicleTransform(param_t=262144, param_w=0.5, param_m=4.5, param_a=0)
CHUNK_EVENTS = "gating.engine._evaluate.CHUNK_EVENTS"


def gate_events(
    strategy: flowkit.GatingStrategy,
    events: np.ndarray,
    labels: list[str],
    *,
    spill: flowkit.Matrix | None = None,
    sample_id: str | None = None,
) -> GatingResult:
    """The front door in one call: compile for `labels`, apply to `events`."""
    compiled = compile_strategy(
        strategy, ChannelLabels.of(labels), spill=spill, sample_id=sample_id
    )
    return compiled.apply(events)


def _dim(label: str, comp: bool = True, xform: bool = True, **bounds) -> Dimension:
    return Dimension(
        label,
        compensation_ref="spill" if comp else "uncompensated",
        transformation_ref="logicle" if xform else None,
        **bounds,
    )


def _quadrant_gate(name: str, x: str, y: str, cut: float, ids: list[str]) -> fk_gates.QuadrantGate:
    dividers = [
        QuadrantDivider(f"{name}_x", x, "spill", [cut], transformation_ref="logicle"),
        QuadrantDivider(f"{name}_y", y, "spill", [cut], transformation_ref="logicle"),
    ]
    ranges = [((cut, None), (cut, None)), ((None, cut), (cut, None)), ((None, cut), (None, cut))]
    ranges.append(((cut, None), (None, cut)))
    quadrants = [
        fk_gates.Quadrant(qid, [f"{name}_x", f"{name}_y"], list(rng))
        for qid, rng in zip(ids, ranges, strict=True)
    ]
    return fk_gates.QuadrantGate(name, dividers, quadrants)


def build_strategy() -> flowkit.GatingStrategy:
    """Polygons, rectangles, two quadrant gates, an ellipse, three Booleans, comp + logicle."""
    gs = flowkit.GatingStrategy()
    gs.add_transform("logicle", LOGICLE)
    gs.add_comp_matrix("spill", flowkit.Matrix(SPILL, DETECTORS))
    scatter = [Dimension("FSC-A"), Dimension("SSC-A")]
    cells = [(20000, 5000), (140000, 8000), (150000, 90000), (30000, 85000)]
    gs.add_gate(fk_gates.PolygonGate("Cells", scatter, cells), ("root",))
    singlet_dims = [Dimension("FSC-A"), Dimension("FSC-H")]
    singlets = [(10000, 7000), (160000, 110000), (160000, 150000), (10000, 12000)]
    gs.add_gate(fk_gates.PolygonGate("Singlets", singlet_dims, singlets), ("root", "Cells"))
    path = ("root", "Cells", "Singlets")
    gs.add_gate(fk_gates.RectangleGate("Live", [_dim("FL1-A", range_max=0.5)]), path)
    path += ("Live",)
    gs.add_gate(fk_gates.RectangleGate("CD3", [_dim("FL2-A", range_min=0.4)]), path)
    path += ("CD3",)
    gs.add_gate(_quadrant_gate("CD4CD8", "FL3-A", "FL4-A", 0.45, ["PP", "NP", "NN", "PN"]), path)
    car = [(0.45, 0.1), (0.95, 0.1), (0.95, 0.9), (0.6, 0.95), (0.7, 0.5)]
    gs.add_gate(fk_gates.PolygonGate("CAR", [_dim("FL5-A"), _dim("FL3-A")], car), path)
    gs.add_gate(
        fk_gates.PolygonGate("CARneg", [_dim("FL5-A"), _dim("FL3-A")], car, use_complement=True),
        path,
    )
    gs.add_gate(_quadrant_gate("Mem", "FL1-A", "FL4-A", 0.3, ["A", "B", "C", "D"]), (*path, "CAR"))
    ellipse = fk_gates.EllipsoidGate(
        "Activated", [_dim("FL4-A"), _dim("FL2-A")], [0.6, 0.6], [[0.01, 0.004], [0.004, 0.02]], 4
    )
    gs.add_gate(ellipse, path)
    gs.add_gate(
        fk_gates.RectangleGate("Stable", [_dim("Time", False, False, range_min=5)]), ("root",)
    )
    refs = [
        {"ref": "CAR", "path": path, "complement": False},
        {"ref": "PN", "path": (*path, "CD4CD8"), "complement": False},
    ]
    gs.add_gate(fk_gates.BooleanGate("CAR_CD4", "and", refs), path)
    either = [
        {"ref": "Activated", "path": path, "complement": True},
        {"ref": "Stable", "path": ("root",), "complement": False},
    ]
    gs.add_gate(fk_gates.BooleanGate("Quiet_or_stable", "or", either), path)
    gs.add_gate(
        fk_gates.BooleanGate(
            "NotLive", "not", [{"ref": "Live", "path": path[:3], "complement": False}]
        ),
        ("root",),
    )
    return gs


def generate(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.empty((n, len(LABELS)))
    events[:, 0] = rng.normal(80000, 30000, n)
    events[:, 1] = events[:, 0] * rng.normal(0.85, 0.1, n)
    events[:, 2] = rng.normal(40000, 20000, n)
    true = np.where(
        rng.random((n, 5)) < 0.5, np.exp(rng.normal(8.5, 1.2, (n, 5))), rng.normal(0, 300, (n, 5))
    )
    events[:, 3:8] = true @ SPILL
    events[:, 8] = rng.uniform(0, 100, n)
    return events


def boundary_events(strategy: flowkit.GatingStrategy) -> np.ndarray:
    """Events placed exactly where FlowKit's values sit on gate boundaries.

    Compensated logicle values at the range bounds and quadrant cuts, and scatter values on
    polygon vertices: the fast path cannot decide these from its own values, so they exercise
    the exact recomputation.
    """
    cuts = np.array([0.3, 0.4, 0.45, 0.5, 0.1, 0.6, 0.95])
    comp_values = LOGICLE.inverse(np.tile(cuts, 5).reshape(-1, 1)).ravel()
    n = comp_values.size
    true = np.column_stack([np.roll(comp_values, k) for k in range(5)])
    events = np.zeros((n, len(LABELS)))
    events[:, 0] = 80000
    events[:, 1] = 68000
    events[:, 2] = 40000
    events[:, 3:8] = true @ SPILL
    events[:, 8] = 5.0
    vertices = np.asarray(strategy.get_gate("Cells").vertices)
    on_vertices = np.repeat(events[:1], len(vertices), axis=0)
    on_vertices[:, [0, 2]] = vertices
    return np.vstack([events, on_vertices])


@pytest.fixture(scope="module")
def strategy() -> flowkit.GatingStrategy:
    return build_strategy()


def test_generated_events_match_flowkit(strategy, same_as_flowkit) -> None:
    events = generate(20000, seed=11)
    sample = flowkit.Sample(events, sample_id="generated", channel_labels=LABELS)
    result = same_as_flowkit(strategy, sample)
    assert len(result.gates) == 19
    assert all(gate.count > 0 for gate in result.gates.values())


def test_events_on_boundaries_are_decided_like_flowkit(strategy, same_as_flowkit) -> None:
    events = np.vstack([generate(2000, seed=5), boundary_events(strategy)])
    sample = flowkit.Sample(events, sample_id="edges", channel_labels=LABELS)
    result = same_as_flowkit(strategy, sample)
    assert sum(gate.recomputed for gate in result.gates.values()) > 0


def test_float32_events_without_a_sample(strategy) -> None:
    events = generate(5000, seed=2).astype(np.float32)
    sample = flowkit.Sample(events, sample_id="f32", channel_labels=LABELS)
    expected = gate_sample(strategy, sample)
    ours = gate_events(strategy, events, LABELS, sample_id="f32")
    pd_expected, pd_ours = expected.report(), ours.report()
    assert pd_expected.equals(pd_ours)


def test_chunk_boundaries_do_not_matter(strategy, monkeypatch) -> None:
    events = generate(3000, seed=4)
    whole = gate_events(strategy, events, LABELS)
    monkeypatch.setattr(CHUNK_EVENTS, 257)
    chunked = gate_events(strategy, events, LABELS)
    for key, gate in whole.gates.items():
        assert np.array_equal(gate.membership, chunked.gates[key].membership)


def test_one_thread_or_many_give_the_same_memberships(strategy, monkeypatch) -> None:
    events = generate(3000, seed=6)
    monkeypatch.setattr(CHUNK_EVENTS, 257)
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    single = gate_events(strategy, events, LABELS)
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    threaded = gate_events(strategy, events, LABELS)
    for key, gate in single.gates.items():
        assert np.array_equal(gate.membership, threaded.gates[key].membership)


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_gating_threads_setting_is_checked(strategy, raw, monkeypatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, raw)
    with pytest.raises(ValueError, match=THREADS_VARIABLE):
        gate_events(strategy, generate(100, seed=3), LABELS)


def test_a_compiled_strategy_applies_to_any_events_with_its_channels(strategy) -> None:
    """Compiled once, applied to two files' events: each as if compiled for it alone."""
    compiled = compile_strategy(strategy, ChannelLabels.of(LABELS))
    first, second = generate(2000, seed=12), generate(3000, seed=13)
    for events in (first, second, first):
        alone = gate_events(strategy, events, LABELS)
        reused = compiled.apply(events)
        assert reused.event_count == len(events)
        for key, gate in alone.gates.items():
            assert np.array_equal(gate.membership, reused.gates[key].membership)


def test_events_must_have_the_compiled_channels(strategy) -> None:
    compiled = compile_strategy(strategy, ChannelLabels.of(LABELS))
    with pytest.raises(ValueError, match="do not match 9 channels"):
        compiled.apply(generate(10, seed=1)[:, :5])


def test_transform_bounds_clamp_as_gating_ml_says(tmp_path) -> None:
    xml = tmp_path / "bounds.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
        'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
        'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
        'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">'
        '<transforms:transformation transforms:id="Lin" transforms:boundMin="0.2" '
        'transforms:boundMax="0.8"><transforms:flin transforms:T="1000" transforms:A="0"/>'
        "</transforms:transformation>"
        '<gating:RectangleGate gating:id="Low"><gating:dimension gating:compensation-ref='
        '"uncompensated" gating:transformation-ref="Lin" gating:max="0.25">'
        '<data-type:fcs-dimension data-type:name="FL1-A"/></gating:dimension></gating:RectangleGate>'
        "</gating:Gating-ML>"
    )
    template = load_template(xml).strategy  # bounded transformations wrapped
    bounded = template.transformations["Lin"]
    assert (bounded.bound_min, bounded.bound_max) == (0.2, 0.8)
    events = np.array([[-500.0], [100.0], [240.0], [260.0], [5000.0]])
    clamped = gate_events(template, events, ["FL1-A"])
    unclamped = gate_events(flowkit.parse_gating_xml(str(xml)), events, ["FL1-A"])
    assert clamped.membership("Low").tolist() == [True, True, True, False, False]
    assert unclamped.membership("Low").tolist() == [True, True, True, False, False]
    template.transformations["Lin"] = BoundedTransform(bounded.inner, 0.3, None)
    bounded_above = gate_events(template, events, ["FL1-A"])
    assert bounded_above.membership("Low").tolist() == [False, False, False, False, False]


def _fcs_compensated_strategy() -> flowkit.GatingStrategy:
    gs = flowkit.GatingStrategy()
    gs.add_transform("logicle", LOGICLE)
    dims = [
        Dimension("FL2-A", compensation_ref="FCS", transformation_ref="logicle"),
        Dimension("FL3-A", compensation_ref="FCS", transformation_ref="logicle"),
    ]
    gs.add_gate(fk_gates.PolygonGate("P", dims, [(0.3, 0.3), (0.9, 0.35), (0.6, 0.9)]), ("root",))
    gs.add_gate(fk_gates.RectangleGate("R", [dims[0]]), ("root",))
    return gs


def test_fcs_spillover_given_as_a_matrix(same_as_flowkit) -> None:
    """Compensation-ref "FCS": FlowKit reads $SPILL from the sample, we take the matrix."""
    events = generate(4000, seed=8)
    matrix = flowkit.Matrix(SPILL, DETECTORS)
    sample = flowkit.Sample(events, sample_id="fcs", channel_labels=LABELS)
    sample.metadata["spill"] = "5," + ",".join(DETECTORS) + "," + ",".join(map(str, SPILL.ravel()))
    strategy = _fcs_compensated_strategy()
    expected = same_as_flowkit(strategy, sample)
    ours = gate_events(strategy, events, LABELS, spill=matrix, sample_id="fcs")
    assert ours.report().equals(expected.report())
    uncompensated = gate_events(strategy, events, LABELS, sample_id="fcs")
    assert uncompensated.count("P") != expected.count("P")


def test_unsupported_gates_fall_back_to_flowkit(caplog, same_as_flowkit) -> None:
    """A spectral (unmixing) matrix is not handled here: FlowKit evaluates that gate."""
    gs = flowkit.GatingStrategy()
    gs.add_transform("logicle", LOGICLE)
    gs.add_comp_matrix("unmix", flowkit.SpectralMatrix(SPILL[:4], DETECTORS, DETECTORS[:4]))
    gs.add_comp_matrix("spill", flowkit.Matrix(SPILL, DETECTORS))
    spectral = Dimension("FL2-A", compensation_ref="unmix", transformation_ref="logicle")
    gs.add_gate(fk_gates.RectangleGate("Spectral", [spectral]), ("root",))
    gs.add_gate(fk_gates.RectangleGate("Conventional", [_dim("FL2-A", range_min=0.4)]), ("root",))
    gs.add_gate(
        fk_gates.RectangleGate("Child", [_dim("FL3-A", range_min=0.4)]), ("root", "Spectral")
    )
    sample = flowkit.Sample(generate(3000, seed=9), sample_id="spectral", channel_labels=LABELS)
    with caplog.at_level("INFO", logger="gating.engine"):
        same_as_flowkit(gs, sample)
    assert "gate root/Spectral: evaluated by FlowKit" in caplog.text
    assert "Conventional" not in caplog.text
