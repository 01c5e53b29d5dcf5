"""A FlowJo 10 workspace's gating strategy, via FlowKit's Workspace."""

from __future__ import annotations

import re
from pathlib import Path

import flowkit
import numpy as np
import pytest

from gating.engine import ChannelLabels, compile_strategy

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def workspace(shared_data: Path) -> flowkit.Workspace:
    folder = shared_data / "flow" / "flowjo"
    return flowkit.Workspace(
        str(folder / "simple_poly_and_rect.wsp"),
        fcs_samples=str(folder / "data_set_simple_line_100.fcs"),
    )


def test_counts_match_flowkit_and_flowjo(workspace, shared_data: Path, same_as_flowkit) -> None:
    sample_id = workspace.get_sample_ids()[0]
    strategy = workspace.get_gating_strategy(sample_id)
    result = same_as_flowkit(strategy, workspace.get_sample(sample_id))
    wsp = (shared_data / "flow" / "flowjo" / "simple_poly_and_rect.wsp").read_text()
    flowjo = dict(re.findall(r'<Population name="(\w+)".*?count="(-?\d+)"', wsp)[:2])
    assert {name: gate.count for (name, _), gate in result.gates.items()} == {
        name: int(count) for name, count in flowjo.items()
    }


def test_workspace_gates_on_events_that_fill_them(workspace, same_as_flowkit) -> None:
    """The workspace's file has no event inside its gates; spread events over them instead."""
    sample_id = workspace.get_sample_ids()[0]
    strategy = workspace.get_gating_strategy(sample_id)
    rng = np.random.default_rng(3)
    events = np.column_stack(
        (rng.uniform(-50000, 150000, 5000), rng.uniform(-105000, 135000, 5000))
    )
    sample = flowkit.Sample(events, sample_id=sample_id, channel_labels=["channel_A", "channel_B"])
    expected = same_as_flowkit(strategy, sample)
    assert all(gate.count > 0 for gate in expected.gates.values())
    channels = ChannelLabels.of(["channel_A", "channel_B"])
    ours = compile_strategy(strategy, channels).apply(events.astype(np.float32))
    float32_sample = flowkit.Sample(
        events.astype(np.float32), sample_id=sample_id, channel_labels=["channel_A", "channel_B"]
    )
    reference = strategy.gate_sample(float32_sample)
    for (name, path), gate in ours.gates.items():
        assert np.array_equal(gate.membership, reference.get_gate_membership(name, path))
