"""Bead-array (CBA, LEGENDplex, Luminex) exports in; standard curves and cytokine concentrations
out. A plain library: it imports neither Prefect nor the pipeline nor the validation package.

The assay contract (docs/assay-libraries.md), as every assay library meets it:

- `FORMATS`, `sniff(path)`: the vendor format from the content (the registry in `cba.readers`);
- `read(path, instrument_format, settings)` -> `CbaPlate`, the format handed on from `sniff`;
- `sample_names(plate, settings)` -> the sample wells' names to resolve;
- `analyse(plate, settings, facts)` -> `assaykit.Analysis`: `cba_curves`, `cytokines`, the
  plate's verdict (`plate_verdict`: refused when every curve failed or no well is a sample) and
  its run id as the supersede key.

Bad input raises `CbaFormatError` or `CbaAnalysisError` (both `assaykit.AssayInputError`s).
"""

from __future__ import annotations

from cba.analysis import CbaResult, analyse_plate, describe_series_breaks
from cba.analytes import VOCABULARY, Vocabulary, canonical_analyte, lookup_analyte
from cba.assay import FORMATS, analyse, plate_verdict, read, sample_names
from cba.errors import CbaAnalysisError, CbaFormatError, StandardSeriesError, UnknownAnalyteError
from cba.model import WELL_COLUMNS, CbaPlate, parse_reported_value
from cba.panels import LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX, BeadPanel
from cba.readers import read_plate, sniff
from cba.readers.bead_fcs import read_bead_fcs, read_bead_plate
from cba.settings import CbaSettings

__all__ = [
    "FORMATS", "LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX", "VOCABULARY",
    "WELL_COLUMNS", "BeadPanel", "CbaAnalysisError", "CbaFormatError", "CbaPlate", "CbaResult",
    "CbaSettings", "StandardSeriesError", "UnknownAnalyteError", "Vocabulary", "analyse", "analyse_plate",
    "canonical_analyte", "describe_series_breaks", "lookup_analyte", "parse_reported_value",
    "plate_verdict", "read", "read_bead_fcs", "read_bead_plate", "read_plate", "sample_names", "sniff",
]  # fmt: skip
