"""The fast gating path and FlowKit's gate_sample give identical tables on the demo tubes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gating import FlowSettings, analyse_fcs
from gating.analysis import gate_dataset
from gating.fcs import read_fcs
from gating.templates import load_template
from pipelines.demo.flow_files import demo_tubes, write_tube

TUBES = [
    ("P002", "D10", "tcell"),  # BD LSRFortessa, big-endian, many CAR+ cells
    ("P003", "M3", "bcell"),  # CytoFLEX, B cells recovering
    ("P001", "PRODUCT", "tcell"),  # the infused product, no counting beads
]


@pytest.mark.parametrize(("patient", "timepoint", "panel"), TUBES)
def test_fast_engine_equals_flowkit(tmp_path, patient, timepoint, panel):
    tube = next(
        t for t in demo_tubes()
        if (t.patient_id, t.timepoint, t.panel) == (patient, timepoint, panel)
    )  # fmt: skip
    path = write_tube(tmp_path / tube.file_name, tube, np.random.default_rng(11))
    fast = analyse_fcs(path, FlowSettings(gating_engine="fast"))
    reference = analyse_fcs(path, FlowSettings(gating_engine="flowkit"))
    pd.testing.assert_frame_equal(fast.populations, reference.populations)
    pd.testing.assert_frame_equal(fast.mfi, reference.mfi)
    assert fast.populations["count"].sum() > 0


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="gating_engine"):
        FlowSettings(gating_engine="turbo")


def test_medians_equal_numpy_on_flowkit_compensated_events(tmp_path):
    """Each flow_mfi median equals np.median of FlowKit's own compensated events over FlowKit's
    own membership, to the float32 precision the medians are selected in."""
    tube = next(t for t in demo_tubes() if (t.patient_id, t.timepoint) == ("P002", "D10"))
    path = write_tube(tmp_path / tube.file_name, tube, np.random.default_rng(5))
    mfi = analyse_fcs(path).mfi.set_index(["gate_path", "marker"])["median_compensated"]
    settings = FlowSettings(gating_engine="flowkit")
    dataset = read_fcs(path)[0]
    gating = gate_dataset(dataset, load_template(settings.templates["tcell"]), settings)
    gating.sample.apply_compensation(gating.matrix)
    compensated = gating.sample.get_events(source="comp")
    checked = 0
    for gate in gating.report.itertuples():
        mask = gating.membership(gate.gate_name, gate.gate_path)
        if not mask.any():
            continue
        path_string = "/".join([*[g for g in gate.gate_path if g != "root"],
                                *([gate.quadrant_parent] if gate.quadrant_parent else []),
                                gate.gate_name])  # fmt: skip
        for index, marker in enumerate(gating.markers):
            if (path_string, marker) not in mfi.index:
                continue
            expected = np.median(compensated[mask, index])
            assert mfi[(path_string, marker)] == pytest.approx(expected, rel=2e-7, abs=2e-3)
            checked += 1
    assert checked >= 300
