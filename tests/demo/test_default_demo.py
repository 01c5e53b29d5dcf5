"""Without `--patients` the demo writes what it always wrote: no cohort, no clinical observations."""

from __future__ import annotations

import pytest

from pipelines.demo import trial
from pipelines.demo.generate import COHORT_TRUTH_FILE, TRUTH_FILE, write_demo_trial
from pipelines.home import LabHome

pytestmark = pytest.mark.slow


def test_the_default_demo_writes_no_cohort(tmp_path):
    home = LabHome(tmp_path / "lab").ensure()
    demo = write_demo_trial(home.inbox)
    assert demo.cohort is None
    assert (home.root / TRUTH_FILE).is_file()
    assert not (home.root / COHORT_TRUTH_FILE).exists()
    assert not (home.root / "clinical").exists()
    assert sorted(p.name for p in home.inbox.iterdir()) == sorted(p.name for p in demo.files)
    # the manifest, 3 qPCR plates, 2 bead-array plates, 2 tubes per blood draw, 1 per product
    draws = len(trial.PATIENTS) * len(trial.TIMEPOINTS)
    assert len(demo.files) == 1 + 3 + 2 + 2 * draws + len(trial.PATIENTS)
    assert not any("crs-cohort" in p.name for p in demo.files)
