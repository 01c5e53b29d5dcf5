"""Small real exports for the engine's tests: a QuantStudio plate in a second."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np

from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import GOOD_CURVES, TrueCurve, build_plate
from pipelines.demo.trial import Sample


def qpcr_plate(
    path: Path, patient: str, run_id: str, curves: dict[str, TrueCurve] = GOOD_CURVES,
    shift: float = 0.0, run_started: datetime = datetime(2026, 5, 1, 9),
    dna_loaded_ng: float = 200.0,
) -> Path:  # fmt: skip
    """A 96-well QuantStudio export of `patient`'s D7 and D14 samples (two car_copies rows);
    `shift` moves every Cq, as a corrected re-export of the same run would; `dna_loaded_ng` is
    the DNA really in each sample well (the export does not say: copies per ug come from the
    lab's setting, so loading less reads as fewer copies)."""
    sample = Sample("x", "P001", "D14", date(2026, 1, 1), dna_loaded_ng)
    curves = {t: TrueCurve(c.slope, c.intercept + shift) for t, c in curves.items()}
    plate = build_plate(
        instrument_format="quantstudio-text", run_id=run_id, instrument="QuantStudio 7 Flex",
        run_started=run_started, samples=[(f"{patient}_D7", sample),
                                                      (f"{patient}_D14", sample)],
        curves=curves, rng=np.random.default_rng(0), wells_per_plate=96,
        cq_noise_sd=0.0,
    )  # fmt: skip
    write_quantstudio_text(path, plate)
    return path
