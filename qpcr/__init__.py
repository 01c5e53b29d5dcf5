"""qPCR exports in; standard curves, plate QC and CAR copy numbers out. A plain library: it imports
neither Prefect nor the pipeline nor the validation package.

The assay contract (docs/assay-libraries.md), as every assay library meets it:

- `FORMATS`, `sniff(path)`: the vendor format from the file's content (`qpcr.readers`);
- `read(path, instrument_format)` -> `QpcrPlate`, the format handed on from `sniff`;
- `sample_names(plate, settings)` -> the patient samples to resolve;
- `analyse(plate, settings, facts)` -> `assaykit.Analysis`: `qpcr_wells`, `qpcr_runs`,
  `car_copies`, the plate's QC verdict (`qpcr.analysis`) and its run id as the supersede key.

Bad input raises `QpcrFormatError` (an `assaykit.AssayInputError`).

Beyond the contract: `analyse_plate` (the analysis with its `QpcrResult`), the result labels of
`car_copies.result`, and the well-naming helpers the demo's export writers share with the readers.
"""

from __future__ import annotations

from qpcr.analysis import (
    BELOW_LOQ,
    NOT_DETECTED,
    NOT_MEASURED,
    QUANTIFIED,
    RESULTS,
    QpcrResult,
    analyse_plate,
    qc_verdict,
)
from qpcr.assay import FORMATS, analyse, read, sample_names, sniff
from qpcr.model import AMPLIFICATION_COLUMNS, WELL_COLUMNS, QpcrFormatError, QpcrPlate
from qpcr.readers import ZONE_OFFSETS, normalise_well, parse_number, read_plate, row_letter
from qpcr.settings import QpcrSettings

__all__ = [
    "AMPLIFICATION_COLUMNS", "BELOW_LOQ", "FORMATS", "NOT_DETECTED", "NOT_MEASURED", "QUANTIFIED",
    "RESULTS", "WELL_COLUMNS", "ZONE_OFFSETS", "QpcrFormatError", "QpcrPlate", "QpcrResult",
    "QpcrSettings", "analyse", "analyse_plate", "normalise_well", "parse_number", "qc_verdict",
    "read", "read_plate", "row_letter", "sample_names", "sniff",
]  # fmt: skip
