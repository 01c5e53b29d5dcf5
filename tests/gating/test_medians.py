"""Per-population medians (`gating.engine.population_medians`) against `np.median`, population by population."""

from __future__ import annotations

import numpy as np
import pytest

from gating.engine import population_medians
from gating.engine._medians import membership_patterns


def expected_medians(values: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """np.median of each mask's float32 values taken in float64 (the mean of the two middle
    values is then exact, as population_medians computes it); NaN for an empty mask."""
    return np.array([
        [np.median(values[mask, k].astype(np.float64)) if mask.any() else np.nan
         for k in range(values.shape[1])]
        for mask in masks
    ])  # fmt: skip


def nested_masks(rng: np.random.Generator, events: int, populations: int) -> list[np.ndarray]:
    """A random gate tree: each population a random subset of an earlier one (or of all)."""
    masks: list[np.ndarray] = []
    for index in range(populations):
        parent = masks[rng.integers(index)] if index and rng.random() < 0.8 else None
        inside = rng.random(events) < rng.uniform(0.05, 0.95)
        masks.append(inside if parent is None else inside & parent)
    return masks


def lab_like_values(rng: np.random.Generator, events: int, columns: int) -> np.ndarray:
    """Compensated fluorescence: a negative-spread cluster round zero and log-normal positives,
    ties from a coarse grid in one column, float32, column-major."""
    negative = rng.normal(0.0, 150.0, (events, columns))
    positive = rng.lognormal(8.0, 1.2, (events, columns))
    values = np.where(rng.random((events, columns)) < 0.6, negative, positive)
    values[:, 0] = np.round(values[:, 0] / 50.0) * 50.0
    return np.asfortranarray(values.astype(np.float32))


@pytest.mark.parametrize("events, populations", [(20_001, 12), (50_000, 34), (3_000, 70)])
def test_equal_np_median_on_nested_populations(events, populations):
    rng = np.random.default_rng(events + populations)
    values = lab_like_values(rng, events, 4)
    masks = nested_masks(rng, events, populations)
    masks[-1][:] = False  # an empty population
    masks[-2][:] = False
    masks[-2][rng.integers(events)] = True  # a single event
    medians = population_medians(values, masks)
    np.testing.assert_array_equal(medians, expected_medians(values, masks))


def test_nan_infinities_and_signed_zeros():
    """A population holding a NaN has a NaN median (as np.median); infinities and -0.0 order
    as numbers do."""
    rng = np.random.default_rng(7)
    events = 4_000
    values = lab_like_values(rng, events, 3)
    values[::97, 1] = np.nan
    values[::13, 2] = np.inf
    values[1::13, 2] = -np.inf
    values[2::5, 2] = -0.0
    values[3::5, 2] = 0.0
    clean = np.ones(events, dtype=bool)
    clean[::97] = False
    masks = [np.ones(events, dtype=bool), clean, rng.random(events) < 0.3]
    medians = population_medians(values, masks)
    np.testing.assert_array_equal(medians, expected_medians(values, masks))
    assert np.isnan(medians[0, 1]) and not np.isnan(medians[1, 1])


def test_values_in_one_narrow_bin():
    """Every value in one order bin (a cluster of nearly equal values): selection alone."""
    rng = np.random.default_rng(3)
    values = np.asfortranarray((1000.0 + rng.random((10_000, 1))).astype(np.float32))
    masks = nested_masks(rng, 10_000, 8)
    np.testing.assert_array_equal(
        population_medians(values, masks), expected_medians(values, masks)
    )


def test_patterns_group_events_by_memberships():
    a = np.array([1, 1, 0, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 1, 1], dtype=bool)
    codes, member = membership_patterns([a, b], 5)
    np.testing.assert_array_equal(codes, [0, 1, 2, 3, 0])
    np.testing.assert_array_equal(member, [[1, 1, 0, 0], [1, 0, 0, 1]])


def test_more_than_64_populations_keep_every_membership():
    """Events differing only in population 70's mask get different patterns."""
    masks = [np.ones(4, dtype=bool) for _ in range(71)]
    masks[70] = np.array([1, 0, 1, 0], dtype=bool)
    codes, member = membership_patterns(masks, 4)
    assert codes[0] == codes[2] != codes[1] == codes[3]
    assert member[70, codes[0]] and not member[70, codes[1]]


def test_rejects_float64_values():
    with pytest.raises(TypeError, match="float32"):
        population_medians(np.zeros((3, 1)), [np.ones(3, dtype=bool)])
