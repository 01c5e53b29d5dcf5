"""A plate of standards and NTCs only (assay qualification, curve trend) is taken: its wells and
curves reach qpcr_wells and qpcr_runs, car_copies stays empty, and the validation suites pass."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import CAR_TARGET, GOOD_CURVES, REFERENCE_TARGET, build_plate
from pipelines.home import LabHome
from pipelines.ingest import Processor
from pipelines.warehouse import connect


def test_standards_only_plate_keeps_its_curve(tmp_path: Path) -> None:
    home = LabHome(tmp_path / "lab").ensure()
    plate = build_plate(
        instrument_format="quantstudio-text", run_id="STD-ONLY", instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[], curves=GOOD_CURVES,
        rng=np.random.default_rng(0), wells_per_plate=96, cq_noise_sd=0.0,
    )  # fmt: skip
    path = home.inbox / "standards.txt"
    write_quantstudio_text(path, plate)
    outcome = Processor(home).process(path, "run-1")

    assert outcome.status == "ingested", outcome.reason
    assert outcome.rows["car_copies"] == 0 and outcome.rows["qpcr_wells"] == len(plate.wells)
    assert "no sample wells: only the standard curve and controls are kept" in outcome.warnings
    runs = (
        connect(home.warehouse)
        .execute(
            "select target, qc_verdict, slope, efficiency_pct, r_squared from qpcr_runs order by 1"
        )
        .fetchall()
    )
    targets = sorted([CAR_TARGET, REFERENCE_TARGET])
    assert [(target, verdict) for target, verdict, *_ in runs] == [(t, "PASS") for t in targets]
    for (target, _, slope, efficiency, r_squared), name in zip(runs, targets, strict=True):
        truth = GOOD_CURVES[name]
        assert abs(slope - truth.slope) < 0.05, target
        assert abs(efficiency - (10 ** (-1 / truth.slope) - 1) * 100) < 2.0, target
        assert r_squared > 0.99
