"""The fast gating path and FlowKit's gate_sample give identical tables on the demo tubes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gating import FlowSettings, analyse_fcs
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
