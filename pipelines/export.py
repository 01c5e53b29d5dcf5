"""A query's result written for people: CSV or JSON text, or a file in Excel, CSV, Parquet or
JSON format (`cartflow query SQL --output FILE`).

Results arrive as Arrow tables, so dates stay dates, NULL stays distinct from a number and text
keeps its accents and Greek letters (IFN-γ). Excel cannot hold a time zone: times are written in
UTC, which every stored time is. A file is written under a temporary name beside its target and
renamed into place, and an existing file is replaced only when asked.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FILE_FORMATS = ("xlsx", "csv", "parquet", "json")
SUFFIX_FORMATS = {".xlsx": "xlsx", ".csv": "csv", ".parquet": "parquet", ".json": "json"}


class ExportError(ValueError):
    """A result that cannot be written as asked; the message names the file and what to do."""


def file_format(path: Path, given: str | None) -> str:
    """The format to write `path` in: `given`, else the one its suffix names."""
    if given is not None:
        if given not in FILE_FORMATS:
            raise ExportError(f"--format {given!r} for a file: expected one of {FILE_FORMATS}")
        return given
    inferred = SUFFIX_FORMATS.get(path.suffix.lower())
    if inferred is None:
        raise ExportError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; name the file "
            f"{', '.join(SUFFIX_FORMATS)} or give --format {'|'.join(FILE_FORMATS)}"
        )
    return inferred


def csv_text(result: pa.Table) -> str:
    """The result as CSV with a header row; NULL is an empty field."""
    return result.to_pandas().to_csv(index=False)


def json_text(result: pa.Table) -> str:
    """The result as a JSON array of objects, one per row; NULL (and NaN) is `null`, dates and
    times are ISO 8601."""
    rows = [{name: _json_value(value) for name, value in row.items()} for row in result.to_pylist()]
    return json.dumps(rows, ensure_ascii=False, default=_iso) + "\n"


def write_result(result: pa.Table, path: Path, file_format: str, replace: bool = False) -> None:
    """Write the result to `path`; an existing file is an ExportError unless `replace`."""
    if path.exists() and not replace:
        raise ExportError(f"{path} already exists: add --force to replace it")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: the folder {path.parent} does not exist")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        WRITERS[file_format](result, temporary)
        os.replace(temporary, path)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        temporary.unlink(missing_ok=True)


def _write_csv(result: pa.Table, path: Path) -> None:
    path.write_text(csv_text(result), encoding="utf-8")


def _write_json(result: pa.Table, path: Path) -> None:
    path.write_text(json_text(result), encoding="utf-8")


def _write_parquet(result: pa.Table, path: Path) -> None:
    pq.write_table(result, path, compression="zstd")


def _write_xlsx(result: pa.Table, path: Path) -> None:
    """One sheet, `result`, header row frozen; dates as Excel dates, times in UTC."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("result")
    sheet.freeze_panes = "A2"
    sheet.append(result.column_names)
    for row in result.to_pylist():
        sheet.append([_excel_value(value) for value in row.values()])
    book.save(path)


WRITERS: dict[str, Callable[[pa.Table, Path], None]] = {
    "xlsx": _write_xlsx,
    "csv": _write_csv,
    "parquet": _write_parquet,
    "json": _write_json,
}


def _excel_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=_iso)
    return value


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def _iso(value: object) -> str:
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return str(value)
