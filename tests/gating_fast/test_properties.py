"""Random gates on random events (including points on vertices and edges) against FlowKit."""

from __future__ import annotations

import flowkit
import numpy as np
from flowkit import Dimension
from flowkit import gates as fk_gates
from flowkit import transforms as fk_transforms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gating.engine import gate_sample
from gating.engine._transforms import exact_apply, interpolated

LABELS = ["A", "B"]
coordinate = st.floats(-1000, 1000, allow_nan=False).map(lambda v: round(v, 1))
point = st.tuples(coordinate, coordinate)
# `same_as_flowkit` is a stateless function, so reusing it across examples is safe.
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _sample(points: np.ndarray) -> flowkit.Sample:
    return flowkit.Sample(points, sample_id="random", channel_labels=LABELS)


def _events(seed: int, extra: list[tuple[float, float]]) -> np.ndarray:
    """Random events on a 0.1 grid (so many land exactly on edges), plus the given points."""
    rng = np.random.default_rng(seed)
    grid = np.round(rng.uniform(-1100, 1100, (400, 2)), 1)
    return np.vstack([grid, np.asarray(extra, dtype=np.float64).reshape(-1, 2)])


def _single_gate(gate: object, transform: object | None = None) -> flowkit.GatingStrategy:
    strategy = flowkit.GatingStrategy()
    if transform is not None:
        strategy.add_transform("t", transform)
    strategy.add_gate(gate, ("root",))
    return strategy


@SETTINGS
@given(st.lists(point, min_size=3, max_size=9), st.integers(0, 2**16), st.booleans())
def test_random_polygons(same_as_flowkit, vertices, seed, complement) -> None:
    poly = np.asarray(vertices)
    edges = (poly + np.roll(poly, -1, axis=0)) / 2
    events = _events(seed, [*vertices, *map(tuple, edges)])
    gate = fk_gates.PolygonGate(
        "P", [Dimension("A"), Dimension("B")], vertices, use_complement=complement
    )
    same_as_flowkit(_single_gate(gate), _sample(events))


@SETTINGS
@given(
    st.lists(st.tuples(st.none() | coordinate, st.none() | coordinate), min_size=1, max_size=2),
    st.integers(0, 2**16),
)
def test_random_rectangles(same_as_flowkit, limits, seed) -> None:
    dims = [
        Dimension(label, range_min=low, range_max=high)
        for label, (low, high) in zip(LABELS, limits, strict=False)
        if low is not None or high is not None
    ]
    if not dims:
        return
    corners = [(low or 0.0, high or 0.0) for low, high in limits] * 2
    events = _events(seed, corners)
    same_as_flowkit(_single_gate(fk_gates.RectangleGate("R", dims)), _sample(events))


@SETTINGS
@given(
    point,
    st.floats(1, 400),
    st.floats(1, 400),
    st.floats(-0.95, 0.95),
    st.floats(0.5, 9),
    st.integers(0, 2**16),
)
def test_random_ellipses(same_as_flowkit, centre, sx, sy, rho, d2, seed) -> None:
    covariance = [[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]]
    gate = fk_gates.EllipsoidGate(
        "E", [Dimension("A"), Dimension("B")], list(centre), covariance, d2
    )
    same_as_flowkit(_single_gate(gate), _sample(_events(seed, [centre])))


@SETTINGS
@given(st.lists(point, min_size=3, max_size=7), st.integers(0, 2**16))
def test_random_polygons_on_logicle_axes(same_as_flowkit, vertices, seed) -> None:
    transform = fk_transforms.LogicleTransform(param_t=262144, param_w=0.5, param_m=4.5, param_a=0)
    scaled = [(0.5 + x / 2000, 0.5 + y / 2000) for x, y in vertices]
    raw_vertices = transform.inverse(np.asarray(scaled))
    events = np.vstack([_events(seed, []) * 100, raw_vertices])
    dims = [Dimension(label, transformation_ref="t") for label in LABELS]
    gate = fk_gates.PolygonGate("P", dims, scaled)
    same_as_flowkit(_single_gate(gate, transform), _sample(events))


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([fk_transforms.LogicleTransform, fk_transforms.HyperlogTransform]),
    st.floats(1000, 300000),
    st.floats(0.2, 1.5),
    st.floats(3.5, 5.5),
    st.floats(0, 1),
    st.integers(0, 2**16),
)
def test_interpolated_transforms_stay_within_their_bound(kind, t, w, m, a, seed) -> None:
    transform = kind(param_t=t, param_w=w, param_m=m, param_a=a)
    table = interpolated(transform)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 20000) * np.exp(rng.uniform(-20, 16, 20000))
    x = np.concatenate([x, [0.0, -0.0, 1e-300, 2.0**33, -(2.0**40), t, -t]])
    assert np.max(np.abs(table.apply(x) - exact_apply(transform, x))) <= table.error


def test_points_exactly_on_a_logicle_polygon_edge(same_as_flowkit) -> None:
    """Vertices mapped back to raw values: the fast path must hand them to FlowUtils."""
    transform = fk_transforms.LogicleTransform(param_t=262144, param_w=0.5, param_m=4.5, param_a=0)
    vertices = [(0.2, 0.2), (0.8, 0.25), (0.7, 0.9), (0.25, 0.7)]
    raw_vertices = transform.inverse(np.asarray(vertices))
    dims = [Dimension(label, transformation_ref="t") for label in LABELS]
    strategy = _single_gate(fk_gates.PolygonGate("P", dims, vertices), transform)
    result = same_as_flowkit(strategy, _sample(raw_vertices))
    assert result.get("P").recomputed == len(vertices)
    assert gate_sample(strategy, _sample(raw_vertices)).count("P") == result.count("P")
