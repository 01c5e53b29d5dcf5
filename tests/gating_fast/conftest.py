"""Fixtures for the fast gating tests: FlowKit as the reference every result must equal."""

from __future__ import annotations

from collections.abc import Callable

import flowkit
import numpy as np
import pandas as pd
import pytest

from gating.engine import GatingResult, gate_sample


def _compare(strategy: flowkit.GatingStrategy, sample: flowkit.Sample) -> GatingResult:
    """Evaluate both ways; every membership, event by event, and the report must be equal."""
    ours = gate_sample(strategy, sample)
    theirs = strategy.gate_sample(sample)
    assert len(ours.gates) == len(theirs.report)
    for (name, path), result in ours.gates.items():
        expected = theirs.get_gate_membership(name, path)
        mismatched = np.flatnonzero(expected != result.membership)
        assert mismatched.size == 0, f"{path}/{name}: events {mismatched[:10]} differ"
    pd.testing.assert_frame_equal(
        ours.report().reset_index(drop=True), theirs.report.reset_index(drop=True)
    )
    return ours


@pytest.fixture
def same_as_flowkit() -> Callable[[flowkit.GatingStrategy, flowkit.Sample], GatingResult]:
    return _compare
