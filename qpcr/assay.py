"""The qPCR library's side of the assay contract (docs/assay-libraries.md): one plate export in,
the `qpcr_wells`, `qpcr_runs` and `car_copies` tables, the plate's QC verdict and its supersede
key out."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from assaykit import Analysis, SampleFacts, SampleNames
from qpcr.analysis import analyse_plate
from qpcr.model import QpcrPlate
from qpcr.readers import FORMATS, read_format, sniff
from qpcr.settings import QpcrSettings

__all__ = ["FORMATS", "analyse", "read", "sample_names", "sniff"]

NO_SAMPLE_WELLS = "no sample wells: only the standard curve and controls are kept"


def read(path: Path, instrument_format: str, settings: QpcrSettings | None = None) -> QpcrPlate:
    """The plate of an export whose format `sniff` named; `QpcrFormatError` when it cannot be
    read as that format. (No setting changes how a plate is read.)"""
    return read_format(Path(path), instrument_format)


def sample_names(plate: QpcrPlate, settings: QpcrSettings) -> SampleNames:
    """The patient samples of the plate: unknown-task wells that are not the run's positive
    control. Standards, NTCs and the positive control belong to no patient."""
    return SampleNames(tuple(sorted(set(_sample_wells(plate, settings)["sample_name"]))))


def analyse(plate: QpcrPlate, settings: QpcrSettings, facts: SampleFacts | None = None) -> Analysis:
    """QC per target and CAR copies per sample of one plate.

    `facts` may give each sample's `dna_input_ng` (from the manifest), used where the export
    does not carry it. A plate that fails QC keeps its wells and QC figures (`qpcr_runs`, verdict
    FAIL, so trends include it) and reports no `car_copies`. A plate of standards and controls
    only (an assay qualification or curve-trend run) is taken with an empty `car_copies`.
    """
    result = analyse_plate(plate, settings, _dna_inputs(facts or {}))
    warnings = list(plate.warnings)
    if _sample_wells(plate, settings).empty:
        warnings.append(NO_SAMPLE_WELLS)
    tables = {"qpcr_wells": result.wells, "qpcr_runs": result.runs}
    if result.passed_qc:
        tables["car_copies"] = result.copies
    reported = result.copies[["sample_name", "target"]].dropna().astype(str)
    return Analysis(
        instrument_format=plate.instrument_format,
        supersede_key=plate.run_id,
        tables=tables,
        verdict=result.verdict,
        warnings=warnings,
        run_started=plate.run_started,
        results=tuple(sorted(set(reported.itertuples(index=False, name=None)))),
    )


def _sample_wells(plate: QpcrPlate, settings: QpcrSettings) -> pd.DataFrame:
    wells = plate.wells.dropna(subset=["sample_name"])
    is_control = wells["sample_name"].astype(str).map(settings.is_positive_control).astype(bool)
    return wells[(wells["task"] == "UNKNOWN") & ~is_control].astype({"sample_name": str})


def _dna_inputs(facts: SampleFacts) -> dict[str, float]:
    """ng DNA per reaction by sample name, where the manifest gives a number."""
    inputs = {name: fact.get("dna_input_ng") for name, fact in facts.items()}
    return {
        name: float(value)
        for name, value in inputs.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }
