"""Roche LightCycler 480 "Abs Quant / 2nd Derivative Max" text export (often gzipped).

Line 1: `Experiment: <name>  Selected Filter: <filter>`; line 2: the tab-separated header
`Include, Color, Pos, Name, Cp, Concentration, Standard, Status`; then one row per well. An empty
`Cp` means no amplification. `Standard` holds the entered concentration of standard wells (0 for
the others) and `Concentration` what the software computed. `Include = False` marks a well the
analyst excluded. The export names no target: the detection filter stands in for it. It carries
no NTC marking either, so wells that are not standards are recorded as UNKNOWN.

run_id: `lightcycler-480:<experiment name>` (the experiment name is the run's file name in the
LightCycler database; the export has no run time).
"""

from __future__ import annotations

import re
from pathlib import Path

from qpcr.model import QpcrPlate
from qpcr.readers._common import (
    Probe,
    find_column,
    format_error,
    list_columns,
    normalise_well,
    parse_bool,
    parse_number,
    read_text,
    well_row,
    wells_frame,
)

LIGHTCYCLER_480 = "lightcycler-480"
FORMATS = (LIGHTCYCLER_480,)

_TITLE = re.compile(r"^Experiment:\s*(?P<name>.*?)(?:\s+Selected Filter:\s*(?P<filter>.*?))?\s*$")
_CP_NAMES = ("Cp", "Ct", "Cq")
NO_CQ = frozenset({""})
"""The LightCycler software leaves the Cp cell empty where it found no amplification."""


def sniff(found: Probe) -> str | None:
    """A tab-separated header with Pos, Name and Cp within the first two lines."""
    for line in found.first_lines[:2]:
        header = line.split("\t")
        if all(find_column(header, n) is not None for n in ("Pos", "Name")) and find_column(
            header, *_CP_NAMES
        ):
            return LIGHTCYCLER_480
    return None


def read(path: Path) -> QpcrPlate:
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    title = _TITLE.match(lines[0]) if lines else None
    body = lines[1:] if title else lines
    if not body:
        raise format_error(path, "the export has no table", "Export the Cp results again")
    header = body[0].split("\t")
    cp, pos = find_column(header, *_CP_NAMES), find_column(header, "Pos")
    if cp is None or pos is None:
        raise format_error(
            path,
            f"the table has no Pos or Cp column; its columns are: {list_columns(header)}",
            "Export 'Abs Quant' results (with Cp) from the LightCycler software",
        )
    experiment = (title.group("name") if title else "").strip()
    detection = (title.group("filter") or "" if title else "").strip()
    warnings = [
        f"the export names no target; the detection filter '{detection or 'unknown'}' is used",
    ]
    index = {
        name: find_column(header, *aliases)
        for name, aliases in {
            "pos": ("Pos",), "name": ("Name",), "cp": _CP_NAMES, "concentration": ("Concentration",),
            "standard": ("Standard",), "status": ("Status",), "include": ("Include",),
        }.items()
    }  # fmt: skip
    rows = []
    for number, line in enumerate(body[1:], start=3 if title else 2):
        fields = line.split("\t")
        if len(fields) < len(header):
            raise format_error(
                path,
                f"line {number} has {len(fields)} fields where the header has {len(header)}: "
                "the file is truncated or damaged",
                "Copy or export the file again",
            )
        rows.append(_well_row(path, index, fields, number, detection))
    if not rows:
        raise format_error(path, "the table has a header but no wells", "Export the results again")
    return QpcrPlate(
        instrument_format=LIGHTCYCLER_480,
        run_id=f"{LIGHTCYCLER_480}:{experiment or path.name}",
        wells=wells_frame(path, rows),
        instrument="LightCycler 480",
        warnings=warnings,
    )


def _well_row(
    path: Path, index: dict[str, int | None], fields: list[str], line: int, detection: str
) -> dict[str, object]:
    def cell(name: str) -> str:
        column = index[name]
        return fields[column].strip() if column is not None else ""

    well = normalise_well(cell("pos"))
    if well is None:
        raise format_error(path, f"line {line} has no readable position ('{cell('pos')}')", "")
    standard = cell("standard")
    include = cell("include")
    return well_row(
        well=well,
        sample_name=cell("name"),
        target=detection,
        reporter=detection,
        task="UNKNOWN" if not standard or parse_number(standard) == 0 else "STANDARD",
        cq_cell=cell("cp"),
        no_cq_markers=NO_CQ,
        amp_status=cell("status"),
        standard_quantity=standard,
        instrument_quantity=cell("concentration"),
        omitted=bool(include) and not parse_bool(include),
    )
