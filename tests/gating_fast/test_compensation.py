"""`compensate_rows` (the fast engine's per-chunk compensation) against numpy's product."""

from __future__ import annotations

import numpy as np
import pytest

from gating.engine._compensation import compensate_rows

DETECTORS = [5, 1, 6, 2]


def numpy_product(events: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    block = np.asarray(events, dtype=np.float64)[:, DETECTORS]
    with np.errstate(invalid="ignore"):
        magnitudes = np.maximum(block.max(axis=0, initial=0.0), -block.min(axis=0, initial=0.0))
    return (block @ inverse).T, magnitudes


@pytest.fixture
def events() -> np.ndarray:
    """1300 events (two full blocks and a part) × 8 channels, signed, as a cytometer writes."""
    rng = np.random.default_rng(11)
    return (rng.lognormal(6, 2, (1300, 8)) * rng.choice([-1, 1], (1300, 8))).astype(np.float32)


@pytest.fixture
def inverse() -> np.ndarray:
    spill = np.eye(4) + np.random.default_rng(5).uniform(0, 0.3, (4, 4)) * (1 - np.eye(4))
    return np.linalg.inv(spill)


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8"])
def test_any_byte_order_or_width_gives_the_float64_product(events, inverse, dtype):
    stored = events.astype(dtype)
    compensated, magnitudes = compensate_rows(stored, DETECTORS, inverse)
    expected, expected_magnitudes = numpy_product(events, inverse)
    np.testing.assert_allclose(compensated, expected, rtol=1e-14, atol=1e-9)
    np.testing.assert_array_equal(magnitudes, expected_magnitudes)
    assert compensated.flags.c_contiguous and compensated.shape == (4, 1300)


def test_a_column_slice_of_the_file_buffer(events, inverse):
    """The engine passes FlowIO's buffer sliced to the channels it keeps (rows not contiguous)."""
    stored = events.astype(">f4")[:, 1:7]
    compensated, _ = compensate_rows(stored, [d - 1 for d in DETECTORS], inverse)
    np.testing.assert_allclose(
        compensated, numpy_product(events, inverse)[0], rtol=1e-14, atol=1e-9
    )


def test_nan_marks_its_detector_magnitude(events, inverse):
    events[700, DETECTORS[2]] = np.nan
    compensated, magnitudes = compensate_rows(events, DETECTORS, inverse)
    assert np.isnan(magnitudes[2]) and not np.isnan(magnitudes[[0, 1, 3]]).any()
    assert np.isnan(compensated[:, 700]).all() and not np.isnan(compensated[:, 699]).any()
