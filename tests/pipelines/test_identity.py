from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelines.identity import (
    Correction,
    IdentityError,
    IdentityResolver,
    ManifestEntry,
    normalise_timepoint,
    read_manifest,
    read_manifest_file,
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


def test_a_pattern_named_sample_completes_from_the_one_manifest_entry_of_its_visit():
    entries = [
        ManifestEntry("S-9", "P003", "D14", date(2026, 4, 17), date(2026, 4, 2), 80.0),
        ManifestEntry("S-7", "P004", "D7", None, None, 60.0),
        ManifestEntry("S-8", "P004", "D7", None, None, 90.0),
    ]
    resolver = _resolver(entries)
    ident = resolver.resolve("P003_D14")
    assert (ident.accession, ident.dna_input_ng, ident.study_day) == ("S-9", 80.0, 15)
    two = resolver.resolve("P004 Day 7")
    assert (two.accession, two.dna_input_ng, two.study_day) == (None, None, 7)
    assert resolver.resolve("P005_D7").dna_input_ng is None
    assert resolver.accessions == {"S-9"}
    assert resolver.notes == [
        "P004 Day 7: named by pattern, 2 manifest entries for P004 D7 (S-7, S-8): which draw it "
        "is cannot be told, name it by accession; nominal study day, DNA input from the export "
        "or the settings",
        "P005_D7: named by pattern, no manifest entry for that patient and timepoint; nominal "
        "study day, DNA input from the export or the settings",
    ]


def test_a_correction_manifest_needs_both_correction_columns(tmp_path):
    path = _write(tmp_path, "accession,patient_id,timepoint,corrected_by\nA1,P001,BL,A. Tech\n")
    with pytest.raises(IdentityError, match="corrected_by column but no correction_reason"):
        read_manifest_file(path)


def test_a_correction_manifest_row_says_who_and_why(tmp_path):
    path = _write(
        tmp_path,
        "accession,patient_id,timepoint,Correction Reason,Corrected By\n"
        "A1,P002,BL,label swapped,A. Tech\nA2,P001,D7,,\n",
    )
    manifest = read_manifest_file(path)
    assert manifest.corrects
    assert [e.correction for e in manifest.entries] == [
        Correction("label swapped", "A. Tech"),
        None,
    ]
