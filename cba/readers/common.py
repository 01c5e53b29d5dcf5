"""Helpers every bead-array reader shares: analyte names, well types, well positions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cba.analytes import Vocabulary
from cba.errors import CbaFormatError, alias_instruction

HEAD_BYTES = 65536


@dataclass(frozen=True)
class Head:
    """What each reader's `sniff` looks at: the path, and for a file its first 64 KiB."""

    path: Path
    data: bytes
    """Empty for a folder."""

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    @property
    def is_binary_fcs(self) -> bool:
        """An FCS file: only the bead-FCS reader may claim it (a table reader never does)."""
        return self.data.startswith(b"FCS")

    @property
    def text(self) -> str:
        return self.data.decode("utf-8-sig", errors="replace")


def read_head(path: Path) -> Head:
    if path.is_dir():
        return Head(path, b"")
    with path.open("rb") as handle:
        return Head(path, handle.read(HEAD_BYTES))


def resolve_analytes(
    names: list[str], source: str, vocabulary: Vocabulary, warnings: list[str]
) -> dict[str, tuple[str, bool]]:
    """Exported name -> (canonical name, True), or (exported name, False) when the vocabulary does
    not know it: the unknown analyte's rows are kept and flagged, and a warning says how to map
    the name. Two exported names of one analyte (`IL6` and `IL-6`) are refused."""
    mapping = {name: vocabulary.lookup(name) for name in names}
    by_canonical: dict[str, list[str]] = {}
    for name, canonical in mapping.items():
        if canonical is not None:
            by_canonical.setdefault(canonical, []).append(name)
    twice = {c: n for c, n in by_canonical.items() if len(n) > 1}
    if twice:
        canonical, spellings = next(iter(twice.items()))
        raise CbaFormatError(
            f"{source}: the columns {' and '.join(repr(n) for n in spellings)} are both "
            f"{canonical}; export each analyte once"
        )
    unknown = [name for name, canonical in mapping.items() if canonical is None]
    if unknown:
        warnings.append(unknown_analytes_warning(unknown, vocabulary))
    return {name: (canonical or name, canonical is not None) for name, canonical in mapping.items()}


def unknown_analytes_warning(names: list[str], vocabulary: Vocabulary) -> str:
    """What a technician reads about analytes kept under their exported names."""
    described = []
    for name in names:
        hint = vocabulary.suggestion(name)
        described.append(f"{name!r} (did you mean {hint!r}?)" if hint else repr(name))
    return (
        f"analyte name(s) not in the vocabulary: {', '.join(described)}; their rows are kept under "
        "the exported name with analyte_recognised = false and left out of the derived tables. "
        f"If one is a known analyte, {alias_instruction(names[0])}"
    )


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


def to_float(value: object, what: str, source: str, no_value: tuple[str, ...] = ("",)) -> float:
    """A numeric cell. A cell whose text (case ignored) is one of `no_value`, the export's own
    marks of "no value", becomes NaN; any other text, `NaN` included, raises CbaFormatError
    naming the cell. Infinite and negative numbers pass: `wells_frame` refuses them by well."""
    if value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.lower() in no_value:
        return float("nan")
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number:  # text, or a NaN the export does not use to mean "no value"
        raise CbaFormatError(
            f"{source}: {what} holds {value!r} where a number was expected; re-export the "
            "table with numeric values"
        )
    return number
