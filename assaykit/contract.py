"""The types every assay library's `sample_names` and `analyse` return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

PASSED, FAILED_QC, REFUSED = "passed", "failed_qc", "refused"
"""A run's QC outcome: its tables are taken; its QC tables are kept but no result is reported
and the run is repeated; nothing of the file is taken (the export must be corrected)."""

SampleFacts = Mapping[str, Mapping[str, Any]]
"""What the sample manifest says of each sample, by sample name as exported (e.g.
`{"P012_D14": {"dna_input_ng": 200.0}}`); a library takes the facts it knows and ignores others."""


@dataclass(frozen=True)
class QcVerdict:
    """Whether a run is accepted, decided once, by the library that knows the assay.

    `reasons` holds one sentence per failed rule (target or analyte, wells, value, limit);
    `message` is the whole reason a technician reads, ending with what to do.
    """

    outcome: str = PASSED
    reasons: tuple[str, ...] = ()
    message: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in (PASSED, FAILED_QC, REFUSED):
            raise ValueError(f"QC outcome {self.outcome!r}: expected passed, failed_qc or refused")
        if self.outcome != PASSED and not self.message:
            raise ValueError(f"a {self.outcome} verdict needs the message a technician reads")

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


@dataclass(frozen=True)
class SampleNames:
    """The names in a file that the caller resolves to patient and timepoint.

    `whole_file` False: each name is a sample, and a table row belongs to the sample its
    `sample_name` column names. True: the file is one sample (a flow tube) and `names` are the
    candidates for its name, best first; the first that resolves names every row.
    """

    names: tuple[str, ...]
    whole_file: bool = False


@dataclass
class Analysis:
    """One file analysed: what the caller validates, writes and supersedes with."""

    instrument_format: str
    supersede_key: str
    """Equal for a corrected re-export of the same run (plate, tube acquisition), so that the
    newer file replaces the earlier one's rows instead of adding to them."""
    tables: dict[str, pd.DataFrame]
    """Table name -> rows with the assay columns the table registry defines (no identity or
    provenance columns); a run that failed QC carries only the tables it keeps."""
    verdict: QcVerdict = field(default_factory=QcVerdict)
    warnings: list[str] = field(default_factory=list)
    run_started: datetime | None = None
    """When the run started, where the export says."""
    results: tuple[tuple[str, str], ...] = ()
    """(sample name, target) of each result the run reports, or, having failed QC, would have
    reported: how a later passing run of the same samples is matched to this one."""
