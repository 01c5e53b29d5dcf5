"""What every qPCR reader returns: one plate's wells, in one shape whatever the vendor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from assaykit import AssayInputError

WELL_COLUMNS: tuple[str, ...] = (
    "well",  # "A1" ... "P24"; position as the instrument names it
    "sample_name",
    "target",
    "reporter",
    "task",  # UNKNOWN, STANDARD, NTC, NAC, OTHER
    "cq",  # float, NaN where the instrument found no Cq (never 40)
    "amp_status",  # the instrument's own wording, e.g. "Undetermined", "NO_AMP", "NaN", "AMP", ""
    "amplified",  # bool: a Cq was found
    "standard_quantity",  # float, copies per reaction for standards, NaN otherwise
    "instrument_quantity",  # float, what the vendor software computed, NaN if none
    "dna_input_ng",  # float, DNA input per reaction if the export carries it, NaN otherwise
    "omitted",  # bool: the analyst excluded the well in the instrument software
)
"""Columns of `QpcrPlate.wells`, in order."""

TASKS = ("UNKNOWN", "STANDARD", "NTC", "NAC", "OTHER")

AMPLIFICATION_COLUMNS: tuple[str, ...] = (
    "well",  # as in `wells`
    "target",
    "cycle",  # int, 1-based
    "fluorescence",  # float: the export's baseline-corrected signal (Delta Rn) where it has one
)
"""Columns of `QpcrPlate.amplification`: one row per well x target x cycle."""


def no_amplification() -> pd.DataFrame:
    """The amplification data of an export that holds none."""
    return pd.DataFrame({
        "well": pd.Series(dtype=str), "target": pd.Series(dtype=str),
        "cycle": pd.Series(dtype="int64"), "fluorescence": pd.Series(dtype=float),
    })  # fmt: skip


class QpcrFormatError(AssayInputError):
    """The file is not a qPCR export this reader understands; the message says why."""


@dataclass
class QpcrPlate:
    """One plate (one instrument run) read from an export.

    `run_id` identifies the run so a corrected re-export of the same plate can supersede the
    earlier one: vendor experiment/run name plus run end time where the export has them.
    """

    instrument_format: str  # e.g. "quantstudio-text", "quantstudio-da", "abi-7500", "cfx-maestro"
    run_id: str
    wells: pd.DataFrame  # WELL_COLUMNS
    instrument: str = ""
    run_started: datetime | None = None
    # the fit statistics the vendor software reported, per target: {"slope": .., "efficiency_pct": ..}
    instrument_curves: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # the fluorescence per cycle (AMPLIFICATION_COLUMNS) where the export holds it, and what
    # that signal is ("Delta Rn", "Rn", ...); empty for exports that keep only the Cq
    amplification: pd.DataFrame = field(default_factory=no_amplification)
    amplification_measure: str = ""
