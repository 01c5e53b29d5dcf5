"""QuantStudio Design & Analysis (D&A 2.x) Excel workbooks.

Each sheet starts with `key | value` rows (instrument, run times, software), a blank row, then the
table header on row ~25. The `Results` sheet holds one row per well and target with `Amp Status`
(`AMP`, `NO_AMP`, `INCONCLUSIVE`) and `Cq` (`UNDETERMINED` when none was found). Standard
quantities and the fitted curve (Slope, Y-Intercept, R2, Efficiency) are only in the
`Standard Curve Result` sheet, which is joined on well position and target.

allotropy (0.1.134) reads these workbooks but takes 4-7 s per file, more than the whole ingest
budget, and reports NTC and STANDARD wells alike as "control sample role". openpyxl in read-only
mode reads only the two sheets needed (~0.5 s for 384 wells). The conformance tests compare the
Cq values with allotropy's.

run_id: `quantstudio-da:<barcode or .eds file name>@<run end time>`.
"""

from __future__ import annotations

import warnings as python_warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qpcr.model import QpcrFormatError, QpcrPlate
from qpcr.readers._common import (
    CQ_COLUMN_NAMES,
    RELATIVE_QUANTIFICATION_ADVICE,
    Probe,
    column_key,
    curve_stats,
    file_basename,
    find_column,
    format_error,
    instrument_label,
    list_columns,
    normalise_well,
    parse_bool,
    parse_vendor_time,
    run_id,
    unknown_tasks_warning,
    well_row,
    wells_frame,
)

QUANTSTUDIO_DA = "quantstudio-da"
FORMATS = (QUANTSTUDIO_DA,)

RESULTS_SHEET = "Results"
CURVE_SHEET = "Standard Curve Result"
RELATIVE_SHEET = "RQ Replicate Group Result"  # Relative Quantification (ΔΔCq) analyses
_NOT_QUANTIFICATION_SHEETS = ("Genotyping Result", "Melt Curve Result", "Presence Absence Result")
_HEADER_SEARCH_ROWS = 80
NO_CQ = frozenset({"undetermined"})
"""What Design & Analysis writes in the Cq column for no Cq (`UNDETERMINED`, with `NO_AMP`)."""


def sniff(found: Probe) -> str | None:
    """A zipped workbook with a `Results` sheet whose metadata names a QuantStudio instrument."""
    if not found.zip_names or "xl/workbook.xml" not in found.zip_names:
        return None
    try:
        sheet = _Sheet.read(found.path, RESULTS_SHEET, rows=_HEADER_SEARCH_ROWS)
    except (KeyError, OSError, zipfile.BadZipFile, ValueError):
        return None
    if sheet is None:
        return None
    software = " ".join(
        sheet.meta.get(k, "") for k in ("instrument type", "software name and version")
    )
    return (
        QUANTSTUDIO_DA
        if "quantstudio" in software.lower() or "design" in software.lower()
        else None
    )


def read(path: Path) -> QpcrPlate:
    try:
        results = _Sheet.read(path, RESULTS_SHEET)
    except (KeyError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise format_error(
            path,
            f"the workbook cannot be opened ({error}); it may be damaged or truncated",
            "Export it again from Design & Analysis",
        ) from error
    if results is None:
        raise format_error(
            path,
            "the Results sheet has no table header (a 'Well', 'Well Position' row)",
            "Export the Results from Design & Analysis without editing the workbook",
        )
    cq = find_column(results.header, *CQ_COLUMN_NAMES)
    if cq is None:
        raise _no_cq_error(path, results)
    curve = _Sheet.read(path, CURVE_SHEET)
    if curve is None:
        _refuse_relative_quantification(path, results)
    warnings: list[str] = []
    rows = list(_well_rows(path, results, cq, curve))
    wells = wells_frame(path, rows)
    standards = wells[wells["task"] == "STANDARD"]
    if len(standards) and standards["standard_quantity"].isna().all():
        warnings.append("standard wells carry no quantity (no Standard Curve Result sheet)")
    warnings += unknown_tasks_warning(results.column_values("Task"))
    meta = results.meta
    return QpcrPlate(
        instrument_format=QUANTSTUDIO_DA,
        run_id=run_id(QUANTSTUDIO_DA, _identity(meta, path), _meta_time(meta, "run end")),
        wells=wells,
        instrument=instrument_label(
            meta.get("instrument type", ""),
            meta.get("instrument serial number") or meta.get("instrument name", ""),
        ),
        run_started=_meta_time(meta, "run start"),
        instrument_curves=_curves(curve),
        warnings=warnings,
    )


@dataclass
class _Sheet:
    meta: dict[str, str]
    header: list[str]
    rows: list[tuple[object, ...]]

    @classmethod
    def read(cls, path: Path, name: str, rows: int | None = None) -> _Sheet | None:
        """The sheet's metadata and table; None when the workbook lacks the sheet or header."""
        import openpyxl  # ~0.3 s to import; only D&A workbooks need it

        with python_warnings.catch_warnings():
            # D&A workbooks (written by Apache POI) have no default style; openpyxl warns.
            python_warnings.simplefilter("ignore", UserWarning)
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            if name not in book.sheetnames:
                return None
            values = book[name].iter_rows(values_only=True, max_row=rows)
            return cls._split(values)
        finally:
            book.close()

    @classmethod
    def _split(cls, values: Iterator[tuple[object, ...]]) -> _Sheet | None:
        meta: dict[str, str] = {}
        for row in values:
            cells = ["" if c is None else str(c).strip() for c in row]
            if (
                len(cells) > 1
                and column_key(cells[0]) == "well"
                and column_key(cells[1])
                in {
                    "well position",
                    "well",
                }
            ):
                table = []
                for data in values:
                    if all(c is None or str(c).strip() == "" for c in data):
                        break
                    table.append(data)
                return cls(meta=meta, header=cells, rows=table)
            if cells and cells[0]:
                meta[column_key(cells[0])] = cells[1] if len(cells) > 1 else ""
        return None

    def index(self, *names: str) -> int | None:
        return find_column(self.header, *names)

    def column_values(self, *names: str) -> list[object]:
        index = self.index(*names)
        return [] if index is None else [_cell(row, index) for row in self.rows]


def _cell(row: tuple[object, ...], index: int | None) -> object:
    if index is None or index >= len(row) or row[index] is None:
        return ""
    value = row[index]
    return value.strip() if isinstance(value, str) else value


def _refuse_relative_quantification(path: Path, results: _Sheet) -> None:
    """A Relative Quantification analysis (its plug-in, or its RQ sheet) without standards' sheet."""
    plugin = results.meta.get("plugin name and version", "")
    if "relative quantification" in plugin.lower() or _has_sheet(path, RELATIVE_SHEET):
        raise format_error(
            path,
            f"a relative-quantification (ΔΔCq) analysis ({plugin or RELATIVE_SHEET}): its RQ "
            "values compare samples with each other and carry no copy numbers",
            RELATIVE_QUANTIFICATION_ADVICE,
        )


def _has_sheet(path: Path, name: str) -> bool:
    import openpyxl

    with python_warnings.catch_warnings():
        python_warnings.simplefilter("ignore", UserWarning)
        book = openpyxl.load_workbook(path, read_only=True)
    try:
        return name in book.sheetnames
    finally:
        book.close()


def _no_cq_error(path: Path, results: _Sheet) -> QpcrFormatError:
    analysis = results.meta.get("plugin name and version", "") or results.meta.get(
        "experiment type", ""
    )
    if any(word in analysis.lower() for word in ("genotyping", "melt", "presence")):
        problem = f"not a quantification run (analysis: {analysis}); there is no Cq column"
    else:
        problem = (
            "the Results sheet has no Cq column (expected Cq, CT or CRT); its columns are: "
            + list_columns(results.header)
        )
    return format_error(path, problem, "Export a Standard Curve analysis with its Cq values")


def _well_rows(
    path: Path, results: _Sheet, cq: int, curve: _Sheet | None
) -> Iterator[dict[str, object]]:
    quantities = _quantities(curve)
    own_quantity = results.index("Quantity")
    columns = {
        name: results.index(*aliases)
        for name, aliases in {
            "position": ("Well Position",),
            "omit": ("Omit",),
            "sample": ("Sample", "Sample Name"),
            "target": ("Target", "Target Name"),
            "task": ("Task",),
            "reporter": ("Reporter",),
            "amp_status": ("Amp Status",),
        }.items()
    }
    for number, row in enumerate(results.rows, start=1):
        well = normalise_well(_cell(row, columns["position"]))
        if well is None:
            raise format_error(
                path,
                f"Results table row {number} has no well position "
                f"('{_cell(row, columns['position'])}')",
                "Export the workbook again",
            )
        target = str(_cell(row, columns["target"]))
        quantity = (
            _cell(row, own_quantity)
            if own_quantity is not None
            else quantities.get((well, target), "")
        )
        amp_status = (
            None if columns["amp_status"] is None else str(_cell(row, columns["amp_status"]))
        )
        yield well_row(
            well=well,
            sample_name=_cell(row, columns["sample"]),
            target=target,
            reporter=_cell(row, columns["reporter"]),
            task=_cell(row, columns["task"]),
            cq_cell=_cell(row, cq),
            no_cq_markers=NO_CQ,
            amp_status=amp_status,
            standard_quantity=quantity,
            instrument_quantity=quantity,
            omitted=parse_bool(_cell(row, columns["omit"])),
        )


def _quantities(curve: _Sheet | None) -> dict[tuple[str, str], object]:
    """The Quantity cell of each well and target in the Standard Curve Result sheet."""
    if curve is None:
        return {}
    position, target, quantity = (
        curve.index("Well Position"),
        curve.index("Target"),
        curve.index("Quantity"),
    )
    found = {}
    for row in curve.rows:
        well = normalise_well(_cell(row, position))
        if well:
            found[(well, str(_cell(row, target)))] = _cell(row, quantity)
    return found


def _curves(curve: _Sheet | None) -> dict[str, dict[str, float]]:
    if curve is None:
        return {}
    target = curve.index("Target")
    indices = (
        curve.index("Slope"),
        curve.index("Y-Intercept"),
        curve.index("R2", "R(superscript 2)"),
        curve.index("Efficiency"),
    )
    curves: dict[str, dict[str, float]] = {}
    for row in curve.rows:
        stats = curve_stats(*(_cell(row, i) for i in indices))
        if stats:
            curves.setdefault(str(_cell(row, target)), stats)
    return curves


def _identity(meta: dict[str, str], path: Path) -> str:
    for key in ("barcode", "file name", "experiment name"):
        value = meta.get(key, "").strip()
        if value and value.upper() != "NA":
            return file_basename(value)
    return path.name


def _meta_time(meta: dict[str, str], prefix: str) -> datetime | None:
    # D&A writes "Run End Data/Time" (sic) in some versions and "Run End Date/Time" in others.
    for key, value in meta.items():
        if key.startswith(prefix):
            return parse_vendor_time(value)
    return None
