"""Per-population medians of compensated fluorescence, without copying the event matrix per gate.

The compensated values are those of one `raw[:, detectors] @ inv(S)` product over all events, as
before: BLAS rounds a row differently depending on where it falls in the blocks of the call, so a
chunked product would move a few values by an ulp. The product is then laid out column-major
(one contiguous float64 column per marker) and each median selects within a 1-D gather of one
column, with `np.median`'s arithmetic: the middle order statistic, or the mean of the two middle
ones for an even count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK_ROWS = 1 << 13


def fluorescence_matrix(
    events: np.ndarray,
    columns: Sequence[int],
    detectors: Sequence[int] = (),
    spill: np.ndarray | None = None,
) -> np.ndarray:
    """events × len(columns) float64, column-major: raw `columns` of `events`, those among the
    matrix `detectors` compensated (raw detector block times the inverse of `spill`).

    Copies go by blocks of rows: a column-major write of a row block stays in cache, where a
    whole-column copy would stride through the source once per column.
    """
    detectors = list(detectors) if spill is not None else []
    compensated = None
    if detectors:
        block = np.empty((events.shape[0], len(detectors)), dtype=np.float64)
        _copy_rows(block, list(range(len(detectors))), events, detectors)
        compensated = block @ np.linalg.inv(spill)
        del block
    out = np.empty((events.shape[0], len(columns)), dtype=np.float64, order="F")
    raw = [k for k, c in enumerate(columns) if c not in detectors]
    _copy_rows(out, raw, events, [columns[k] for k in raw])
    if compensated is not None:
        done = [k for k, c in enumerate(columns) if c in detectors]
        _copy_rows(out, done, compensated, [detectors.index(columns[k]) for k in done])
    return out


def _copy_rows(
    target: np.ndarray, target_columns: list[int], source: np.ndarray, source_columns: list[int]
) -> None:
    """target[:, target_columns] = source[:, source_columns], by blocks of rows."""
    if not target_columns:
        return
    for start in range(0, source.shape[0], CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        for t, s in zip(target_columns, source_columns, strict=True):
            target[rows, t] = source[rows, s]


def column_medians(values: np.ndarray, mask: np.ndarray, has_nan: np.ndarray) -> np.ndarray:
    """`np.median(values[mask], axis=0)` for a column-major `values`; NaN for an empty mask.

    `has_nan[k]`: column k holds a NaN somewhere, so its medians go through `np.median` (which
    answers NaN when the selection holds one).
    """
    rows = np.flatnonzero(mask)
    medians = np.full(values.shape[1], np.nan)
    if not rows.size:
        return medians
    for k in range(values.shape[1]):
        selected = values[:, k].take(rows)
        medians[k] = np.median(selected) if has_nan[k] else _median(selected)
    return medians


def _median(selected: np.ndarray) -> np.float64:
    """Median of a NaN-free 1-D array, partitioning it in place around one position only."""
    half = selected.size // 2
    selected.partition(half)
    if selected.size % 2:
        return selected[half]
    # np.median takes the mean of the two middle values: (a + b) / 2 in float64
    return (selected[:half].max() + selected[half]) / 2.0
