"""Vectorised membership tests that also say which events they cannot decide for certain.

Each test gets coordinates that may differ from FlowKit's by at most a known error per
dimension (zero where the values are FlowKit's own). It returns the membership computed from
those coordinates and a mask of the events whose membership could change within that error;
`_evaluate.py` recomputes those few events with FlowKit's arithmetic and FlowUtils' tests, so the
final memberships are FlowKit's. Boundary semantics therefore never have to be re-implemented:
FlowUtils decides every event that lies on or next to a boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
from flowutils import gating as fu_gating
from scipy import ndimage

# Raster cells per axis for polygon pre-classification, two of them margin on each side.
_RASTER_CELLS = 256
_MARGIN_CELLS = 2
_OUTSIDE, _INSIDE, _BOUNDARY, _OUTER_RING = 0, 1, 2, 3
# Slack for this module's own rounding, relative to the coordinates' scale.
_RELATIVE_SLACK = 1e-12


@dataclass(frozen=True)
class Decision:
    """Membership of the tested events and the events whose membership is not certain."""

    inside: np.ndarray
    uncertain: np.ndarray | None


def range_decision(
    values: np.ndarray, error: float, low: float | None, high: float | None
) -> Decision:
    """One dimension of a rectangle or quadrant: min inclusive, max exclusive, as FlowKit."""
    inside = np.ones(values.shape, dtype=bool)
    uncertain = np.zeros(values.shape, dtype=bool) if error > 0 else None
    for bound, passes in ((low, np.greater_equal), (high, np.less)):
        if bound is None:
            continue
        inside &= passes(values, bound)
        if uncertain is not None:
            uncertain |= np.abs(values - bound) <= error
    return Decision(inside, uncertain)


def band_decision(
    values: np.ndarray,
    error: float,
    low: tuple[float, float] | None,
    high: tuple[float, float] | None,
) -> Decision:
    """One dimension of a rectangle or quadrant tested on untransformed values.

    `low` = (below, above) brackets where the transformed value crosses the gate's min (see
    `data_space_bracket`): values under `below` are outside, values over `above` inside. `high`
    brackets the max the same way, inside under it. Values within `error` of a band, and values
    that are not finite, are left to FlowKit's own arithmetic.

    One pass per dimension (`_band`) instead of eight numpy ones; the comparisons are the same,
    against the same float64 limits, so the decisions are identical.
    """
    inside = np.empty(values.shape, dtype=bool)
    uncertain = np.empty(values.shape, dtype=bool)
    _band(
        np.ascontiguousarray(values, dtype=np.float64),
        *_band_limits(low, error), *_band_limits(high, error), inside, uncertain,
    )  # fmt: skip
    return Decision(inside, uncertain)


def _band_limits(
    band: tuple[float, float] | None, error: float
) -> tuple[bool, float, float, float]:
    """(tested, middle of the band, start and end of the uncertain stretch) for `_band`."""
    if band is None:
        return False, 0.0, 0.0, 0.0
    below, above = band
    return True, (below + above) / 2, below - error, above + error


@numba.njit(cache=True, nogil=True)
def _band(
    values: np.ndarray,
    low_tested: bool, low_middle: float, low_start: float, low_end: float,
    high_tested: bool, high_middle: float, high_start: float, high_end: float,
    inside: np.ndarray, uncertain: np.ndarray,
) -> None:  # fmt: skip
    for event in range(values.size):
        value = values[event]
        is_inside = True
        is_uncertain = not math.isfinite(value)
        if low_tested:
            is_inside = is_inside and value > low_middle
            is_uncertain = is_uncertain or (low_start <= value <= low_end)
        if high_tested:
            is_inside = is_inside and value < high_middle
            is_uncertain = is_uncertain or (high_start <= value <= high_end)
        inside[event] = is_inside
        uncertain[event] = is_uncertain


def combine_and(decisions: list[Decision]) -> Decision:
    """Intersection of per-dimension decisions (a rectangle, one quadrant)."""
    inside = decisions[0].inside.copy()
    uncertain = None
    for decision in decisions[1:]:
        inside &= decision.inside
    for decision in decisions:
        if decision.uncertain is not None:
            uncertain = (
                decision.uncertain.copy() if uncertain is None else uncertain | decision.uncertain
            )
    return Decision(inside, uncertain)


@dataclass(frozen=True)
class _Raster:
    """Cells over a polygon's bounding box: outside, inside, near an edge, or the outer ring."""

    codes: np.ndarray
    origin: tuple[float, float]
    inv_cell: tuple[float, float]
    cell: tuple[float, float]


@lru_cache(maxsize=256)
def _raster(vertices: tuple[tuple[float, float], ...]) -> _Raster | None:
    """Classify raster cells once per polygon; None for a degenerate (zero-area box) polygon.

    A cell is near an edge when an edge passes through it or one of its 8 neighbours, so every
    other cell lies a full cell away from every edge and takes the side of its centre.
    """
    poly = np.asarray(vertices, dtype=np.float64)
    low, high = poly.min(axis=0), poly.max(axis=0)
    inner = _RASTER_CELLS - 2 * _MARGIN_CELLS
    cell = (high - low) / inner
    if not np.all(cell > 0):
        return None
    origin = low - _MARGIN_CELLS * cell
    near = np.zeros((_RASTER_CELLS, _RASTER_CELLS), dtype=bool)
    for start, end in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        steps = int(np.ceil(2 * np.max(np.abs(end - start) / cell))) + 1
        t = np.linspace(0.0, 1.0, steps + 1)[:, None]
        cells = np.floor((start + t * (end - start) - origin) / cell).astype(np.intp)
        cells = np.clip(cells, 0, _RASTER_CELLS - 1)
        near[cells[:, 1], cells[:, 0]] = True
    near = ndimage.binary_dilation(near, structure=np.ones((3, 3), dtype=bool))
    centres_y, centres_x = np.mgrid[0:_RASTER_CELLS, 0:_RASTER_CELLS] + 0.5
    centres = np.column_stack(
        (origin[0] + centres_x.ravel() * cell[0], origin[1] + centres_y.ravel() * cell[1])
    )
    inside = fu_gating.points_in_polygon(poly, centres).reshape(near.shape)
    codes = np.where(near, _BOUNDARY, np.where(inside, _INSIDE, _OUTSIDE)).astype(np.int8)
    codes[[0, -1], :] = _OUTER_RING
    codes[:, [0, -1]] = _OUTER_RING
    return _Raster(
        codes=codes.ravel(),
        origin=(float(origin[0]), float(origin[1])),
        inv_cell=(float(1 / cell[0]), float(1 / cell[1])),
        cell=(float(cell[0]), float(cell[1])),
    )


def _cell_index(values: np.ndarray, origin: float, inv_cell: float) -> np.ndarray:
    """Raster column or row of each value; NaN lands in the outer ring (fmax ignores NaN)."""
    scaled = values - origin
    scaled *= inv_cell
    np.fmax(scaled, 0.0, out=scaled)
    np.fmin(scaled, _RASTER_CELLS - 1, out=scaled)
    return scaled.astype(np.intp)


def _near_edges(x: np.ndarray, y: np.ndarray, poly: np.ndarray, distance: float) -> np.ndarray:
    """Events within `distance` (Euclidean) of any polygon edge."""
    near = np.zeros(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = ((x - x0) * dx + (y - y0) * dy) / length2 if length2 > 0 else np.zeros(x.shape)
        np.clip(t, 0.0, 1.0, out=t)
        near |= np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= distance
    return near


def polygon_decision(
    x: np.ndarray, y: np.ndarray, errors: tuple[float, float], vertices: np.ndarray
) -> Decision:
    """Even-odd point-in-polygon, as FlowUtils' winding count modulo 2.

    A raster decides events a full cell away from every edge with a few array operations; the
    rest go through FlowUtils' C test. With inexact coordinates, events closer to an edge than
    the coordinate error (plus rounding slack) are reported uncertain.
    """
    poly = np.asarray(vertices, dtype=np.float64)
    raster = _raster(tuple(map(tuple, poly.tolist())))
    scale = float(np.abs(poly).max()) + 1.0
    distance = (
        float(np.hypot(*errors)) * (1 + 1e-6) + _RELATIVE_SLACK * scale if any(errors) else 0.0
    )
    if raster is None or distance >= min(raster.cell) / 2:
        codes = np.full(x.shape, _BOUNDARY, dtype=np.int8)
    else:
        column = _cell_index(x, raster.origin[0], raster.inv_cell[0])
        row = _cell_index(y, raster.origin[1], raster.inv_cell[1])
        row *= _RASTER_CELLS
        row += column
        codes = raster.codes[row]
    inside = codes == _INSIDE
    uncertain = None
    ring = np.flatnonzero(codes == _OUTER_RING)
    if ring.size:
        not_finite = ~(np.isfinite(x[ring]) & np.isfinite(y[ring]))
        if not_finite.any():
            uncertain = np.zeros(x.shape, dtype=bool)
            uncertain[ring[not_finite]] = True
    edge = np.flatnonzero(codes == _BOUNDARY)
    if edge.size:
        ex, ey = x[edge], y[edge]
        inside[edge] = fu_gating.points_in_polygon(poly, np.column_stack((ex, ey)))
        if distance > 0:
            near = _near_edges(ex, ey, poly, distance)
            if near.any():
                uncertain = np.zeros(x.shape, dtype=bool) if uncertain is None else uncertain
                uncertain[edge[near]] = True
    return Decision(inside, uncertain)


def ellipsoid_decision(
    columns: list[np.ndarray],
    errors: list[float],
    mean: np.ndarray,
    covariance: np.ndarray,
    distance_square: float,
) -> Decision:
    """Mahalanobis distance² <= distance_square (boundary inclusive, as FlowUtils).

    The quadratic form is summed here in a different order than FlowUtils' matrix product, so
    events whose distance² is within rounding slack (plus the coordinate error's effect) of the
    boundary are always reported uncertain.
    """
    inverse = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
    centred = [column - centre for column, centre in zip(columns, mean, strict=True)]
    form = np.zeros(columns[0].shape)
    for i, ci in enumerate(centred):
        row = np.zeros(columns[0].shape)
        for j, cj in enumerate(centred):
            row += cj * inverse[j, i]
        form += row * ci
    eigen = np.linalg.eigvalsh((inverse + inverse.T) / 2)
    largest, smallest = float(np.max(np.abs(eigen))), float(np.min(np.abs(eigen)))
    radius = np.sqrt(distance_square / smallest) if smallest > 0 else np.inf
    error = float(np.linalg.norm(errors))
    rounding = 1e-9 * (largest / smallest if smallest > 0 else np.inf) * (abs(distance_square) + 1)
    tolerance = 2 * largest * (radius + error) * error + rounding
    return Decision(form <= distance_square, np.abs(form - distance_square) <= tolerance)


def exact_polygon(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """FlowUtils' own polygon test (FlowKit's PolygonGate.apply)."""
    return fu_gating.points_in_polygon(np.asarray(vertices, dtype=np.float64), points)


def exact_ellipsoid(
    points: np.ndarray, mean: np.ndarray, covariance: np.ndarray, distance_square: float
) -> np.ndarray:
    """FlowUtils' own ellipsoid test (FlowKit's EllipsoidGate.apply)."""
    return fu_gating.points_in_ellipsoid(covariance, mean, distance_square, points)
