"""MFI and concentration tables exported by BD FCAP Array and BioLegend LEGENDplex software.

Neither vendor publishes its export layout, so this reader accepts the shapes these programs are
known to write and refuses anything it cannot place, saying why:

- a CSV (comma, semicolon or tab) or an XLSX workbook; optional preamble lines before the table
  (`Experiment Name: X`, `FCAP Array v3.0.1`, `LEGENDplex ... Data Analysis Software`);
- a header row with a well column (`Well`, `Well ID`, `Location`) and a sample column
  (`Sample`, `Sample ID`, `Sample Name`), optional `Sample Type`/`Type`/`Group`, `Dilution` /
  `Dilution Factor` and a single `Standard Conc.`/`Expected Conc.` column (BD CBA standards share
  one series for all analytes);
- wide: one column per analyte and measure, `IL-6 MFI`, `IL-6 Median FI`, `IL-6 Conc. (pg/mL)`,
  `IL-6 Expected Conc.`, or bare LEGENDplex headers with bead IDs, `IL-6 (A7)`, whose measure is
  the sheet's (`MFI`, `Concentration`) or a preamble `Data Type`;
- long: an `Analyte` column with `MFI`/`Median FI`, `Concentration` and `Expected Conc.` columns;
- in a workbook, a sheet without wells holding `Analyte`, `Standard` (the level, e.g. C7) and
  `Concentration` gives the standards' concentrations per analyte.

The vendor is recognised from the content: "FCAP" in the preamble or sheet names, "LEGENDplex"
there or LEGENDplex bead IDs in the analyte headers. A table with neither is refused. A table with
concentrations but no MFI is a concentration table (format `<vendor>-concentrations-<csv|xlsx>`);
its censored strings (`< 3.2`, `OOR >`, `N/A`) are kept as written.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from cba.analytes import VOCABULARY, Vocabulary, lookup_analyte
from cba.errors import CbaFormatError
from cba.model import CbaPlate, parse_reported_value, wells_frame
from cba.panels import BeadPanel
from cba.readers.common import Head, normalise_well, resolve_analytes, to_float, well_type

Cell = object
_WELL = re.compile(r"^(well|well id|well position|location)$", re.I)
_SAMPLE = re.compile(r"^(sample|sample id|sample name|sample description)$", re.I)
_TYPE = re.compile(r"^(type|sample type|well type|group)$", re.I)
_DILUTION = re.compile(r"^(dilution|dilution factor|dil\.?)$", re.I)
_ANALYTE = re.compile(r"^(analyte|bead|flex set|target|analyte name)$", re.I)
_LEVEL = re.compile(r"^(standard|level|std\.?|standard level)$", re.I)
_EXPECTED = re.compile(r"\b(expected|std\.?|standard)\s*(conc\w*\.?|value)?", re.I)
_MFI = re.compile(r"\b(mfi|median\s*fi|pe\s*median|median)\b", re.I)
_CONC = re.compile(r"\b(conc\w*\.?|calc\w*\.?)", re.I)
_UNIT = re.compile(r"\(?\s*pg\s*/\s*ml\s*\)?|\[\s*pg\s*/\s*ml\s*\]", re.I)
_BEAD_ID = re.compile(r"\(\s*[A-Z]\d{1,2}\s*\)\s*$")
_RUN_KEYS = re.compile(r"^(experiment|plate|batch|run|project|assay)(\s*(name|id))?$", re.I)
_DATE_KEYS = re.compile(r"^(date|acquisition date|acquired|run date|experiment date)$", re.I)
_MEASURE_KEYS = re.compile(r"^(data\s*type|value|statistic|measure)$", re.I)


@dataclass
class Sheet:
    name: str
    rows: list[list[Cell]]


@dataclass
class Layout:
    """Where things are in one sheet: the header row and what each column holds."""

    header_row: int
    preamble: dict[str, str]
    well: int | None = None
    sample: int | None = None
    type: int | None = None
    dilution: int | None = None
    standard_conc: int | None = None
    analyte: int | None = None
    level: int | None = None
    long_measures: dict[str, int] = field(default_factory=dict)  # measure -> column
    wide: list[tuple[int, str, str]] = field(default_factory=list)  # column, analyte, measure


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell).strip()


def load_sheets(path: Path, max_rows: int | None = None) -> list[Sheet]:
    """Rows of every sheet of a workbook, or the one table of a CSV (delimiter sniffed)."""
    if path.read_bytes()[:4] == b"PK\x03\x04":
        return _xlsx_sheets(path, max_rows)
    raw = path.read_bytes() if max_rows is None else path.read_bytes()[:65536]
    text = raw.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()[:max_rows] if max_rows else text.splitlines()
    delimiter = max((",", ";", "\t"), key=lambda d: sum(line.count(d) for line in lines[:40]))
    return [
        Sheet("", [list(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)])
    ]


def _xlsx_sheets(path: Path, max_rows: int | None) -> list[Sheet]:
    import openpyxl  # imported here: a 0.3 s import only workbooks need

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken zip or workbook
        raise CbaFormatError(f"{path}: not a readable XLSX workbook ({error})") from None
    sheets = [
        Sheet(ws.title, [list(r) for r in ws.iter_rows(max_row=max_rows, values_only=True)])
        for ws in book.worksheets
    ]
    book.close()
    return sheets


def _measure(header: str, sheet_measure: str | None) -> tuple[str, str] | None:
    """(analyte part, measure) of a wide header, or None when it names no measure or analyte."""
    for pattern, measure in ((_EXPECTED, "expected"), (_MFI, "mfi"), (_CONC, "concentration")):
        if pattern.search(header):
            rest = _UNIT.sub("", pattern.sub("", header, count=1)).strip(" -_:,.")
            return (rest, measure) if rest else ("", measure)
    bare = _UNIT.sub("", header).strip()
    if sheet_measure and (_BEAD_ID.search(bare) or lookup_analyte(bare)):
        return bare, sheet_measure
    return None


def _sheet_measure(sheet: Sheet, preamble: dict[str, str]) -> str | None:
    labels = [sheet.name] + [v for k, v in preamble.items() if _MEASURE_KEYS.match(k)]
    for label in labels:
        if re.search(r"mfi|median|fluorescence", label, re.I):
            return "mfi"
        if re.search(r"conc", label, re.I):
            return "concentration"
    return None


def _preamble(rows: list[list[Cell]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for row in rows:
        cells = [_text(c) for c in row if _text(c)]
        if len(cells) >= 2:
            found.setdefault(cells[0].rstrip(":"), cells[1])
        elif len(cells) == 1:
            key, _, value = cells[0].partition(":")
            found.setdefault(key.strip(), value.strip())
    return found


def find_layout(sheet: Sheet) -> Layout | None:
    """The table layout of a sheet, or None when no header row with a well or standard column."""
    for index, row in enumerate(sheet.rows[:60]):
        headers = [_text(c) for c in row]
        has_well = any(_WELL.match(h) for h in headers)
        has_sample = any(_SAMPLE.match(h) for h in headers)
        is_standards = any(_ANALYTE.match(h) for h in headers) and any(
            _LEVEL.match(h) for h in headers
        )
        if (has_well and has_sample) or (is_standards and not has_well):
            return _classify(headers, index, _preamble(sheet.rows[:index]), sheet)
    return None


def _classify(headers: list[str], index: int, preamble: dict[str, str], sheet: Sheet) -> Layout:
    layout = Layout(index, preamble)
    sheet_measure = _sheet_measure(sheet, preamble)
    for column, header in enumerate(headers):
        for attribute, pattern in (("well", _WELL), ("sample", _SAMPLE), ("type", _TYPE),
                                   ("dilution", _DILUTION), ("analyte", _ANALYTE),
                                   ("level", _LEVEL)):  # fmt: skip
            if pattern.match(header) and getattr(layout, attribute) is None:
                setattr(layout, attribute, column)
                break
        else:
            parsed = _measure(header, sheet_measure) if header else None
            if parsed is None:
                continue
            analyte, measure = parsed
            if analyte:
                layout.wide.append((column, analyte, measure))
            elif measure == "expected" and layout.analyte is None:
                layout.standard_conc = column
            else:
                layout.long_measures.setdefault(measure, column)
    return layout


def vendor_of(sheets: list[Sheet], layouts: list[Layout]) -> str | None:
    text = " ".join(
        [s.name for s in sheets] + [f"{k} {v}" for lay in layouts for k, v in lay.preamble.items()]
    )
    if re.search(r"fcap", text, re.I):
        return "fcap-array"
    bead_ids = any(_BEAD_ID.search(a) for lay in layouts for _, a, _ in lay.wide)
    if re.search(r"legend\s*plex", text, re.I) or bead_ids:
        return "legendplex"
    return None


VENDORS = ("fcap-array", "legendplex")
FORMATS = tuple(
    f"{vendor}-{measure}{container}"
    for vendor in VENDORS
    for measure in ("", "concentrations-")
    for container in ("csv", "xlsx")
)


def sniff(head: Head) -> str | None:
    """An FCAP Array or LEGENDplex table (`sniff_table`); never a folder or an FCS file."""
    return None if head.is_folder or head.is_binary_fcs else sniff_table(head.path)


def read(
    path: Path, fmt: str, vocabulary: Vocabulary = VOCABULARY, panel: BeadPanel | None = None
) -> CbaPlate:
    """The plate of an FCAP Array or LEGENDplex table (every one of `FORMATS` reads alike)."""
    return read_table(path, vocabulary)


def sniff_table(path: Path) -> str | None:
    """The format name of an FCAP Array / LEGENDplex table, or None; reads only the file's head."""
    try:
        sheets = load_sheets(path, max_rows=80)
    except (CbaFormatError, OSError):
        return None
    layouts = [lay for s in sheets if (lay := find_layout(s)) is not None]
    measures = {m for lay in layouts for _, _, m in lay.wide} | {
        m for lay in layouts if lay.analyte is not None for m in lay.long_measures
    }
    vendor = vendor_of(sheets, layouts)
    if vendor is None or not measures & {"mfi", "concentration"}:
        return None
    return _format_name(vendor, "mfi" in measures, sheets)


def _format_name(vendor: str, has_mfi: bool, sheets: list[Sheet]) -> str:
    container = "xlsx" if sheets and sheets[0].name else "csv"
    return f"{vendor}-{container}" if has_mfi else f"{vendor}-concentrations-{container}"


@dataclass
class _Well:
    well: str
    sample: str
    type_text: str
    dilution: float
    standard_conc: float
    values: dict[tuple[str, str], object] = field(default_factory=dict)  # (analyte, measure)


def read_table(path: Path, vocabulary: Vocabulary = VOCABULARY) -> CbaPlate:
    source = str(path)
    sheets = load_sheets(path)
    layouts = {id(s): lay for s in sheets if (lay := find_layout(s)) is not None}
    table_layouts = [layouts[id(s)] for s in sheets if id(s) in layouts]
    vendor = vendor_of(sheets, table_layouts)
    if not table_layouts:
        raise CbaFormatError(
            f"{source}: no table with a well column and a sample column found; export the "
            "results table (wells as rows) from FCAP Array or LEGENDplex"
        )
    if vendor is None:
        raise CbaFormatError(
            f"{source}: a table of wells, but neither FCAP Array nor LEGENDplex wrote it (no "
            "vendor name in the preamble, no LEGENDplex bead IDs); export it from the vendor "
            "software with its header lines"
        )
    wells: dict[tuple[str, str], _Well] = {}
    standards: dict[tuple[str, str], float] = {}
    for sheet in sheets:
        layout = layouts.get(id(sheet))
        if layout is None:
            continue
        if layout.well is None:
            standards.update(_standards_sheet(sheet, layout, source, vocabulary))
        else:
            _collect_wells(sheet, layout, wells, source)
    exported = list(dict.fromkeys(a for w in wells.values() for a, _ in w.values))
    if not exported:
        raise CbaFormatError(
            f"{source}: the table has wells but no analyte MFI or concentration columns "
            "(expected e.g. 'IL-6 MFI' or 'IL-6 (A7)' on an MFI sheet)"
        )
    warnings: list[str] = []
    names = resolve_analytes(exported, source, vocabulary, warnings)
    rows = _well_rows(wells, exported, names, standards)
    has_mfi = any(m == "mfi" for w in wells.values() for _, m in w.values)
    run_id = _run_id(vendor, table_layouts, path, warnings)
    return CbaPlate(
        _format_name(vendor, has_mfi, sheets), run_id, wells_frame(rows, source), source, warnings
    )


def _cell(row: list[Cell], column: int | None) -> Cell:
    return row[column] if column is not None and column < len(row) else None


def _collect_wells(
    sheet: Sheet, layout: Layout, wells: dict[tuple[str, str], _Well], source: str
) -> None:
    where = f"{source}{' sheet ' + sheet.name if sheet.name else ''}"
    headers = [_text(c) for c in sheet.rows[layout.header_row]]
    for number, row in enumerate(sheet.rows[layout.header_row + 1 :], start=layout.header_row + 2):
        if not _text(_cell(row, layout.well)):
            continue
        well_name = normalise_well(_text(_cell(row, layout.well)), where)
        sample = _text(_cell(row, layout.sample))
        dilution_cell = _cell(row, layout.dilution)
        entry = wells.setdefault((well_name, sample), _Well(
            well_name, sample, _text(_cell(row, layout.type)),
            to_float(dilution_cell, f"row {number} dilution", where)
            if _text(dilution_cell) else 1.0,
            to_float(_cell(row, layout.standard_conc), f"row {number} standard conc.", where,
                     no_value=_NO_VALUE),
        ))  # fmt: skip
        if layout.analyte is not None:
            analyte = _text(_cell(row, layout.analyte))
            for measure, column in layout.long_measures.items():
                entry.values[(analyte, measure)] = _value(
                    row,
                    column,
                    measure,
                    f"row {number} (well {well_name}) {headers[column]!r}",
                    where,
                )
        for column, analyte, measure in layout.wide:
            entry.values[(analyte, measure)] = _value(
                row, column, measure, f"row {number} (well {well_name}) {headers[column]!r}", where
            )


_NO_VALUE = ("", "n/a", "na")
"""An empty or N/A MFI or standard cell: the software exported no value. `NaN` is refused."""


def _value(row: list[Cell], column: int, measure: str, what: str, where: str) -> object:
    cell = _cell(row, column)
    if measure == "concentration":
        text = _text(cell)
        try:
            parse_reported_value(text)
        except ValueError:
            raise CbaFormatError(f"{where}: {what} holds {text!r}, not a concentration") from None
        return text
    return to_float(cell, what, where, no_value=_NO_VALUE)


def _standards_sheet(
    sheet: Sheet, layout: Layout, source: str, vocabulary: Vocabulary
) -> dict[tuple[str, str], float]:
    conc = layout.long_measures.get("concentration", layout.standard_conc)
    if conc is None:
        raise CbaFormatError(
            f"{source} sheet {sheet.name}: standards sheet without a concentration column"
        )
    found = {}
    for row in sheet.rows[layout.header_row + 1 :]:
        analyte, level = _text(_cell(row, layout.analyte)), _text(_cell(row, layout.level))
        if analyte and level:
            found[(vocabulary.lookup(analyte) or analyte, level)] = to_float(
                _cell(row, conc), f"standard {level} of {analyte}", source
            )
    return found


def _well_rows(
    wells: dict[tuple[str, str], _Well],
    exported: list[str],
    names: dict[str, tuple[str, bool]],
    standards: dict[tuple[str, str], float],
) -> list[dict[str, object]]:
    rows = []
    for entry in wells.values():
        kind = well_type(entry.type_text, entry.sample)
        for analyte in exported:
            if not any((analyte, m) in entry.values for m in ("mfi", "concentration")):
                continue
            expected = entry.values.get((analyte, "expected"), float("nan"))
            if expected != expected:  # NaN: fall back to the shared column, then the sheet
                key = (names[analyte][0], entry.sample)
                expected = standards.get(key, entry.standard_conc)
            rows.append({
                "well": entry.well, "sample_name": entry.sample, "type": kind,
                "standard_level": entry.sample if kind == "standard" else "",
                "analyte": names[analyte][0], "analyte_as_exported": analyte,
                "analyte_recognised": names[analyte][1],
                "mfi": entry.values.get((analyte, "mfi"), float("nan")),
                "standard_pg_ml": expected if kind == "standard" else float("nan"),
                "sample_dilution": entry.dilution,
                "reported_concentration": entry.values.get((analyte, "concentration"), ""),
            })  # fmt: skip
    return rows


def _run_id(vendor: str, layouts: list[Layout], path: Path, warnings: list[str]) -> str:
    preamble = {k: v for lay in layouts for k, v in lay.preamble.items()}
    name = next((v for k, v in preamble.items() if _RUN_KEYS.match(k) and v), "")
    date = next((v for k, v in preamble.items() if _DATE_KEYS.match(k) and v), "")
    if not name:
        warnings.append(
            "no experiment or plate name in the export; run identity from the file name"
        )
        name = path.stem
    return ":".join(part for part in (vendor, name, date) if part)
