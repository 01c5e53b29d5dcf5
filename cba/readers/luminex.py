"""Luminex xPONENT and INTELLIFLEX CSV exports.

allotropy (0.1.134) parses both, but it loses what a standard curve needs, so these readers parse
the CSV themselves: it drops INTELLIFLEX's WELL TYPE (which wells are standards, blanks, controls),
turns the missing medians of dry wells into -0.0 (indistinguishable from a real zero), refuses
xPONENT section names outside its list (the analysed exports' concentration sections), and takes
3-5 s to import. The conformance tests compare the medians read here with allotropy's.

xPONENT: a `"Program","xPONENT"` header block, then after `"Results"` one section per statistic,
each `"DataType:","<name>"`, a header row (`Location, Sample, <analyte>..., Total Events`) and one
row per well. Used: Median (MFI), Dilution Factor, sections whose name contains "Expected"
(standard concentrations) and Result / Calculated Concentration (the software's concentrations).
xPONENT writes `NaN` as the median of a bead region that had no beads in a well; such a NaN is
taken as "no value" only where the Count section shows 0 beads for that well and analyte, and
refused anywhere else.

INTELLIFLEX: one row per well; per bead region `Rnn: RP1 ANALYTE NAME`, `Rnn: RP1 MEDIAN`, ...;
WELL TYPE S*/U*/B*/C* gives standards, unknowns, blanks, controls. A `NaN` median is "no value"
in a well whose WELL STATUS is Dry or whose region count is 0, and refused anywhere else.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from cba.analytes import VOCABULARY, Vocabulary
from cba.errors import CbaFormatError
from cba.model import CbaPlate, wells_frame
from cba.panels import BeadPanel
from cba.readers.common import Head, normalise_well, resolve_analytes, to_float, well_type

XPONENT = "luminex-xponent-csv"
INTELLIFLEX = "luminex-intelliflex-csv"
FORMATS = (XPONENT, INTELLIFLEX)

_NON_ANALYTE = {"location", "sample", "total events", "notes", ""}
_REPORTED_SECTIONS = {"result", "results", "calculated concentration", "concentration"}


def looks_like_xponent(head: str) -> bool:
    return bool(re.search(r'^"?Program"?,\s*"?xPONENT', head, re.M))


def looks_like_intelliflex(head: str) -> bool:
    first = head.splitlines()[0] if head else ""
    return "WELL LOCATION" in first and "RP1 MEDIAN" in first and "MODEL NAME" in first


def sniff(head: Head) -> str | None:
    """xPONENT by its `"Program","xPONENT"` header line, INTELLIFLEX by its first row."""
    if head.is_folder or head.is_binary_fcs:
        return None
    if looks_like_xponent(head.text):
        return XPONENT
    if looks_like_intelliflex(head.text):
        return INTELLIFLEX
    return None


def read(
    path: Path, fmt: str, vocabulary: Vocabulary = VOCABULARY, panel: BeadPanel | None = None
) -> CbaPlate:
    """The plate of an xPONENT or INTELLIFLEX export (`fmt` as `sniff` named it)."""
    return read_xponent(path, vocabulary) if fmt == XPONENT else read_intelliflex(path, vocabulary)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # xPONENT writes the protocol description in ANSI


def _xponent_sections(rows: list[list[str]]) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """The header key/values before "Results", and each DataType section's rows (header first)."""
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    in_results = False
    for row in rows:
        cells = [c.strip() for c in row]
        if not in_results:
            if cells and cells[0] == "Results":
                in_results = True
            elif len(cells) >= 2 and cells[0]:
                header.setdefault(cells[0], cells[1])
            continue
        if cells and cells[0] == "DataType:":
            current = sections.setdefault(cells[1] if len(cells) > 1 else "", [])
        elif not any(cells):
            current = None
        elif current is not None:
            current.append(cells)
    return header, sections


def _by_location(section: list[list[str]]) -> tuple[list[str], dict[str, list[str]]]:
    head, body = section[0], section[1:]
    return head, {row[0]: row for row in body if row and row[0]}


def read_xponent(path: Path, vocabulary: Vocabulary = VOCABULARY) -> CbaPlate:
    source = str(path)
    rows = list(csv.reader(io.StringIO(_read_text(path))))
    header, sections = _xponent_sections(rows)
    if "Median" not in sections:
        raise CbaFormatError(
            f"{source}: xPONENT export without a Median section; export the batch with the "
            "Median statistic"
        )
    head, medians = _by_location(sections["Median"])
    analyte_columns = [(i, n) for i, n in enumerate(head) if n.lower() not in _NON_ANALYTE]
    warnings: list[str] = []
    names = resolve_analytes([n for _, n in analyte_columns], source, vocabulary, warnings)
    dilutions = _dilutions(sections.get("Dilution Factor"), source)
    counts = _analyte_section(sections, lambda name: name == "Count")
    expected = _analyte_section(sections, _is_standard_expected)
    reported = _analyte_section(sections, lambda name: name.lower() in _REPORTED_SECTIONS)
    out = []
    for location, row in medians.items():
        well = normalise_well(location.split(",")[-1], source)
        sample = row[1]
        kind = well_type("", sample)
        for index, exported in analyte_columns:
            standard = expected.get((location, exported), "")
            analyte, recognised = names[exported]
            no_beads = counts.get((location, exported), "").strip() == "0"
            out.append({
                "well": well, "sample_name": sample, "type": kind,
                "standard_level": sample if kind == "standard" else "",
                "analyte": analyte, "analyte_as_exported": exported,
                "analyte_recognised": recognised,
                "mfi": to_float(row[index], f"the Median of {exported} in well {well}", source,
                                no_value=("", "nan") if no_beads else ("",)),
                "standard_pg_ml": to_float(standard, f"expected {exported} in well {well}", source)
                if kind == "standard" else float("nan"),
                "sample_dilution": dilutions.get(location, 1.0),
                "reported_concentration": reported.get((location, exported), ""),
            })  # fmt: skip
    run_id = ":".join(
        ["xponent", header.get("SN", ""), header.get("Batch", ""), header.get("BatchStartTime", "")]
    )
    return CbaPlate(XPONENT, run_id, wells_frame(out, source), source, warnings)


def _is_standard_expected(section_name: str) -> bool:
    """The section of the standards' expected concentrations, not the controls' expected ones."""
    name = section_name.lower()
    return "expected" in name and "control" not in name


def _dilutions(section: list[list[str]] | None, source: str) -> dict[str, float]:
    if not section:
        return {}
    _, rows = _by_location(section)
    return {loc: to_float(row[-1], f"dilution of {loc}", source) for loc, row in rows.items()}


def _analyte_section(sections: dict[str, list[list[str]]], wanted) -> dict[tuple[str, str], str]:
    """(location, analyte) -> cell text of the first section whose name `wanted` accepts."""
    for name, section in sections.items():
        if wanted(name) and section and section[0] and section[0][0] == "Location":
            head, rows = _by_location(section)
            return {(loc, head[i]): row[i] for loc, row in rows.items() for i in range(2, len(row))}
    return {}


_REGION = re.compile(r"^(R\d+): RP1 (.+)$")


def read_intelliflex(path: Path, vocabulary: Vocabulary = VOCABULARY) -> CbaPlate:
    source = str(path)
    table = pd.read_csv(io.StringIO(_read_text(path)), dtype=str, keep_default_na=False)
    table = table[table["WELL LOCATION"].str.strip() != ""]
    regions: dict[str, dict[str, str]] = {}
    for column in table.columns:
        match = _REGION.match(column)
        if match:
            regions.setdefault(match.group(1), {})[match.group(2)] = column
    region_names = {
        region: next((v for v in table[cols["ANALYTE NAME"]] if v.strip() not in ("", "NaN")), "")
        for region, cols in regions.items()
        if "ANALYTE NAME" in cols and "MEDIAN" in cols
    }
    region_names = {region: name for region, name in region_names.items() if name}
    if not region_names:
        raise CbaFormatError(f"{source}: INTELLIFLEX export without any analyte region medians")
    warnings: list[str] = []
    names = resolve_analytes(list(region_names.values()), source, vocabulary, warnings)
    out = []
    for _, row in table.iterrows():
        well = normalise_well(row["WELL LOCATION"], source)
        kind = well_type(row.get("WELL TYPE", "")[:1], row["SAMPLE ID"])
        dry = row.get("WELL STATUS", "").strip().lower() == "dry"
        if dry:
            warnings.append(f"well {well} ({row['SAMPLE ID']}) is marked Dry: no MFI")
        for region, exported in region_names.items():
            cols = regions[region]
            expected = next((cols[k] for k in cols if "EXPECTED" in k), None)
            reported = next((cols[k] for k in cols if k in ("CONCENTRATION", "RESULT")), None)
            no_beads = dry or row.get(cols.get("COUNT", ""), "").strip() in ("0", "NaN")
            analyte, recognised = names[exported]
            out.append({
                "well": well, "sample_name": row["SAMPLE ID"], "type": kind,
                "standard_level": row["SAMPLE ID"] if kind == "standard" else "",
                "analyte": analyte, "analyte_as_exported": exported,
                "analyte_recognised": recognised,
                "mfi": to_float(row[cols["MEDIAN"]], f"{region} ({exported}) median in well {well}",
                                source, no_value=("", "nan") if no_beads else ("",)),
                "standard_pg_ml": to_float(row[expected], f"{region} expected in well {well}",
                                           source)
                if expected and kind == "standard" else float("nan"),
                "sample_dilution": to_float(row.get("DILUTION", "") or "1",
                                            f"DILUTION of well {well}", source),
                "reported_concentration": row[reported] if reported else "",
            })  # fmt: skip
    first = table.iloc[0]
    run_id = ":".join(
        ["intelliflex", first.get("SERIAL NUMBER", ""), first.get("PLATE NAME", ""),
         first.get("PLATE START", "")]
    )  # fmt: skip
    return CbaPlate(INTELLIFLEX, run_id, wells_frame(out, source), source, warnings)
