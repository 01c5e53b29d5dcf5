"""Gate-space columns for one chunk of events: compensated and transformed once, shared by gates.

A `Source` names what a gate dimension reads (a channel, the matrix compensating it, the
transform on top, or a ratio). `Chunk.values` returns those values for the requested events with
a bound on their distance from FlowKit's values; `Chunk.exact` returns FlowKit's values
themselves, computed with FlowKit's arithmetic, for the few events a gate cannot decide.

Fast compensation multiplies each chunk's detector block by the inverse spillover matrix
(`Compensation`, with its error bound, in `_plan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from flowkit import transforms as fk_transforms

from gating.engine._compensation import compensate_rows
from gating.engine._plan import Bounds, Compensation, Source
from gating.engine._transforms import data_space_bracket, exact_apply, interpolated, slope_bound
from gating.flowkit_adapter import Transform

_FORMULA_SLACK = 1e-12
# A first request for more than 1/_DENSE_FRACTION of the chunk computes the whole chunk.
_DENSE_FRACTION = 3


@dataclass
class _Column:
    values: np.ndarray
    done: np.ndarray | None
    """Which events hold a value; None once all do."""
    error: float


@dataclass
class Chunk:
    """One contiguous block of events with its lazily computed gate-space columns."""

    raw: np.ndarray
    """The chunk's events as given (n x channels: float32 in the file's byte order, or
    float64); a column is converted to float64 when first read."""
    compensations: Mapping[str, Compensation]
    transforms: Mapping[str, Transform]
    bounds: Bounds
    ratio_channels: Mapping[str, tuple[int, int]]
    _compensated: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _columns: dict[Source, _Column] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.raw.shape[0]

    def values(self, source: Source, rows: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Values of `source` at `rows` (None: all) and a bound on their error vs FlowKit.

        Each event's value is computed once per chunk, on first request, so a transform shared by
        several gates runs once and a child gate computes only its parent's events.
        """
        column = self._columns.get(source)
        if column is None:
            column = self._new_column(source, rows)
            self._columns[source] = column
        elif column.done is not None:
            self._fill(column, source, rows)
        return (column.values if rows is None else column.values[rows]), column.error

    def _new_column(self, source: Source, rows: np.ndarray | None) -> _Column:
        if rows is not None and rows.size * _DENSE_FRACTION > self.size:
            rows = None  # computing every event beats gathering most of them
        computed, error = self._compute(source, rows)
        if rows is None:
            return _Column(computed, None, error)
        values = np.empty(self.size)
        values[rows] = computed
        done = np.zeros(self.size, dtype=bool)
        done[rows] = True
        return _Column(values, done, error)

    def _fill(self, column: _Column, source: Source, rows: np.ndarray | None) -> None:
        wanted = np.flatnonzero(~column.done) if rows is None else rows[~column.done[rows]]
        if wanted.size:
            computed, error = self._compute(source, wanted)
            column.values[wanted] = computed
            column.done[wanted] = True
            column.error = max(column.error, error)
        if rows is None:
            column.done = None

    def bracket(self, source: Source, threshold: float | None) -> tuple[float, float] | None:
        """Where `source`'s transform crosses `threshold`, in untransformed values, when a range
        test on it can be made without transforming: a logicle or hyperlog dimension whose
        Gating-ML bounds (clamping) do not change the test at this threshold."""
        if threshold is None or source.transform is None or source.ratio is not None:
            return None
        low, high = self.bounds.get(source.transform, (None, None))
        if (low is not None and threshold <= low) or (high is not None and threshold > high):
            return None  # clamped values sit on the bound: the test depends on the clamp
        return data_space_bracket(self.transforms[source.transform], threshold)

    def exact(self, source: Source, rows: np.ndarray) -> np.ndarray:
        """FlowKit's own value of `source` at `rows`."""
        if source.ratio is not None:
            values = self._ratio(source.ratio, rows)
        else:
            values = self._exact_base(source, rows)
        return self._exact_transform(source.transform, values)

    def _compute(self, source: Source, rows: np.ndarray | None) -> tuple[np.ndarray, float]:
        if source.ratio is not None:
            ratio = self._ratio(source.ratio, rows)
            return self._exact_transform(source.transform, ratio), 0.0
        transform = self.transforms[source.transform] if source.transform else None
        if transform is None:
            return self._fast_base(source, rows)
        table = interpolated(transform)
        if table is not None:
            base, error = self._fast_base(source, rows)
            values = self._clamp(source.transform, table.apply(base))
            return values, table.error + table.slope * error
        slope = slope_bound(transform)
        if slope is not None:
            base, error = self._fast_base(source, rows)
            values = self._clamp(source.transform, exact_apply(transform, base))
            if error > 0:
                error = slope * error + _FORMULA_SLACK * (
                    1.0 + float(np.abs(values).max(initial=0))
                )
            return values, error
        rows_all = np.arange(self.size) if rows is None else rows
        return self._exact_transform(source.transform, self._exact_base(source, rows_all)), 0.0

    def _raw_column(self, channel: int, rows: np.ndarray | None) -> np.ndarray:
        column = self.raw[:, channel] if rows is None else self.raw[rows, channel]
        return column.astype(np.float64)

    def _fast_base(self, source: Source, rows: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Raw values, or one compensated column of the chunk's compensated block."""
        if source.compensation is None:
            return self._raw_column(source.channel, rows), 0.0
        comp = self.compensations[source.compensation]
        compensated, errors = self._compensated_block(source.compensation)
        position = comp.detectors.index(source.channel)
        column = compensated[position]
        return (column if rows is None else column[rows]), float(errors[position])

    def compensated(self, key: str) -> np.ndarray:
        """Every event of the chunk with matrix `key`'s detectors compensated (k × chunk)."""
        return self._compensated_block(key)[0]

    def _compensated_block(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """One matrix's detectors compensated for every event of the chunk (k × chunk, S⁻¹ᵀ ·
        detector rows) and per-detector error bounds.

        Every event, not only a parent's: one pass over the chunk's rows (`compensate_rows`)
        costs less than gathering the k detector columns at a parent's rows.
        """
        cached = self._compensated.get(key)
        if cached is None:
            comp = self.compensations[key]
            product, magnitude = compensate_rows(self.raw, comp.detectors, comp.inverse)
            cached = (product, comp.error_scale * (magnitude @ np.abs(comp.inverse)))
            self._compensated[key] = cached
        return cached

    def _exact_base(self, source: Source, rows: np.ndarray) -> np.ndarray:
        if source.compensation is None:
            return self._raw_column(source.channel, rows)
        comp = self.compensations[source.compensation]
        block = np.asarray(self.raw[rows][:, list(comp.detectors)], dtype=np.float64)
        return comp.exact(block)[:, comp.detectors.index(source.channel)].copy()

    def _ratio(self, ratio_id: str, rows: np.ndarray | None) -> np.ndarray:
        """FlowKit's RatioTransform arithmetic, on raw (uncompensated) values as FlowKit does."""
        ratio = self.transforms[ratio_id]
        assert isinstance(ratio, fk_transforms.RatioTransform)
        x = self._raw_column(self.ratio_channels[ratio_id][0], rows)
        y = self._raw_column(self.ratio_channels[ratio_id][1], rows)
        values = ratio.param_a * ((x - ratio.param_b) / (y - ratio.param_c))
        return self._clamp(ratio_id, values)

    def _exact_transform(self, transform_id: str | None, values: np.ndarray) -> np.ndarray:
        if transform_id is None:
            return values
        return self._clamp(transform_id, exact_apply(self.transforms[transform_id], values))

    def _clamp(self, transform_id: str, values: np.ndarray) -> np.ndarray:
        """Gating-ML boundMin/boundMax: transformed values beyond a bound are held at it."""
        low, high = self.bounds.get(transform_id, (None, None))
        if low is not None or high is not None:
            np.clip(values, low, high, out=values)
        return values
