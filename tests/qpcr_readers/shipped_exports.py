"""Copies of the shipped real exports (../shared/data/qpcr) with chosen Cq cells rewritten.

Each writer puts `cells[i]` into the Cq cell of the i-th editable well of one real export and
returns where the copy is and which (well, target) each cell landed in, as the reader names it.
A cell of "" leaves the Cq cell empty (RDML: removes the `cq` element).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
from lxml import etree

from qpcr import normalise_well, parse_number
from qpcr.readers import cfx_maestro, lightcycler, quantstudio_da, quantstudio_text

RDML_NS = "{http://www.rdml.org}"


@dataclass(frozen=True)
class Export:
    """One shipped export the writers can edit: its format and the vendor's "no Cq" marker."""

    format: str
    is_no_cq: Callable[[str], bool]
    write: Callable[[Path, Path, list[str]], list[tuple[str, str]]]
    editable_wells: int


def _tab_table_edit(
    lines: list[str], header_at: int, column: str, cells: list[str], key: Callable
) -> list[tuple[str, str]]:
    header = lines[header_at].split("\t")
    index = header.index(column)
    keys = []
    for number, cell in enumerate(cells, start=header_at + 1):
        fields = lines[number].split("\t")
        fields[index] = cell
        lines[number] = "\t".join(fields)
        keys.append(key(dict(zip(header, fields, strict=False))))
    return keys


def write_quantstudio_text(
    source: Path, target: Path, cells: list[str], instrument: str | None = None
) -> list[tuple[str, str]]:
    """appbio_quantstudio_example04.txt (QuantStudio 7 Flex, Standard Curve) with `cells` as CT
    of its first wells; `instrument` rewrites the Instrument Type line (e.g. a 7500)."""
    text = source.read_text(encoding="utf-8")
    if instrument:
        text = re.sub(r"(?m)^\* Instrument Type = .*$", f"* Instrument Type = {instrument}", text)
    lines = text.split("\n")
    header_at = lines.index("[Results]") + 1
    keys = _tab_table_edit(
        lines, header_at, "CT", cells,
        lambda row: (normalise_well(row["Well Position"]), row["Target Name"]),
    )  # fmt: skip
    target.write_text("\n".join(lines), encoding="utf-8")
    return keys


def write_cfx(source: Path, target: Path, cells: list[str]) -> list[tuple[str, str]]:
    """cfxmaestro_example01.csv with `cells` as Cq of its first rows (Target empty: the Fluor)."""
    rows = list(csv.reader(io.StringIO(source.read_text(encoding="utf-8"))))
    index = rows[0].index("Cq")
    keys = []
    for number, cell in enumerate(cells, start=1):
        rows[number][index] = cell
        row = dict(zip(rows[0], rows[number], strict=True))
        keys.append((normalise_well(row["Well"]), row["Target"] or row["Fluor"]))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    target.write_text(out.getvalue(), encoding="utf-8")
    return keys


def write_lightcycler(source: Path, target: Path, cells: list[str]) -> list[tuple[str, str]]:
    """lightcycler480_TxnInhibitors_plate1_Cq.txt.gz with `cells` as Cp of its first wells."""
    lines = gzip.decompress(source.read_bytes()).decode("utf-8").split("\n")
    detection = lines[0].split("Selected Filter:")[1].strip()
    keys = _tab_table_edit(lines, 1, "Cp", cells, lambda row: (row["Pos"], detection))
    target.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    return keys


@functools.cache
def slim_design_and_analysis(source: Path) -> Path:
    """The workbook with only the two sheets the reader reads, values as written (the full
    workbook's amplification sheets make every openpyxl load and save take ~20 s)."""
    full = openpyxl.load_workbook(source, read_only=True)
    slim = openpyxl.Workbook()
    slim.remove(slim.active)
    for name in (quantstudio_da.RESULTS_SHEET, quantstudio_da.CURVE_SHEET):
        sheet = slim.create_sheet(name)
        for values in full[name].iter_rows(values_only=True):
            sheet.append(values)
    full.close()
    path = Path(tempfile.mkdtemp(prefix="da-slim-")) / source.name
    slim.save(path)
    return path


def write_design_and_analysis(
    source: Path, target: Path, cells: list[str]
) -> list[tuple[str, str]]:
    """quantstudio_da_QS6_Standard_Curve_example04.xlsx with `cells` as Cq of its first wells;
    a cell that is a finite number is written as a number, as the software writes it."""
    book = openpyxl.load_workbook(slim_design_and_analysis(source))
    sheet = book["Results"]
    rows = sheet.iter_rows()
    header = next(r for r in rows if r[0].value == "Well" and r[1].value == "Well Position")
    names = [c.value for c in header]
    cq, position, target_name = (
        names.index("Cq"),
        names.index("Well Position"),
        names.index("Target"),
    )
    keys = []
    for cell, row in zip(cells, rows, strict=False):
        row[cq].value = _as_excel(cell)
        keys.append((normalise_well(row[position].value), row[target_name].value))
    book.save(target)
    return keys


def _as_excel(cell: str) -> object:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        return cell
    return value if math.isfinite(value) else cell


def write_rdml(source: Path, target: Path, cells: list[str]) -> list[tuple[str, str]]:
    """stepone_std.rdml with `cells` as the `cq` of its wells after the three NTCs (whose 40.0
    the StepOne rule reads as "no Cq"); "" removes the element."""
    root = rdml_root(source)
    datas = [
        (react, data)
        for react in root.iter(RDML_NS + "react")
        if not react.find(RDML_NS + "sample").get("id").startswith("NTC")
        for data in react.findall(RDML_NS + "data")
    ]
    keys = []
    for cell, (react, data) in zip(cells, datas, strict=False):
        cq = data.find(RDML_NS + "cq")
        if cell == "":
            data.remove(cq)
        else:
            cq.text = cell
        keys.append((normalise_well(react.get("id")), data.find(RDML_NS + "tar").get("id")))
    write_rdml_root(target, root)
    return keys


def rdml_root(source: Path) -> etree._Element:
    with zipfile.ZipFile(source) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".xml"))
        return etree.fromstring(archive.read(member))


def write_rdml_root(target: Path, root: etree._Element) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "rdml_data.xml", etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        )
    return target


def _marker(markers: frozenset[str]) -> Callable[[str], bool]:
    return lambda cell: cell.strip().lower() in markers


def _rdml_no_cq(cell: str) -> bool:
    """RDML: no `cq` element, or the value -1.0 ("Not Available" in the RDML schema)."""
    return cell.strip() == "" or parse_number(cell) == -1.0


EXPORTS: dict[str, tuple[str, Export]] = {
    "quantstudio-text": (
        "appbio_quantstudio_example04.txt",
        Export("quantstudio-text", _marker(quantstudio_text.NO_CQ), write_quantstudio_text, 24),
    ),
    "abi-7500": (
        "appbio_quantstudio_example04.txt",
        Export(
            "abi-7500",
            _marker(quantstudio_text.NO_CQ),
            lambda s, t, c: write_quantstudio_text(s, t, c, instrument="7500 Fast (96 Wells)"),
            24,
        ),
    ),
    "quantstudio-da": (
        "quantstudio_da_QS6_Standard_Curve_example04.xlsx",
        Export("quantstudio-da", _marker(quantstudio_da.NO_CQ), write_design_and_analysis, 24),
    ),
    "cfx-maestro": (
        "cfxmaestro_example01.csv",
        Export("cfx-maestro", _marker(cfx_maestro.NO_CQ), write_cfx, 24),
    ),
    "lightcycler-480": (
        "lightcycler480_TxnInhibitors_plate1_Cq.txt.gz",
        Export("lightcycler-480", _marker(lightcycler.NO_CQ), write_lightcycler, 24),
    ),
    "rdml": (
        "stepone_std.rdml",
        Export("rdml", _rdml_no_cq, write_rdml, 21),
    ),
}
"""Per format: the shipped file edited and how (RDML's markers: an absent `cq` and -1.0)."""
