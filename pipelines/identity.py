"""Who and when a sample is: patient, timepoint and study day.

Resolved, in this order, from the sample manifest (the lab's accession list) and from the
configurable sample-name pattern. The pipeline never guesses: a name that resolves by neither, or
to an unsafe value, is an `IdentityError` and the file is quarantined with that reason. A name
resolved by the pattern takes its collection date and DNA input from the one manifest entry of
that patient and timepoint; with none, or several, it keeps the nominal study day and says so.

Identity is append-only: a manifest may add accessions, and list known ones again unchanged, but
maps an accession elsewhere only as a correction manifest (`correction_reason`, `corrected_by`),
which the ingest engine audits and follows by re-filing the rows that used it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from validation.schemas import SAFE_ID_PATTERN
from validation.timepoints import (
    BASELINE,
    INFUSION_DAY,
    LAST_DAILY_DAY,
    MONTH_DAYS,
    NOMINAL_STUDY_DAY,
    PRODUCT,
    SCHEDULE,
    SCREENING,
)

SAFE_ID = re.compile(SAFE_ID_PATTERN)

_NAMED = {
    "SCREEN": SCREENING, "SCREENING": SCREENING, "SCR": SCREENING,
    "PRODUCT": PRODUCT, "INFUSIONPRODUCT": PRODUCT, "CELLPRODUCT": PRODUCT,
    "CARTPRODUCT": PRODUCT, "DRUGPRODUCT": PRODUCT, "IP": PRODUCT,
    "BL": BASELINE, "BASELINE": BASELINE, "PRELD": BASELINE, "PRELYMPHODEPLETION": BASELINE,
    "PREINFUSION": BASELINE,
    "INFUSION": INFUSION_DAY,
}  # fmt: skip
"""Spellings of the named visits, written without spaces, dots, dashes or underscores."""
_PRE_INFUSION_DAY = re.compile(r"^(?:D|DAY)\s*[-\u2212]\s*\d")
_DAY = re.compile(r"^(?:D|DAY)\+?(\d{1,3})$")
_WEEK = re.compile(r"^(?:W|WK|WEEK)\+?(\d{1,3})$")
_MONTH = re.compile(r"^(?:M|MO|MON|MONTH)\+?(\d{1,2})$")


class IdentityError(ValueError):
    """A sample's patient or timepoint cannot be resolved safely."""


def normalise_timepoint(spelling: str) -> str:
    """The canonical label (`BL`, `D14`, `M3`, ...) for a timepoint as labs write it.

    `Day 7`, `d+7`, `D07` → `D7`; `Wk4` → `D28`; `Month 3`, `Day 90` → `M3`; `Baseline` → `BL`.
    """
    upper = spelling.strip().upper()
    if _PRE_INFUSION_DAY.match(upper):
        raise IdentityError(
            f"timepoint {spelling!r} is a pre-infusion day, not in the trial's schedule: "
            f"label it {BASELINE} (baseline) or {SCREENING}"
        )
    key = re.sub(r"[\s_.\-]", "", upper)
    if key in _NAMED:
        return _NAMED[key]
    for pattern, days_per_unit in ((_DAY, 1), (_WEEK, 7)):
        match = pattern.match(key)
        if match:
            return _label_for_day(int(match.group(1)) * days_per_unit, spelling)
    match = _MONTH.match(key)
    if match:
        month = int(match.group(1))
        if month == 1:
            return f"D{LAST_DAILY_DAY}"
        if month in MONTH_DAYS:
            return f"M{month}"
    raise IdentityError(f"timepoint {spelling!r} is not in the trial's schedule ({SCHEDULE})")


def _label_for_day(day: int, spelling: str) -> str:
    if day <= LAST_DAILY_DAY:
        return f"D{day}"
    for month, nominal in MONTH_DAYS.items():
        if day == nominal:
            return f"M{month}"
    months = ", ".join(f"M{month} (day {nominal})" for month, nominal in MONTH_DAYS.items())
    raise IdentityError(
        f"timepoint {spelling!r} (day {day}) is not a visit of the trial's schedule; "
        f"after D{LAST_DAILY_DAY} the visits are {months}"
    )


def check_safe_id(value: str, what: str) -> str:
    """`value` unchanged if it is safe to use as a folder name, else an IdentityError."""
    if not SAFE_ID.match(value):
        raise IdentityError(
            f"unsafe {what} {value!r}: it must match {SAFE_ID_PATTERN} "
            "(letters, digits, '.', '_', '-'; no spaces or slashes)"
        )
    return value


@dataclass(frozen=True)
class SampleIdentity:
    patient_id: str
    timepoint: str
    study_day: int | None
    accession: str | None = None
    collection_date: date | None = None
    dna_input_ng: float | None = None


@dataclass(frozen=True)
class Correction:
    """Who corrects a manifest entry, and why (the columns of a correction manifest)."""

    reason: str
    by: str


@dataclass(frozen=True)
class ManifestEntry:
    accession: str
    patient_id: str
    timepoint: str
    collection_date: date | None
    infusion_date: date | None
    dna_input_ng: float | None
    correction: Correction | None = None

    @property
    def mapping(self) -> tuple:
        """What the accession says about the sample: a difference here is a re-mapping."""
        return (self.patient_id, self.timepoint, self.collection_date, self.infusion_date,
                self.dna_input_ng)  # fmt: skip

    def as_row(self) -> tuple:
        """(accession, patient, timepoint, collected, infused, dna_ng) as the ledger keeps it."""
        return (
            self.accession, self.patient_id, self.timepoint,
            self.collection_date.isoformat() if self.collection_date else None,
            self.infusion_date.isoformat() if self.infusion_date else None,
            self.dna_input_ng,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Sequence) -> ManifestEntry:
        """The entry of a ledger row (see `as_row`)."""
        accession, patient, timepoint, collected, infused, dna = row
        return cls(
            accession, patient, timepoint,
            date.fromisoformat(collected) if collected else None,
            date.fromisoformat(infused) if infused else None,
            dna,
        )  # fmt: skip

    def described(self) -> str:
        """`P001 D14 (collected 2026-03-16, 150 ng DNA)`, as the refusal names a mapping."""
        details = [f"collected {self.collection_date}" if self.collection_date else "",
                   f"infused {self.infusion_date}" if self.infusion_date else "",
                   f"{self.dna_input_ng:g} ng DNA" if self.dna_input_ng is not None else ""]  # fmt: skip
        shown = ", ".join(d for d in details if d)
        return f"{self.patient_id} {self.timepoint}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class Manifest:
    """A manifest file's entries; `corrects` when it is a correction manifest."""

    entries: list[ManifestEntry]
    corrects: bool


_MANIFEST_ALIASES = {
    "accession": ("accession", "accession_id", "sample", "sample_name", "sample_id"),
    "patient_id": ("patient_id", "patient", "subject", "subject_id"),
    "timepoint": ("timepoint", "visit", "time_point"),
    "collection_date": ("collection_date", "collected", "draw_date"),
    "infusion_date": ("infusion_date", "d0_date"),
    "dna_input_ng": ("dna_input_ng", "dna_ng", "gdna_ng", "dna_input"),
    "correction_reason": ("correction_reason", "reason_for_correction"),
    "corrected_by": ("corrected_by", "correction_by"),
}
MANIFEST_REQUIRED = ("accession", "patient_id", "timepoint")
CORRECTION_COLUMNS = ("correction_reason", "corrected_by")
"""The two columns that make a manifest a correction manifest."""


def manifest_columns(header: Iterable[str]) -> dict[str, str]:
    """Canonical manifest column → the column as written, for the columns present."""
    normalised = {re.sub(r"[\s-]+", "_", h.strip().lower()): h for h in header}
    found = {}
    for canonical, aliases in _MANIFEST_ALIASES.items():
        for alias in aliases:
            if alias in normalised:
                found[canonical] = normalised[alias]
                break
    return found


def looks_like_manifest(header: Iterable[str]) -> bool:
    found = manifest_columns(header)
    return all(c in found for c in MANIFEST_REQUIRED)


def read_manifest(path: Path) -> list[ManifestEntry]:
    """The entries of a manifest CSV or XLSX; any problem is an IdentityError naming the row."""
    return read_manifest_file(path).entries


def read_manifest_file(path: Path) -> Manifest:
    """The manifest's entries, and whether it is a correction manifest (it has both correction
    columns); any problem is an IdentityError naming the row."""
    frame = _read_table(path)
    columns = manifest_columns(frame.columns)
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    if missing:
        raise IdentityError(f"manifest lacks column(s) {', '.join(missing)}")
    present = [c for c in CORRECTION_COLUMNS if c in columns]
    if len(present) == 1:
        absent = next(c for c in CORRECTION_COLUMNS if c not in columns)
        raise IdentityError(
            f"manifest has a {present[0]} column but no {absent} column; a correction manifest "
            "needs both (why, and who corrects)"
        )
    frame = frame.rename(columns={v: k for k, v in columns.items()})
    frame = frame.dropna(how="all")
    duplicated = frame["accession"].astype(str).str.strip()
    dups = sorted(set(duplicated[duplicated.duplicated()]))
    if dups:
        raise IdentityError(f"manifest lists accession(s) more than once: {', '.join(dups)}")
    entries = []
    for row_number, row in enumerate(frame.to_dict("records"), start=2):
        try:
            entries.append(_manifest_entry(row))
        except (IdentityError, ValueError) as err:
            raise IdentityError(f"manifest row {row_number}: {err}") from err
    return Manifest(entries, corrects=bool(present))


def _read_table(path: Path) -> pd.DataFrame:
    with path.open("rb") as handle:
        is_xlsx = handle.read(4) == b"PK\x03\x04"
    if is_xlsx:
        return pd.read_excel(path, dtype=str)
    return pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="utf-8-sig")


def _optional(row: Mapping[str, object], key: str) -> str | None:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _manifest_entry(row: Mapping[str, object]) -> ManifestEntry:
    accession = _optional(row, "accession")
    patient = _optional(row, "patient_id")
    timepoint = _optional(row, "timepoint")
    if not accession or not patient or not timepoint:
        raise IdentityError("accession, patient_id and timepoint must all be filled in")
    collected = _optional(row, "collection_date")
    infused = _optional(row, "infusion_date")
    dna = _optional(row, "dna_input_ng")
    return ManifestEntry(
        accession=accession,
        patient_id=check_safe_id(patient, "patient id"),
        timepoint=normalise_timepoint(timepoint),
        collection_date=pd.Timestamp(collected).date() if collected else None,
        infusion_date=pd.Timestamp(infused).date() if infused else None,
        dna_input_ng=float(dna) if dna else None,
        correction=_correction(row),
    )


def _correction(row: Mapping[str, object]) -> Correction | None:
    reason, by = _optional(row, "correction_reason"), _optional(row, "corrected_by")
    if reason and by:
        return Correction(reason, by)
    if reason or by:
        raise IdentityError("a correction needs both correction_reason and corrected_by filled in")
    return None


# -- append-only identity --------------------------------------------------------------------


@dataclass(frozen=True)
class Remap:
    """An accession the ledger maps one way that a manifest maps another."""

    old: ManifestEntry
    old_source: str
    """The manifest file that gave the old mapping."""
    new: ManifestEntry


CORRECTION_HOWTO = (
    "if this is a correction, submit it as a correction manifest: the same columns plus "
    "correction_reason and corrected_by, filled in on each corrected row (README, "
    "'Correcting the manifest')"
)


def remap_refusal(remaps: Sequence[Remap]) -> str:
    """The reason a manifest that maps known accessions elsewhere is refused: both mappings of
    each (at most three shown), and what to do."""
    shown = "; ".join(
        f"{r.new.accession} is {r.old.described()} from {r.old_source}, this manifest says "
        f"{r.new.described()}"
        for r in remaps[:3]
    )
    more = f" (and {len(remaps) - 3} more)" if len(remaps) > 3 else ""
    return f"manifest re-maps accessions already in the ledger: {shown}{more}; {CORRECTION_HOWTO}"


def uncorrected(remaps: Sequence[Remap]) -> str | None:
    """The reason a correction manifest is refused when a row it changes does not say who and
    why, or None when every change does."""
    missing = [r.new.accession for r in remaps if r.new.correction is None]
    if not missing:
        return None
    return (
        f"correction manifest changes {', '.join(missing[:5])} without saying why and by whom: "
        "fill in correction_reason and corrected_by on each row that changes"
    )


class IdentityResolver:
    """Resolves sample names through the manifest, then the sample-name pattern.

    It remembers what it resolved for one file: the manifest accessions its samples used
    (`accessions`: the ledger records them, so a correction finds the files to re-file) and the
    notes on names resolved by the pattern (`notes`: the file's warnings).
    """

    def __init__(self, manifest: Iterable[ManifestEntry], sample_name_pattern: str) -> None:
        self._by_accession = {e.accession: e for e in manifest}
        self._by_visit: dict[tuple[str, str], list[ManifestEntry]] = {}
        for entry in self._by_accession.values():
            self._by_visit.setdefault((entry.patient_id, entry.timepoint), []).append(entry)
        self._infusion = _infusion_dates(self._by_accession.values())
        self._pattern = re.compile(sample_name_pattern)
        self.accessions: set[str] = set()
        self._unmatched: dict[str, list[str]] = {}

    def resolve(self, sample_name: str) -> SampleIdentity:
        name = sample_name.strip()
        entry = self._by_accession.get(name)
        if entry is not None:
            return self._from_manifest(entry)
        match = self._pattern.match(name)
        if not match:
            raise IdentityError(
                f"sample {name!r} is not in the manifest and does not match the sample-name "
                "pattern (e.g. P012_D14); add it to the manifest or fix the name"
            )
        patient = check_safe_id(match.group("patient"), "patient id")
        timepoint = normalise_timepoint(match.group("timepoint"))
        entries = self._by_visit.get((patient, timepoint), [])
        if len(entries) == 1:
            return self._from_manifest(entries[0])
        self._unmatched.setdefault(_visit_note(patient, timepoint, entries), []).append(name)
        return SampleIdentity(patient, timepoint, NOMINAL_STUDY_DAY.get(timepoint))

    @property
    def notes(self) -> list[str]:
        """One line per kind of pattern-resolved name the manifest could not complete."""
        return [
            f"{', '.join(sorted(set(names)))}: {note}; nominal study day, DNA input from the "
            "export or the settings"
            for note, names in self._unmatched.items()
        ]

    def _from_manifest(self, entry: ManifestEntry) -> SampleIdentity:
        self.accessions.add(entry.accession)
        return SampleIdentity(
            patient_id=entry.patient_id,
            timepoint=entry.timepoint,
            study_day=self._study_day(entry),
            accession=entry.accession,
            collection_date=entry.collection_date,
            dna_input_ng=entry.dna_input_ng,
        )

    def _study_day(self, entry: ManifestEntry) -> int | None:
        infused = entry.infusion_date or self._infusion.get(entry.patient_id)
        if entry.collection_date and infused:
            return (entry.collection_date - infused).days
        return NOMINAL_STUDY_DAY.get(entry.timepoint)


def _visit_note(patient: str, timepoint: str, entries: Sequence[ManifestEntry]) -> str:
    """Why a name resolved by the pattern takes nothing from the manifest."""
    if not entries:
        return "named by pattern, no manifest entry for that patient and timepoint"
    accessions = ", ".join(sorted(e.accession for e in entries))
    return (
        f"named by pattern, {len(entries)} manifest entries for {patient} {timepoint} "
        f"({accessions}): which draw it is cannot be told, name it by accession"
    )


def _infusion_dates(entries: Iterable[ManifestEntry]) -> dict[str, date]:
    """Per patient, the infusion date: given explicitly, or the collection date of the D0 sample."""
    dates: dict[str, date] = {}
    for entry in entries:
        if entry.infusion_date:
            dates[entry.patient_id] = entry.infusion_date
        elif entry.timepoint == INFUSION_DAY and entry.collection_date:
            dates.setdefault(entry.patient_id, entry.collection_date)
    return dates
