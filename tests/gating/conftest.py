"""Small demo FCS files written once per session (a few tubes, not the whole demo trial)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.demo import flow_files

DEMO_CASES = (
    ("P001", "D10"),
    ("P002", "PRODUCT"),
    ("P003", "M3"),
    ("P004", "D14"),
    ("P003", "D28"),
)
"""BD and CytoFLEX files, high and low CAR+, B-cell aplasia and recovery."""


@pytest.fixture(scope="session")
def demo_tubes(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, flow_files.Tube]:
    folder = tmp_path_factory.mktemp("flow_demo")
    rng = np.random.default_rng(7)
    wanted = [t for t in flow_files.demo_tubes() if (t.patient_id, t.timepoint) in DEMO_CASES]
    return {flow_files.write_tube(folder / t.file_name, t, rng): t for t in wanted}


@pytest.fixture(scope="session")
def demo_results(demo_tubes: dict[Path, flow_files.Tube]) -> dict[Path, object]:
    """`analyse_fcs` of every demo tube, computed once."""
    from gating import analyse_fcs

    return {path: analyse_fcs(path) for path in demo_tubes}
