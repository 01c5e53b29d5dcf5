"""What every bead-array reader returns: one plate's wells, in one shape whatever the vendor."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

WELL_COLUMNS: tuple[str, ...] = (
    "well",  # "A1" ... "P24", as the instrument names the position
    "sample_name",  # the name as exported (accession for samples, "C7" / "Standard1" for standards)
    "type",  # standard, sample, blank, control
    "standard_level",  # "C7", "Standard1", "S3" for standards; "" otherwise
    "analyte",  # canonical name (cba.analytes), or the exported name when unknown names are kept
    "analyte_as_exported",
    "mfi",  # float: reporter median fluorescence; NaN when the export has none for the well
    "standard_pg_ml",  # float: expected concentration of a standard well, NaN otherwise
    "sample_dilution",  # float: the dilution factor of the well (1 when the export gives none)
    "reported_concentration",  # str: the vendor software's own value as written, "" if none
)
"""Columns of `CbaPlate.wells` (one row per well x analyte), in order."""

WELL_TYPES = ("standard", "sample", "blank", "control")


@dataclass
class CbaPlate:
    """One bead-array plate (one acquisition run) read from an export.

    `run_id` identifies the plate so that a corrected re-export of the same run supersedes the
    earlier one: vendor batch or plate name plus acquisition start where the export has them.
    """

    instrument_format: str
    run_id: str
    wells: pd.DataFrame  # WELL_COLUMNS
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def analytes(self) -> list[str]:
        return list(dict.fromkeys(self.wells["analyte"]))

    @property
    def sample_names(self) -> list[str]:
        samples = self.wells[self.wells["type"] == "sample"]
        return list(dict.fromkeys(samples["sample_name"]))


def wells_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A wells frame with WELL_COLUMNS in order and the documented dtypes."""
    frame = pd.DataFrame(rows, columns=list(WELL_COLUMNS))
    for column in ("mfi", "standard_pg_ml", "sample_dilution"):
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype(float)
    for column in ("well", "sample_name", "type", "standard_level", "analyte",
                   "analyte_as_exported", "reported_concentration"):  # fmt: skip
        frame[column] = frame[column].fillna("").astype(str)
    return frame


@dataclass(frozen=True)
class ReportedValue:
    """A vendor-computed concentration: a number, or a censored value with its limit if known."""

    text: str
    value: float | None  # pg/mL when quantified
    censoring: str  # none, below_lloq, above_uloq, not_detected
    limit: float | None  # the limit a censored value is censored at, when the text gives it


_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
"""A number, with thousands separators only in groups of three: `3,2` is refused, not read as 32."""
_BELOW = re.compile(rf"^(?:<|≤|<=|OOR\s*<)\s*({_NUMBER})?$", re.IGNORECASE)
_ABOVE = re.compile(rf"^(?:>|≥|>=|OOR\s*>)\s*({_NUMBER})?$", re.IGNORECASE)
_MISSING = {"", "n/a", "na", "nan", "none", "-", "---", "nd", "n.d.", "not detected", "oor"}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_reported_value(text: object) -> ReportedValue:
    """Read a vendor concentration cell, keeping `< 3.2`, `> 5000`, `OOR <`, `N/A` as censored.

    Raises ValueError for text that is none of these (e.g. xPONENT's `*12.3` for an extrapolated
    value, or `3,2` with a decimal comma), so that no such text ever becomes a number.
    """
    raw = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    cleaned = raw.strip()
    if cleaned.lower() in _MISSING:
        return ReportedValue(raw, None, "not_detected", None)
    below = _BELOW.match(cleaned)
    if below:
        limit = _number(below.group(1)) if below.group(1) else None
        return ReportedValue(raw, None, "below_lloq", limit)
    above = _ABOVE.match(cleaned)
    if above:
        limit = _number(above.group(1)) if above.group(1) else None
        return ReportedValue(raw, None, "above_uloq", limit)
    if re.fullmatch(_NUMBER, cleaned):
        return ReportedValue(raw, _number(cleaned), "none", None)
    raise ValueError(f"not a concentration: {raw!r}")
