"""Bead-array (CBA, LEGENDplex, Luminex) exports in; standard curves and cytokine concentrations
out. A plain library: it imports neither Prefect nor the pipeline nor the validation package."""

from __future__ import annotations

from cba.analysis import CbaResult, analyse_plate, describe_series_breaks
from cba.analytes import VOCABULARY, Vocabulary, canonical_analyte, lookup_analyte
from cba.errors import CbaAnalysisError, CbaFormatError, StandardSeriesError, UnknownAnalyteError
from cba.model import WELL_COLUMNS, CbaPlate, parse_reported_value
from cba.panels import LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX, BeadPanel
from cba.readers import read_plate, sniff
from cba.readers.bead_fcs import read_bead_fcs, read_bead_plate
from cba.settings import CbaSettings

__all__ = [
    "LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX", "VOCABULARY",
    "WELL_COLUMNS", "BeadPanel", "CbaAnalysisError", "CbaFormatError", "CbaPlate", "CbaResult",
    "CbaSettings", "StandardSeriesError", "UnknownAnalyteError", "Vocabulary", "analyse_plate",
    "canonical_analyte", "describe_series_breaks", "lookup_analyte", "parse_reported_value",
    "read_bead_fcs", "read_bead_plate", "read_plate", "sniff",
]  # fmt: skip
