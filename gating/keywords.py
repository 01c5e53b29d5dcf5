"""FCS keywords: which are kept in `flow_samples`, which identify the sample, and the acquisition
time.

`flow_samples.keywords_json` keeps only an allow-list of technical keywords: instrument
(`$CYT`, `$CYTSN`, `CYTNUM`, `$SYS`, `CREATOR`), acquisition (`$DATE`, `$BTIM`, `$ETIM`, `$TOT`,
`$PAR`, `$MODE`, `$DATATYPE`, `$BYTEORD`, `$TIMESTEP`, `$VOL`, `$ABRT`, `$LOST`, `$TR`, `THRESHOLD`),
compensation (`$SPILLOVER`, `$SPILL`, `SPILL`, `APPLY COMPENSATION`), the per-channel `$PnN`,
`$PnS`, `$PnB`, `$PnE`, `$PnG`, `$PnR`, `$PnV`, and the counting-bead keywords named in the
settings. Everything else is left out, because free text may carry personal data: `$OP` (operator),
`$COM`, `$CELLS`, `$PROJ`, `$EXP`, `$INST`, `$SMNO`, `$SRC`, `$FIL`, `TUBE NAME`, `EXPORT USER NAME`,
`EXPERIMENT NAME`, and every vendor or lab keyword (real files carry e.g. `CD AGE` and
`CD FIRST VIRAL LOAD DATE`). The sample-identifying ones are returned separately as identity hints
for the pipeline to resolve patient and timepoint, not stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd

ALLOWED_KEYWORDS = frozenset({
    "$CYT", "$CYTSN", "CYTNUM", "$SYS", "CREATOR", "$DATE", "$BTIM", "$ETIM", "$TOT", "$PAR",
    "$MODE", "$DATATYPE", "$BYTEORD", "$TIMESTEP", "$VOL", "$ABRT", "$LOST", "$TR", "THRESHOLD",
    "$SPILLOVER", "$SPILL", "SPILL", "APPLY COMPENSATION",
})  # fmt: skip
_CHANNEL_KEYWORD = re.compile(r"^\$P\d+[NSBEGRV]$")

IDENTITY_KEYWORDS = ("$FIL", "$SRC", "TUBE NAME", "SAMPLE ID", "$SMNO", "WELL ID")
"""Keywords that may name the sample, returned as identity hints (never stored)."""
_SAMPLE_NAME_KEYWORDS = ("$SRC", "SAMPLE ID", "$FIL")

_DATE_FORMATS = ("%d-%b-%Y", "%d-%b-%y", "%Y-%m-%d", "%Y-%b-%d", "%d.%m.%Y", "%Y/%m/%d")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def allowed_keywords(keywords: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """The keywords that may be stored (see the module docstring), plus `extra` names."""
    allowed = ALLOWED_KEYWORDS | {k.upper() for k in extra}
    return {k: v for k, v in keywords.items() if k in allowed or _CHANNEL_KEYWORD.match(k)}


def identity_hints(keywords: Mapping[str, str], path: Path) -> dict[str, str]:
    """What in the file may name the sample: the file name, `$FIL`, `$SRC`, `TUBE NAME`...
    (`sample_name` is the one `flow_samples` uses)."""
    hints = {"file_name": path.name, "sample_name": sample_name(keywords, path)}
    hints.update({k: keywords[k] for k in IDENTITY_KEYWORDS if keywords.get(k)})
    return hints


def sample_name(keywords: Mapping[str, str], path: Path) -> str:
    """`$SRC` (the specimen name BD and most instruments write), else `SAMPLE ID`, else the
    stem of `$FIL`, else the file's own stem."""
    for key in _SAMPLE_NAME_KEYWORDS:
        value = keywords.get(key, "").strip()
        if value:
            return Path(value).stem if key == "$FIL" else value
    return path.stem


def acquired_at(keywords: Mapping[str, str]) -> pd.Timestamp | None:
    """`$DATE` + `$BTIM`. FCS times carry no time zone: the instrument clock is stored as written
    (labelled UTC, as the table's type requires). None when `$DATE` cannot be read."""
    day = _parse_date(keywords.get("$DATE", ""))
    if day is None:
        return None
    clock = _TIME.search(keywords.get("$BTIM", ""))
    start = time(0, 0, 0)
    if clock:
        hours, minutes, seconds = (int(g or 0) for g in clock.groups())
        start = time(hours % 24, minutes % 60, seconds % 60)
    return pd.Timestamp(datetime.combine(day, start), tz="UTC")


def _parse_date(text: str) -> date | None:
    text = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def first_number(keywords: Mapping[str, str], names: Iterable[str]) -> float | None:
    """The value of the first of `names` present in the file that reads as a number."""
    for name in names:
        value = keywords.get(name.upper())
        if value is None:
            continue
        try:
            return float(value.replace(",", ""))
        except ValueError:
            continue
    return None
