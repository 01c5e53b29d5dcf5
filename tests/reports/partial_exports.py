"""Exports of partial data, cut from the demo trial's real exports."""

from __future__ import annotations

from pathlib import Path

from pipelines.demo import trial


def accession(patient: str, timepoint: str) -> str:
    """The demo manifest's accession of a patient's draw."""
    return next(
        s.accession
        for s in trial.study_samples()
        if s.patient_id == patient and s.timepoint == timepoint
    )


def one_sample_cba_plate(fcap_export: Path, sample: str, path: Path) -> Path:
    """The demo's FCAP Array export with its standards and only `sample`'s two wells."""
    lines = fcap_export.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if ",Sample," not in line or line.split(",")[1] == sample]
    assert len(lines) - len(kept) > 30 and sum(",Sample," in line for line in kept) == 2
    path.write_text("".join(kept), encoding="utf-8")
    return path
