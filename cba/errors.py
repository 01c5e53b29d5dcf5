"""Typed errors of the bead-array library; every message names the file or plate, the problem and
what to do about it."""

from __future__ import annotations


class CbaFormatError(ValueError):
    """The file is not a bead-array export this library understands, or it is malformed."""


class UnknownAnalyteError(CbaFormatError):
    """An analyte name is not in the vocabulary of `cba.analytes`."""

    def __init__(self, names: list[str], source: str = "") -> None:
        self.names = names
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}unknown analyte name(s) {', '.join(repr(n) for n in names)}; add the spelling "
            "to CANONICAL in cba/analytes.py if it is a cytokine the lab measures"
        )


class CbaAnalysisError(ValueError):
    """A plate that was read but cannot be analysed; `reason` says why in a technician's words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StandardSeriesError(CbaAnalysisError):
    """The standards' concentrations do not form the expected dilution series."""
