from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelines.identity import (
    IdentityError,
    IdentityResolver,
    ManifestEntry,
    normalise_timepoint,
    read_manifest,
)
from pipelines.settings import DEFAULT_SAMPLE_NAME_PATTERN


@pytest.mark.parametrize(
    ("spelling", "label"),
    [
        ("Day 7", "D7"), ("d+7", "D7"), ("D07", "D7"), ("day14", "D14"), ("D0", "D0"),
        ("Wk4", "D28"), ("Week 1", "D7"), ("Month 3", "M3"), ("M12", "M12"), ("Day 90", "M3"),
        ("Baseline", "BL"), ("pre-LD", "BL"), ("Screening", "SCREEN"), ("Product", "PRODUCT"),
        ("month 1", "D28"),
    ],
)  # fmt: skip
def test_timepoint_spellings_normalise(spelling, label):
    assert normalise_timepoint(spelling) == label


@pytest.mark.parametrize("spelling", ["Day 45", "M5", "tomorrow", "D-3"])
def test_timepoints_outside_the_schedule_are_refused(spelling):
    with pytest.raises(IdentityError, match="schedule"):
        normalise_timepoint(spelling)


def _resolver(entries=()):
    return IdentityResolver(entries, DEFAULT_SAMPLE_NAME_PATTERN)


def test_pattern_resolves_sample_names():
    assert _resolver().resolve("P012_D14").patient_id == "P012"
    ident = _resolver().resolve("P012-Day 14")
    assert (ident.patient_id, ident.timepoint, ident.study_day) == ("P012", "D14", 14)
    assert _resolver().resolve("P003 Month 3").study_day == 90


@pytest.mark.parametrize("name", ["../../etc_D14", "Sample 1", "", "P01/../x_D1"])
def test_unresolvable_or_unsafe_names_are_refused(name):
    with pytest.raises(IdentityError):
        _resolver().resolve(name)


def test_manifest_wins_and_gives_study_day_from_dates():
    entries = [
        ManifestEntry("S-1", "P001", "D14", date(2026, 3, 16), date(2026, 3, 2), 150.0),
        ManifestEntry("S-2", "P001", "BL", date(2026, 2, 23), None, None),
    ]
    resolver = _resolver(entries)
    first = resolver.resolve("S-1")
    assert (first.patient_id, first.timepoint, first.study_day, first.dna_input_ng) == (
        "P001", "D14", 14, 150.0,
    )  # fmt: skip
    assert resolver.resolve("S-2").study_day == -7  # infusion date known from the patient's row


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_with_duplicate_accession_is_refused(tmp_path):
    path = _write(tmp_path, "accession,patient_id,timepoint\nA1,P001,BL\nA1,P002,D7\n")
    with pytest.raises(IdentityError, match="more than once: A1"):
        read_manifest(path)


def test_manifest_with_unsafe_patient_is_refused(tmp_path):
    path = _write(tmp_path, "accession,patient_id,timepoint\nA1,../../etc,BL\n")
    with pytest.raises(IdentityError, match=r"row 2: unsafe patient id '\.\./\.\./etc'"):
        read_manifest(path)


def test_manifest_columns_by_alias_and_timepoint_spelling(tmp_path):
    path = _write(
        tmp_path, "Sample ID,Subject,Visit,Collection Date,DNA ng\nA1,P001,Day 7,2026-03-09,120\n"
    )
    (entry,) = read_manifest(path)
    assert (entry.accession, entry.patient_id, entry.timepoint, entry.dna_input_ng) == (
        "A1", "P001", "D7", 120.0,
    )  # fmt: skip
    assert entry.collection_date == date(2026, 3, 9)
