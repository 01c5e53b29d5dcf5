"""What the three assay libraries (`qpcr`, `cba`, `gating`) share: the contract each meets, its
types, the one base error for bad input, and the one settings helper.

The contract (docs/assay-libraries.md says it at length). Each library exposes, at its top level:

- `FORMATS`: every vendor format name it reads, one reader module per format family;
- `sniff(path) -> str | None`: the format from the file's first bytes, never the extension;
- `read(path, instrument_format, settings) -> export`: the typed export of the format `sniff`
  found, handed on so the file is not detected again;
- `sample_names(export, settings) -> SampleNames`: the names the caller resolves to patients;
- `analyse(export, settings, facts) -> Analysis`: the tables (columns as the table registry
  names them), the run's `QcVerdict` with its reasons, and the file's supersede key.

Bad input raises a subclass of `AssayInputError`; any other exception is a bug.

This package imports no assay library, no validation and no pipeline code.
"""

from __future__ import annotations

from assaykit.contract import (
    FAILED_QC,
    PASSED,
    REFUSED,
    Analysis,
    QcVerdict,
    SampleFacts,
    SampleNames,
)
from assaykit.errors import AssayInputError
from assaykit.settings import settings_from_dict

__all__ = [
    "FAILED_QC",
    "PASSED",
    "REFUSED",
    "Analysis",
    "AssayInputError",
    "QcVerdict",
    "SampleFacts",
    "SampleNames",
    "settings_from_dict",
]
