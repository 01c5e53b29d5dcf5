"""Helpers every bead-array reader shares: analyte names, well types, well positions."""

from __future__ import annotations

import re

from cba.analytes import lookup_analyte
from cba.errors import CbaFormatError, UnknownAnalyteError


def resolve_analytes(
    names: list[str], source: str, keep_unknown: bool, warnings: list[str]
) -> dict[str, str]:
    """Exported name -> canonical name. Unknown names raise (listing all of them) unless
    `keep_unknown`, in which case they stay as exported and a warning says so."""
    mapping = {name: lookup_analyte(name) for name in names}
    unknown = [name for name, canonical in mapping.items() if canonical is None]
    if unknown and not keep_unknown:
        raise UnknownAnalyteError(unknown, source)
    if unknown:
        warnings.append(f"analyte name(s) not in the vocabulary kept as exported: {unknown}")
    return {name: canonical or name for name, canonical in mapping.items()}


_TYPE_WORDS = (
    (re.compile(r"^(s|std|standard|cal|calibrator)\b|^s\d|^std|^standard", re.I), "standard"),
    (
        re.compile(r"^(b|bg|blank|background|buffer|matrix)\b|^b\d|^blank|^background", re.I),
        "blank",
    ),
    (re.compile(r"^(c|ctrl|control|qc)\b|^c\d|^ctrl|^control|^qc", re.I), "control"),
    (re.compile(r"^(u|unknown|sample|x)\b|^u\d|^unknown|^sample", re.I), "sample"),
)
_STANDARD_NAME = re.compile(r"^(?:std|standard|cal|calibrator)[\s_-]*\d+$|^C\d{1,2}$", re.I)
_BLANK_NAME = re.compile(r"^(?:blank|background|buffer)[\s_-]*\d*$", re.I)
_CONTROL_NAME = re.compile(r"^(?:control|ctrl|qc)[\s_-]*\w*$", re.I)


def well_type(type_text: str, sample_name: str) -> str:
    """standard, sample, blank or control from a type column if there is one, else the name.

    LEGENDplex standards are named C0..C7 (C0 is the zero standard, still a standard); xPONENT
    names wells Standard1, Background0, Control1, Unknown1; FCAP Array uses Std/Standard n.
    """
    text = type_text.strip()
    if text:
        for pattern, kind in _TYPE_WORDS:
            if pattern.search(text):
                return kind
    name = sample_name.strip()
    if _STANDARD_NAME.match(name):
        return "standard"
    if _BLANK_NAME.match(name):
        return "blank"
    if _CONTROL_NAME.match(name):
        return "control"
    return "sample"


_WELL = re.compile(r"([A-Pa-p])\s*0*(\d{1,2})")


def normalise_well(text: str, source: str) -> str:
    """`A01`, `a1`, `1(1,A1)` (xPONENT) -> `A1`."""
    match = _WELL.search(str(text))
    if not match:
        raise CbaFormatError(f"{source}: {text!r} is not a well position (expected e.g. A1)")
    return f"{match.group(1).upper()}{int(match.group(2))}"


_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def to_float(value: object, what: str, source: str) -> float:
    """A numeric cell; empty -> NaN; text raises CbaFormatError naming the cell."""
    if value is None:
        return float("nan")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if text.lower() in ("", "nan", "n/a", "na"):
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise CbaFormatError(
            f"{source}: {what} holds text {value!r} where a number was expected; re-export the "
            "table with numeric values"
        ) from None
