"""The bead-array library's side of the assay contract (docs/assay-libraries.md): one plate
export in, the `cba_curves` and `cytokines` tables, the plate's verdict and its supersede key out."""

from __future__ import annotations

from pathlib import Path

from assaykit import REFUSED, Analysis, QcVerdict, SampleFacts, SampleNames
from cba.analysis import CbaResult, analyse_plate, describe_series_breaks
from cba.model import CbaPlate
from cba.readers import FORMATS, read_format, sniff
from cba.settings import CbaSettings

__all__ = ["FORMATS", "analyse", "plate_verdict", "read", "sample_names", "sniff"]


def read(path: Path, instrument_format: str, settings: CbaSettings | None = None) -> CbaPlate:
    """The plate of an export whose format `sniff` named, analyte names looked up in the
    settings' vocabulary (with the lab's `analyte_aliases`); `CbaFormatError` saying why not."""
    settings = settings or CbaSettings()
    return read_format(Path(path), instrument_format, vocabulary=settings.vocabulary)


def sample_names(plate: CbaPlate, settings: CbaSettings) -> SampleNames:
    """The names of the plate's sample wells as exported."""
    return SampleNames(tuple(plate.sample_names))


def analyse(plate: CbaPlate, settings: CbaSettings, facts: SampleFacts | None = None) -> Analysis:
    """Standard curves per analyte and cytokine concentrations per sample of one plate.

    Where only some analytes fail, the plate is taken and those analytes carry no
    concentration, as the vendors' software reports a multiplex plate; `plate_verdict` says when
    the whole plate is refused. The manifest's `facts` are not used by this assay.
    """
    result = analyse_plate(plate, settings)
    return Analysis(
        instrument_format=plate.instrument_format,
        supersede_key=result.run_id,
        tables={"cba_curves": result.curves, "cytokines": result.cytokines},
        verdict=plate_verdict(result),
        warnings=list(result.warnings),
    )


def plate_verdict(result: CbaResult) -> QcVerdict:
    """Refused when every standard curve failed (e.g. a standard series written 1000x too
    large) or the plate has no sample wells; else passed."""
    curves = result.curves
    if len(curves) and (curves["verdict"] == "FAIL").all():
        reasons = tuple(f"{row.analyte}: {row.verdict_reason}" for row in curves.itertuples())
        return QcVerdict(
            REFUSED, reasons, f"every standard curve failed; {_curve_failures(result)}"
        )
    if result.cytokines.empty:
        return QcVerdict(REFUSED, ("no sample wells",), "the plate has no sample wells")
    return QcVerdict()


def _curve_failures(result: CbaResult) -> str:
    """Why the curves failed, short: the series faults with their analytes, else the first
    analyte's reason and how many more failed."""
    if result.series_breaks:
        return (
            f"{describe_series_breaks(result.series_breaks)}. Correct the standard "
            "concentrations in the instrument software and export the plate again"
        )
    first = result.curves.iloc[0]
    more = len(result.curves) - 1
    return f"{first['analyte']}: {first['verdict_reason']}" + (
        f" (and {more} more analytes)" if more else ""
    )
