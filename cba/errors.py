"""Typed errors of the bead-array library; every message names the file or plate, the problem and
what to do about it."""

from __future__ import annotations

import json

from assaykit import AssayInputError


def alias_instruction(name: str) -> str:
    """How a technician maps an export's analyte name to a known analyte, for a reason text."""
    return (
        "map it in cartflow.toml: [cba] analyte_aliases = "
        f'{{ {json.dumps(name, ensure_ascii=False)} = "<canonical name, e.g. IL-6>" }}'
    )


class CbaFormatError(AssayInputError):
    """The file is not a bead-array export this library understands, or it is malformed."""


class UnknownAnalyteError(CbaFormatError):
    """An analyte name is not in the vocabulary of `cba.analytes`."""

    def __init__(self, names: list[str], source: str = "") -> None:
        self.names = names
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}unknown analyte name(s) {', '.join(repr(n) for n in names)}; if it is a "
            f"known analyte under another name, {alias_instruction(names[0])}"
        )


class CbaAnalysisError(AssayInputError):
    """A plate that was read but cannot be analysed; `reason` says why in a technician's words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StandardSeriesError(CbaAnalysisError):
    """The standards' concentrations do not form the expected dilution series; `fault` is the
    short form a plate warning lists per analyte (e.g. "Standard3 1000x the series")."""

    def __init__(self, reason: str, fault: str | None = None) -> None:
        super().__init__(reason)
        self.fault = fault
