"""Transforms for the fast gating path, each with a bound on how far it may be from FlowKit's.

FlowKit computes logicle and hyperlog with FlowUtils' C root finder (about 150 ms per million
values on our machines, holding the GIL). Here both are read from a table: the table's nodes are
values of that same C function, spaced 1024 to an octave of |x|, and a value between two nodes is
interpolated linearly (about 15 ms per million). The table knows its worst interpolation error,
measured against the C function at every cell midpoint, so callers can tell which events lie
too close to a gate boundary to trust the interpolated value; those events are recomputed with
the C function itself (see `_evaluate.py`). All other transforms are evaluated with FlowKit's own
`apply`, which is already cheap numpy arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from flowkit import transforms as fk_transforms

from gating.flowkit_adapter import Transform

# Cells per octave of |x| (2**_CELL_BITS) and the octaves the table covers; values outside
# [2**_LOW_OCTAVE, 2**_HIGH_OCTAVE) fall into one linear cell at zero or go to the C function.
_CELL_BITS = 10
_LOW_OCTAVE = -20
_HIGH_OCTAVE = 32
_MANTISSA_BITS = 52
_EXPONENT_BIAS = 1023
# Safety factor on the measured midpoint error, and a floor that covers the C root finder's own
# convergence noise (it stops near 1e-15; the floor is 1e5 times that).
_ERROR_SAFETY = 4.0
_ERROR_FLOOR = 1e-10


@dataclass(frozen=True)
class InterpolatedTransform:
    """A logicle or hyperlog transform read from a table of its exact values.

    `error` bounds |table(x) - exact(x)| for every x the table covers; `slope` bounds the
    transform's derivative, so an input error e becomes an output error of at most slope * e.
    """

    transform: Transform
    key: tuple
    """What `_table` was built from; identifies the transform in caches."""
    cells: np.ndarray
    """One row per table cell: (x_low, 1 / width, y_low, y_high - y_low). Kept as rows so that
    a lookup reads one cache line, not four scattered ones (1.2x faster than four arrays)."""
    nodes_x: np.ndarray
    """The table's nodes in increasing order, and the running maximum of the C function's values
    there (increasing, for searchsorted; it only ever raises a value, see `_bracket`)."""
    nodes_y: np.ndarray
    error: float
    slope: float

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Transform a float64 vector; values beyond the table use the exact function."""
        magnitude = np.abs(x)
        cell = magnitude.view(np.int64) >> (_MANTISSA_BITS - _CELL_BITS)
        cell -= ((_EXPONENT_BIAS + _LOW_OCTAVE) << _CELL_BITS) - 1
        cells_per_sign = self.cells.shape[0] // 2
        np.clip(cell, 0, cells_per_sign - 1, out=cell)
        cell += (x < 0) * cells_per_sign
        largest = magnitude.max(initial=0.0)
        row = self.cells.take(cell, axis=0)
        frac = magnitude
        frac -= row[:, 0]
        frac *= row[:, 1]
        y = row[:, 3] * frac
        y += row[:, 2]
        if not largest < 2.0**_HIGH_OCTAVE:  # also true when a value is NaN
            beyond = ~(np.abs(x) < 2.0**_HIGH_OCTAVE)
            y[beyond] = exact_apply(self.transform, x[beyond])
        return y


def exact_apply(transform: Transform, x: np.ndarray) -> np.ndarray:
    """FlowKit's own transform of a float64 vector (the reference the fast path must match)."""
    return np.asarray(transform.apply(x), dtype=np.float64).reshape(-1)


def _positive_nodes() -> np.ndarray:
    octaves = np.arange(_LOW_OCTAVE, _HIGH_OCTAVE, dtype=np.float64)
    steps = 1.0 + np.arange(2**_CELL_BITS, dtype=np.float64) / 2**_CELL_BITS
    log_spaced = (np.exp2(octaves)[:, None] * steps[None, :]).reshape(-1)
    return np.concatenate(([0.0], log_spaced, [2.0**_HIGH_OCTAVE]))


@lru_cache(maxsize=32)
def _table(kind: type, t: float, w: float, m: float, a: float) -> InterpolatedTransform:
    transform = kind(param_t=t, param_w=w, param_m=m, param_a=a)
    positive = _positive_nodes()
    nodes = np.concatenate((positive, -positive))
    values = exact_apply(transform, nodes)
    n = positive.size
    lows = np.concatenate((np.arange(n - 1), n + np.arange(n - 1)))
    x_low, x_high = np.abs(nodes[lows]), np.abs(nodes[lows + 1])
    y_low, y_high = values[lows], values[lows + 1]
    signs = np.where(lows < n, 1.0, -1.0)
    midpoints = signs * (x_low + x_high) / 2
    midpoint_error = np.abs(exact_apply(transform, midpoints) - (y_low + y_high) / 2)
    secant = np.abs(y_high - y_low) / (x_high - x_low)
    order = np.argsort(nodes, kind="stable")
    return InterpolatedTransform(
        transform=transform,
        key=(kind, t, w, m, a),
        cells=np.column_stack((x_low, 1.0 / (x_high - x_low), y_low, y_high - y_low)),
        nodes_x=nodes[order],
        nodes_y=np.maximum.accumulate(values[order]),
        error=float(_ERROR_SAFETY * midpoint_error.max() + _ERROR_FLOOR),
        slope=float(2.0 * secant.max()),
    )


def data_space_bracket(transform: Transform, threshold: float) -> tuple[float, float] | None:
    """(below, above): untransformed values on either side of where a logicle or hyperlog
    transform crosses `threshold`, so that a range test can be made without transforming.

    FlowKit's value of the transform is below `threshold` at `below` and above it at `above`,
    each by more than the root finder's noise; the true transform is increasing, so every x <
    below transforms below the threshold and every x > above above it, in FlowKit's arithmetic
    too. Only values between the two (a band about 1e-9 of x wide) need the transform itself.
    None for other transforms and for thresholds outside the table's range.
    """
    table = interpolated(transform)
    if table is None or not np.isfinite(threshold):
        return None
    return _bracket(table.key, float(threshold))


@lru_cache(maxsize=4096)
def _bracket(key: tuple, threshold: float) -> tuple[float, float] | None:
    table = _table(*key)
    low_target, high_target = threshold - _ERROR_FLOOR, threshold + _ERROR_FLOOR
    xs, ys = table.nodes_x, table.nodes_y
    below = np.searchsorted(ys, low_target, side="left") - 1
    above = np.searchsorted(ys, high_target, side="right")
    if below < 0 or above >= xs.size:
        return None
    low, high = float(xs[below]), float(xs[above])
    for _ in range(2):  # each pass narrows the band 1024 times, with the C function itself
        grid = np.linspace(low, high, 1025)
        values = exact_apply(table.transform, grid)
        under, over = np.flatnonzero(values < low_target), np.flatnonzero(values > high_target)
        if under.size:
            low = float(grid[under[-1]])
        if over.size:
            high = float(grid[over[0]])
    ends = exact_apply(table.transform, np.array([low, high]))
    return (low, high) if ends[0] < low_target and ends[1] > high_target else None


def interpolated(transform: Transform) -> InterpolatedTransform | None:
    """The table for a logicle or hyperlog transform, or None for any other transform."""
    for kind in (fk_transforms.LogicleTransform, fk_transforms.HyperlogTransform):
        if isinstance(transform, kind):
            return _table(
                kind,
                float(transform.param_t),
                float(transform.param_w),
                float(transform.param_m),
                float(transform.param_a),
            )
    return None


def slope_bound(transform: Transform) -> float | None:
    """Largest derivative of a transform FlowKit computes with plain numpy, None if unbounded.

    Only transforms with a bounded slope may take inexact (fast-compensated) input: their output
    error is then at most slope * input error. The others get exactly compensated input.
    """
    if isinstance(transform, fk_transforms.LinearTransform):
        return 1.0 / abs(transform.param_t + transform.param_a)
    if isinstance(transform, fk_transforms.AsinhTransform):
        ln10 = np.log(10.0)
        pre_scale = np.sinh(transform.param_m * ln10) / transform.param_t
        return float(abs(pre_scale / ((transform.param_m + transform.param_a) * ln10)))
    return None
