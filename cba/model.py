"""What every bead-array reader returns: one plate's wells, in one shape whatever the vendor."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cba.errors import CbaFormatError

WELL_COLUMNS: tuple[str, ...] = (
    "well",  # "A1" ... "P24", as the instrument names the position
    "sample_name",  # the name as exported (accession for samples, "C7" / "Standard1" for standards)
    "type",  # standard, sample, blank, control
    "standard_level",  # "C7", "Standard1", "S3" for standards; "" otherwise
    "analyte",  # canonical name (cba.analytes), or the exported name when unknown names are kept
    "analyte_as_exported",
    "analyte_recognised",  # bool: False when the vocabulary does not know the exported name
    "mfi",  # float >= 0: reporter median fluorescence; NaN where the export marks "no value"
    "standard_pg_ml",  # float >= 0: expected concentration of a standard well, NaN otherwise
    "sample_dilution",  # float > 0: the dilution factor of the well (1 when the export gives none)
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


def wells_frame(rows: list[dict[str, object]], source: str) -> pd.DataFrame:
    """A wells frame with WELL_COLUMNS in order and the documented dtypes.

    Raises CbaFormatError naming the well, analyte and value when an MFI or a standard
    concentration is infinite or negative, or a dilution is not a positive number: such a value
    is no measurement, so the plate is refused rather than stored with it.
    """
    frame = pd.DataFrame(rows, columns=list(WELL_COLUMNS))
    frame["analyte_recognised"] = ~frame["analyte_recognised"].eq(False)  # absent: recognised
    for column in ("mfi", "standard_pg_ml", "sample_dilution"):
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype(float)
    for column in ("well", "sample_name", "type", "standard_level", "analyte",
                   "analyte_as_exported", "reported_concentration"):  # fmt: skip
        frame[column] = frame[column].fillna("").astype(str)
    _refuse_impossible_values(frame, source)
    return frame


_LIMITS = (
    ("mfi", "median fluorescence (MFI)", "a number of 0 or more", False),
    ("standard_pg_ml", "expected standard concentration", "a number of 0 or more", False),
    ("sample_dilution", "dilution factor", "a number above 0", True),
)


def _refuse_impossible_values(frame: pd.DataFrame, source: str) -> None:
    for column, what, expected, must_be_positive in _LIMITS:
        values = frame[column].to_numpy()
        with np.errstate(invalid="ignore"):
            too_low = values <= 0 if must_be_positive else values < 0
        too_low |= np.signbit(values) & ~np.isnan(values)  # `-0.000`: a negative value rounded
        bad = np.isinf(values) | too_low
        if column == "sample_dilution":
            bad |= np.isnan(values)
        if bad.any():
            row = frame[bad].iloc[0]
            more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
            where = f"{source}: " if source else ""
            raise CbaFormatError(
                f"{where}well {row['well']} ({row['sample_name']}), {row['analyte_as_exported']}: "
                f"{what} {row[column]:g} is not {expected}{more}; no measurement was stored. "
                "Check the export in the instrument software and export it again"
            )


@dataclass(frozen=True)
class ReportedValue:
    """A vendor-computed concentration: a number, or a censored value with its limit if known."""

    text: str
    value: float | None  # pg/mL when quantified
    censoring: str  # none, below_lloq, above_uloq, not_detected (the vendor's ND), not_measured
    limit: float | None  # the limit a censored value is censored at, when the text gives it


_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
"""A number, with thousands separators only in groups of three: `3,2` is refused, not read as 32."""
_BELOW = re.compile(rf"^(?:<|≤|<=|OOR\s*<)\s*({_NUMBER})?$", re.IGNORECASE)
_ABOVE = re.compile(rf"^(?:>|≥|>=|OOR\s*>)\s*({_NUMBER})?$", re.IGNORECASE)
_NOT_DETECTED = {"nd", "n.d.", "not detected"}
_NOT_MEASURED = {"", "n/a", "na", "nan", "none", "-", "---", "***"}
"""No value: an empty cell, `N/A`/`NaN`, `---` (Bio-Plex/xPONENT: the well was excluded as an
outlier) and `***` (the instrument reported a fault for the well)."""


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_reported_value(text: object) -> ReportedValue:
    """Read a vendor concentration cell, keeping `< 3.2`, `> 5000`, `OOR <`, `ND`, `N/A`, `---`
    as censored values, never as numbers.

    Raises ValueError for text that is none of these (e.g. Bio-Plex's `*12.3` for a value
    extrapolated beyond the standards, `3,2` with a decimal comma, `inf`) and for a negative
    number, so that no such text ever becomes a stored concentration.
    """
    raw = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    cleaned = raw.strip()
    if cleaned.lower() in _NOT_MEASURED:
        return ReportedValue(raw, None, "not_measured", None)
    if cleaned.lower() in _NOT_DETECTED:
        return ReportedValue(raw, None, "not_detected", None)
    below = _BELOW.match(cleaned)
    if below:
        limit = _number(below.group(1)) if below.group(1) else None
        return _censored(raw, "below_lloq", limit)
    above = _ABOVE.match(cleaned)
    if above:
        limit = _number(above.group(1)) if above.group(1) else None
        return _censored(raw, "above_uloq", limit)
    if re.fullmatch(_NUMBER, cleaned):
        return ReportedValue(raw, _non_negative(_number(cleaned), raw), "none", None)
    raise ValueError(f"not a concentration: {raw!r}")


def _censored(raw: str, censoring: str, limit: float | None) -> ReportedValue:
    return ReportedValue(raw, None, censoring, None if limit is None else _non_negative(limit, raw))


def _non_negative(value: float, raw: str) -> float:
    """The value; ValueError when it is negative (`-0.0` included: a negative value rounded) or
    too large to be finite (`1e400`)."""
    if math.copysign(1.0, value) < 0 or not math.isfinite(value):
        raise ValueError(f"not a concentration of 0 or more: {raw!r}")
    return value
