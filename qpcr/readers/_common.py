"""Helpers shared by the qPCR export readers: reading bytes, numbers, wells, times and errors."""

from __future__ import annotations

import gzip
import math
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from qpcr.model import WELL_COLUMNS, QpcrFormatError

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"

STRING_COLUMNS = ("well", "sample_name", "target", "reporter", "task", "amp_status")
FLOAT_COLUMNS = ("cq", "standard_quantity", "instrument_quantity", "dna_input_ng")
BOOL_COLUMNS = ("amplified", "omitted")


def format_error(path: Path, problem: str, advice: str = "") -> QpcrFormatError:
    """An error a lab technician can act on: which file, what is wrong, what to do."""
    message = f"{path.name}: {problem}"
    if advice:
        message += f". {advice}"
    return QpcrFormatError(message)


# --- bytes and text ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """The first bytes of a file, decompressed if gzipped, for cheap content-based detection."""

    path: Path
    head: bytes
    text: str | None  # the head decoded as text, None if it is binary
    zip_names: tuple[str, ...] | None  # member names when the file is a zip archive

    @property
    def first_lines(self) -> list[str]:
        return self.text.splitlines()[:50] if self.text else []


def probe(path: Path) -> Probe:
    """Read just enough of `path` to recognise its format."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    zip_names: tuple[str, ...] | None = None
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except (OSError, EOFError):
            head = b""
    elif head.startswith(ZIP_MAGIC[:2]):  # b"PK": also Bio-Rad's spanned-archive marker
        try:
            with zipfile.ZipFile(path) as archive:
                zip_names = tuple(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            zip_names = ()
    return Probe(path=path, head=head, text=_decode_head(head), zip_names=zip_names)


def _decode_head(head: bytes) -> str | None:
    if head.startswith(ZIP_MAGIC[:2]):
        return None
    try:
        return decode_text(head, strict=False)
    except UnicodeDecodeError:
        return None


def decode_text(data: bytes, *, strict: bool = True) -> str:
    """Decode an instrument text export.

    Windows instrument software writes UTF-8 (with or without BOM) or UTF-16; a few older exports
    are in the Windows code page, which is the fallback. Random bytes fail the control-character
    check and raise UnicodeDecodeError. With `strict=False` a character cut off at the end of a
    sniffed head is tolerated.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="strict" if strict else "ignore")
    else:
        try:
            text = data.decode("utf-8-sig", errors="strict")
        except UnicodeDecodeError as error:
            if not strict and error.start >= len(data) - 3:
                text = data[: error.start].decode("utf-8-sig")
            else:
                text = data.decode("cp1252", errors="strict")
    control = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n")
    if control > 2:
        raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "binary content")
    return text


def read_bytes(path: Path) -> bytes:
    """The whole file, decompressed when it is gzipped (LightCycler exports are often .gz)."""
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise format_error(
                path, f"the gzip archive is damaged or truncated ({error})", "Copy the file again"
            ) from error
    return data


def read_text(path: Path) -> str:
    """The whole file as text, or a QpcrFormatError when it is not text."""
    try:
        return decode_text(read_bytes(path))
    except UnicodeDecodeError as error:
        raise format_error(
            path, "the file is not text (it holds binary data)", "Export it again as text"
        ) from error


# --- columns, numbers, wells -----------------------------------------------------------------


def column_key(name: object) -> str:
    """A header normalised for lookup: lower case, Cyrillic т (ABI 7500/StepOne 'Cт') as t."""
    text = str(name or "").replace("\u0442", "t").replace("\u0422", "T")
    return re.sub(r"\s+", " ", text).strip().lower()


def find_column(header: list[str], *names: str) -> int | None:
    """Index of the first header cell matching one of `names` (normalised), else None."""
    keys = [column_key(cell) for cell in header]
    for name in names:
        key = column_key(name)
        if key in keys:
            return keys.index(key)
    return None


CQ_COLUMN_NAMES = ("Cq", "CT", "CRT", "Cp", "Ct (dRn)")
"""Names of the quantification-cycle column across vendors ('Cт' normalises to 'ct')."""


_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d*)?([eE][-+]?\d+)?$")


class UnreadableValue(ValueError):
    """A cell that looks like a number but is not one in the expected notation (e.g. '21,5')."""


def parse_number(text: object) -> float | None:
    """A number as vendors write it ("1,234.5", "27.1", 27.1), None if the cell is not a number.

    A comma is only accepted as a thousands separator (`1,234.5`); `21,5` (a decimal comma) is
    not a number here, so it can never be misread as 215.
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    cleaned = str(text or "").strip()
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        return float(cleaned) if cleaned else None
    except ValueError:
        return None


class NotAMeasurement(ValueError):
    """A Cq or quantity cell holding something that is not a measurement; the message names the
    cell as a technician reads it, e.g. `Cq '-1.5'`."""


def parse_quantity(text: object, what: str = "quantity") -> float:
    """A quantity cell: a number, NaN when blank or `NaN` (how the vendors write "none").

    Free text raises NotAMeasurement; whether the number may be a quantity is
    `checked_quantity`'s call.
    """
    word = "" if text is None else str(text).strip()
    if word.lower() in ("", "nan"):
        return math.nan
    value = parse_number(text)
    if value is None:
        raise NotAMeasurement(f"{what} {word!r}")
    return value


def checked_quantity(text: object, *, standard: bool) -> float:
    """A quantity cell as a number, NaN when absent.

    A standard's quantity must be above 0 (the curve takes its logarithm); a quantity the
    instrument computed may be 0. Negative and infinite values are never quantities.
    """
    what = "standard quantity" if standard else "quantity"
    value = parse_quantity(text, what)
    if math.isnan(value):
        return value
    if not math.isfinite(value) or value < 0 or (standard and value == 0):
        raise NotAMeasurement(f"{what} {str(text).strip()!r}")
    return value


_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")


def parse_cq(text: object, no_cq_markers: Collection[str]) -> tuple[float, str]:
    """(Cq, wording when no Cq): '27.1' -> (27.1, ''), 'Undetermined' -> (nan, 'Undetermined').

    Only the vendor's own "no Cq" marker (`no_cq_markers`, lower case; '' for a blank cell)
    gives NaN, and its wording is kept. Any other cell that is not a cycle number above 0
    (free text, a negative number, inf, a `NaN` the vendor does not write) raises
    NotAMeasurement, so a reader never turns a bad cell into "not amplified".
    """
    word = "" if text is None else str(text).strip()
    if word.lower() in no_cq_markers:
        return math.nan, word
    if _DECIMAL_COMMA.match(word):
        raise UnreadableValue(f"the Cq value {word!r} is not a number with a decimal point")
    value = parse_number(text)
    if value is None or not math.isfinite(value) or value <= 0:
        raise NotAMeasurement(f"Cq {word!r}")
    return value, ""


RELATIVE_QUANTIFICATION_ADVICE = (
    "CAR copies need an absolute-quantification (Standard Curve) export with the plasmid "
    "standards' quantities: analyse the plate as Standard Curve and export that"
)


def parse_bool(text: object) -> bool:
    return str(text).strip().lower() in {"true", "yes", "y", "1"}


TASK_ALIASES: Mapping[str, str] = {
    "unknown": "UNKNOWN",
    "unkn": "UNKNOWN",
    "standard": "STANDARD",
    "std": "STANDARD",
    "ntc": "NTC",
    "nac": "NAC",
}


def normalise_task(task: object) -> str:
    """UNKNOWN / STANDARD / NTC / NAC from any vendor's wording; everything else is OTHER.

    CFX numbers replicates in the content ('Std-01', 'Unkn-3'); the suffix is dropped.
    """
    word = re.sub(r"-\d+$", "", str(task or "").strip()).lower()
    return TASK_ALIASES.get(word, "OTHER")


_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")


def normalise_well(name: object) -> str | None:
    """'A01', 'a1', ' A1' -> 'A1'; None when `name` is not a row letter and column number."""
    match = _WELL.match(str(name or ""))
    if not match:
        return None
    return f"{match.group(1).upper()}{int(match.group(2))}"


def well_from_index(index: int, columns: int) -> str:
    """1-based well number in row-major order -> 'A1' style position."""
    row, column = divmod(index - 1, columns)
    return f"{row_letter(row)}{column + 1}"


def row_letter(row: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA' (1536-well plates)."""
    return chr(65 + row) if row < 26 else chr(64 + row // 26) + chr(65 + row % 26)


PROBLEMS = "problems"
"""Key of a `well_row` row listing its cells that are not measurements (not a WELL_COLUMN)."""
_SHOWN_PROBLEMS = 5


def wells_frame(path: Path, rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """The rows as a `WELL_COLUMNS` frame with proper dtypes.

    Refuses the plate when a well holds a Cq or quantity that is not a measurement (naming the
    wells and values), and when a well+target pair repeats, since that is the table's key.
    """
    rows = list(rows)
    _refuse_non_measurements(path, rows)
    frame = pd.DataFrame(rows, columns=list(WELL_COLUMNS))
    for column in STRING_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    for column in FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    for column in BOOL_COLUMNS:
        frame[column] = frame[column].fillna(False).astype(bool)
    duplicated = frame.duplicated(["well", "target"], keep=False)
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise format_error(
            path,
            f"well {first['well']} has two rows for target '{first['target']}'",
            "Each well may hold each target once; check the plate setup and export again",
        )
    return frame


def _refuse_non_measurements(path: Path, rows: list[Mapping[str, object]]) -> None:
    found = [
        f"{row['well']} {problem}"
        for row in rows
        for problem in row.get(PROBLEMS, ())  # type: ignore[attr-defined]
    ]
    if not found:
        return
    shown = ", ".join(found[:_SHOWN_PROBLEMS])
    more = f" (and {len(found) - _SHOWN_PROBLEMS} more)" if len(found) > _SHOWN_PROBLEMS else ""
    raise format_error(
        path,
        f"values that are not measurements: {shown}{more} (a Cq must be a cycle number above 0 "
        "or the instrument's own no-Cq entry; a quantity a number >= 0, above 0 for a standard)",
        "Correct these wells in the instrument software and export the plate again",
    )


def well_row(
    *,
    well: str,
    sample_name: object,
    target: object,
    reporter: object,
    task: object,
    cq_cell: object,
    no_cq_markers: Collection[str],
    amp_status: str | None = None,
    standard_quantity: object = None,
    instrument_quantity: object = None,
    omitted: bool = False,
) -> dict[str, object]:
    """One `WELL_COLUMNS` row; `amp_status` None means "use the no-Cq wording of the Cq cell".

    The quantities are the cells as written (text or number). A cell that is not a measurement
    leaves its column NaN and is listed under `PROBLEMS`, so that `wells_frame` refuses the
    plate naming every such well.
    """
    problems: list[str] = []
    normalised_task = normalise_task(task)
    is_standard = normalised_task == "STANDARD"
    try:
        cq, no_cq_word = parse_cq(cq_cell, no_cq_markers)
    except NotAMeasurement as error:
        cq, no_cq_word = math.nan, ""
        problems.append(str(error))
    quantities = {}
    for column, cell, is_own_kind in (
        ("standard_quantity", standard_quantity, is_standard),
        ("instrument_quantity", instrument_quantity, not is_standard),
    ):
        try:
            value = checked_quantity(cell, standard=is_standard) if is_own_kind else math.nan
        except NotAMeasurement as error:
            value = math.nan
            problems.append(str(error))
        quantities[column] = value
    return {
        "well": well,
        "sample_name": str(sample_name or "").strip(),
        "target": str(target or "").strip(),
        "reporter": str(reporter or "").strip(),
        "task": normalised_task,
        "cq": cq,
        "amp_status": no_cq_word if amp_status is None else amp_status,
        "amplified": not math.isnan(cq),
        **quantities,
        "dna_input_ng": math.nan,
        "omitted": omitted,
        PROBLEMS: problems,
    }


def unknown_tasks_warning(raw_tasks: Iterable[object]) -> list[str]:
    """A warning naming vendor tasks that were recorded as OTHER (e.g. IPC, Pos Ctrl)."""
    others = sorted({str(t).strip() for t in raw_tasks if normalise_task(t) == "OTHER"})
    if not others:
        return []
    return [f"task(s) {', '.join(repr(t) for t in others)} recorded as OTHER"]


# --- run times ---------------------------------------------------------------------------------

# Time-zone abbreviations the instrument software writes after a local time.
ZONE_OFFSETS: Mapping[str, int] = {
    "UTC": 0, "GMT": 0, "WET": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "JST": 9, "KST": 9, "AEST": 10, "AEDT": 11,
}  # fmt: skip

_VENDOR_TIME = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:\s*([AaPp][Mm]))?(?:\s*([A-Za-z]{2,5}|[+-]\d{2}:?\d{2}|Z))?\s*$"
)


def parse_vendor_time(text: object) -> datetime | None:
    """'2010-10-21 00:51:26 AM EDT' -> aware datetime; None if the text is not such a time.

    QuantStudio writes 12-hour times but sometimes with 24-hour hours ('13:07:52 PM',
    '00:51:26 AM'); an hour above 12 is taken as is. An unknown zone gives a naive datetime.
    """
    match = _VENDOR_TIME.match(str(text or ""))
    if not match:
        return None
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    meridiem = (match.group(7) or "").upper()
    if meridiem == "PM" and hour < 12:
        hour += 12
    elif meridiem == "AM" and hour == 12:
        hour = 0
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    zone = _zone(match.group(8))
    return moment.replace(tzinfo=zone) if zone else moment


def _zone(name: str | None) -> timezone | None:
    if not name:
        return None
    if name == "Z":
        return UTC
    if name[0] in "+-":
        digits = name[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return timezone(offset if name[0] == "+" else -offset)
    hours = ZONE_OFFSETS.get(name.upper())
    return None if hours is None else timezone(timedelta(hours=hours))


def run_id(fmt: str, identity: str, moment: datetime | None) -> str:
    """`<format>:<identity>@<ISO time>`; the time part is left out when the export has none."""
    return f"{fmt}:{identity}@{moment.isoformat()}" if moment else f"{fmt}:{identity}"


def file_basename(windows_or_posix_path: str) -> str:
    """'C:\\Users\\x\\run 1.eds' -> 'run 1.eds' (instrument PCs write Windows paths)."""
    return re.split(r"[\\/]", windows_or_posix_path.strip())[-1]


def instrument_label(model: str, serial: str) -> str:
    """'QuantStudio 7 Flex System (SN 278880031)'; either part may be missing."""
    model, serial = model.strip(), serial.strip()
    if serial and serial.upper() != "NA" and serial != model:
        return f"{model} (SN {serial})" if model else f"SN {serial}"
    return model


def curve_stats(
    slope: object, intercept: object, r_squared: object, efficiency_pct: object
) -> dict[str, float]:
    """The vendor's fit statistics for one target, leaving out those the export lacks."""
    values = {
        "slope": parse_number(slope),
        "intercept": parse_number(intercept),
        "r_squared": parse_number(r_squared),
        "efficiency_pct": parse_number(efficiency_pct),
    }
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}


def list_columns(header: Iterable[object], limit: int = 12) -> str:
    """The header's column names for an error message, cut short on wide tables."""
    names = [str(c).strip() for c in header if str(c or "").strip()]
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} columns)" if len(names) > limit else "")
