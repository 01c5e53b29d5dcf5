"""Westgard rules on z-score series with known violations, one rule at a time."""

from __future__ import annotations

import pytest

from pipelines.derived.westgard import status, violations_at, westgard


def test_in_control_series_has_no_violation():
    series = [0.3, -0.5, 0.8, -1.2, 0.1, 0.4, -0.2, 1.1, -0.9, 0.6, -0.3]
    assert all(v == [] for v in westgard(series))
    assert status([]) == "in_control"


def test_1_2s_is_only_a_warning():
    found = westgard([0.1, 2.4, -0.3])
    assert found[1] == ["1-2s"]
    assert status(found[1]) == "warning"


def test_1_3s_rejects_one_value_beyond_3_sd():
    found = westgard([0.2, -3.4, 0.1])
    assert "1-3s" in found[1]
    assert status(found[1]) == "reject"


def test_2_2s_needs_two_consecutive_on_the_same_side():
    assert "2-2s" in violations_at([0.0, 2.2, 2.5], 2)
    assert "2-2s" not in violations_at([0.0, 2.2, -2.5], 2)
    assert "2-2s" not in violations_at([2.2, 0.5, 2.5], 2)


def test_r_4s_flags_a_range_beyond_4_sd():
    found = violations_at([0.0, 2.3, -2.1], 2)
    assert "R-4s" in found and "2-2s" not in found
    assert "R-4s" not in violations_at([0.0, 2.3, -1.5], 2)


def test_4_1s_needs_four_consecutive_beyond_1_sd():
    assert "4-1s" in violations_at([1.2, 1.5, 1.1, 1.8], 3)
    assert "4-1s" not in violations_at([1.2, 1.5, 0.9, 1.8], 3)
    assert "4-1s" in violations_at([-1.2, -1.5, -1.1, -1.8], 3)


def test_10_x_needs_ten_on_the_same_side_of_the_mean():
    shifted = [0.4, 0.2, 0.6, 0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.3]
    assert "10-x" in violations_at(shifted, 9)
    assert "10-x" not in violations_at(shifted[:9], 8)
    broken = shifted[:5] + [-0.1] + shifted[6:]
    assert "10-x" not in violations_at(broken, 9)


@pytest.mark.parametrize("rule", ["1-3s", "2-2s", "R-4s", "4-1s", "10-x"])
def test_every_rejection_rule_rejects(rule):
    assert status([rule]) == "reject"
