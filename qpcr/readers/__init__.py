"""qPCR export readers: a file in, a `QpcrPlate` out, whatever the instrument.

`sniff(path)` looks at the first bytes only and names the format, never trusting the extension.
`read_format(path, fmt)` reads the plate of the format `sniff` found (handed on, not detected
again); `read_plate(path)` does both. Either raises `QpcrFormatError` with a message a technician
can act on (which file, what is wrong, what to do).

Each format family is one reader module with `FORMATS`, `sniff(probe)` and `read(path)`; a new
vendor format is a new module and its line in `_READERS`.

Formats (the names `sniff` returns and `QpcrPlate.instrument_format` holds):

- `quantstudio-text`: QuantStudio / ViiA 7 software 1.x text export
- `abi-7500`: 7500 / StepOne text export (same layout, `Cт` column)
- `quantstudio-da`: QuantStudio Design & Analysis Excel workbook
- `cfx-maestro`: Bio-Rad CFX Maestro / Manager "Quantification Cq Results" CSV
- `lightcycler-480`: Roche LightCycler 480 Cp text export, plain or gzipped
- `rdml`: RDML 1.0-1.4, zipped or bare XML (LightCycler 96 style too)

`sniff` recognises the vendor layout; `read_plate` may still refuse such a file with the reason
(a melt-only or genotyping run, a truncated copy, no Cq column), so that a file of this kind is
quarantined with that reason instead of "unknown file".
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from qpcr.model import QpcrFormatError, QpcrPlate
from qpcr.readers import cfx_maestro, lightcycler, quantstudio_da, quantstudio_text, rdml
from qpcr.readers._common import (
    ZONE_OFFSETS,
    Probe,
    UnreadableValue,
    format_error,
    normalise_well,
    parse_number,
    probe,
    row_letter,
)

__all__ = [
    "FORMATS", "ZONE_OFFSETS", "QpcrFormatError", "normalise_well", "parse_number", "read_format",
    "read_plate", "row_letter", "sniff",
]  # fmt: skip
"""Besides reading: the helpers the demo's export writers and the reports share with the readers,
well names (`normalise_well`, `row_letter`), numbers as vendors write them (`parse_number`) and
the time-zone abbreviations vendors append to times (`ZONE_OFFSETS`)."""

_READERS: tuple[ModuleType, ...] = (
    quantstudio_text,
    quantstudio_da,
    cfx_maestro,
    lightcycler,
    rdml,
)
FORMATS: tuple[str, ...] = tuple(name for reader in _READERS for name in reader.FORMATS)
"""Every format name `sniff` may return."""

_READ_BY_FORMAT: dict[str, Callable[[Path], QpcrPlate]] = {
    name: reader.read for reader in _READERS for name in reader.FORMATS
}


def sniff(path: Path) -> str | None:
    """The format name if `path` is a qPCR export these readers know, else None.

    Reads at most the first 64 KiB (decompressed for .gz); for zip files it lists the members
    and peeks at one. Never raises for unreadable content.
    """
    try:
        found = probe(Path(path))
    except OSError:
        return None
    return _sniff_probe(found)


def read_plate(path: Path) -> QpcrPlate:
    """Read one plate from any supported export, detected by content.

    Raises QpcrFormatError for an empty, binary, truncated or unrecognised file, or one that is
    not a quantification run, naming the file and what to do.
    """
    path = Path(path)
    _refuse_unreadable(path)
    try:
        found = probe(path)
    except OSError as error:
        raise _unreadable(path, error) from error
    fmt = _sniff_probe(found)
    if fmt is None:
        raise format_error(path, _unrecognised(found), "Supported: " + ", ".join(FORMATS))
    return _read(path, fmt)


def read_format(path: Path, fmt: str) -> QpcrPlate:
    """Read one plate of the format `fmt` (as `sniff` named it), without detecting it again;
    QpcrFormatError as `read_plate` for a file that cannot be read as that format."""
    path = Path(path)
    if fmt not in _READ_BY_FORMAT:
        raise ValueError(f"{fmt!r} is not a qPCR format; known: {', '.join(FORMATS)}")
    _refuse_unreadable(path)
    return _read(path, fmt)


def _read(path: Path, fmt: str) -> QpcrPlate:
    """The reader of `fmt` on `path`, its damaged-file errors said in a technician's words."""
    try:
        return _READ_BY_FORMAT[fmt](path)
    except (zipfile.BadZipFile, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise format_error(
            path, f"the {fmt} file is damaged or truncated ({error})", "Copy or export it again"
        ) from error
    except UnreadableValue as error:
        raise format_error(
            path, str(error), "Export with a decimal point (English number format)"
        ) from error


def _refuse_unreadable(path: Path) -> None:
    """QpcrFormatError for an empty file or one that cannot be opened."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise _unreadable(path, error) from error
    if size == 0:
        raise format_error(path, "the file is empty (0 bytes)", "Export or copy it again")


def _unreadable(path: Path, error: OSError) -> QpcrFormatError:
    return format_error(path, f"the file cannot be read ({error.strerror})", "")


def _sniff_probe(found: Probe) -> str | None:
    for reader in _READERS:
        fmt = reader.sniff(found)
        if fmt:
            return fmt
    return None


def _unrecognised(found: Probe) -> str:
    """Why the content is not a qPCR export, as precisely as the first bytes allow."""
    if not found.head.strip():
        return "the file holds no data (only blank space)"
    if found.zip_names is not None:
        return "a zip archive that is neither an RDML file nor a QuantStudio Design & Analysis workbook"
    if found.text is None:
        return "the file is binary data, not a qPCR export"
    first = next((line for line in found.first_lines if line.strip()), "")
    return (
        "not a recognised qPCR export (no Cq results table: expected e.g. a QuantStudio "
        f"'* key = value' header or a Well/Fluor/Cq CSV); it starts with: {first[:80]!r}"
    )
