"""Bio-Rad CFX Maestro / CFX Manager "Quantification Cq Results" CSV.

One row per well and fluorophore: `Well` (A01), `Fluor`, `Target`, `Content` (Unkn, Std, NTC,
Pos Ctrl, Neg Ctrl, NRT, with an optional replicate suffix such as Std-01), `Sample`, `Cq`
(`NaN` when none was found) and `Starting Quantity (SQ)`: the entered quantity for standards and
the quantity CFX computed for unknowns. Most exports start every line with an empty column; some
do not. The CSV has no run identity, instrument or fit statistics.

allotropy (0.1.134) reads this format but writes `N/A` as target when the Target column is empty
and keeps no content type beyond unknown/control; the conformance tests compare Cq values with it.

run_id: `cfx-maestro:<file name without the ' - Quantification Cq Results' suffix>`, because the
CSV itself carries nothing that identifies the run; CFX names its exports after the run file.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from qpcr.model import QpcrPlate
from qpcr.readers._common import (
    Probe,
    find_column,
    format_error,
    list_columns,
    normalise_well,
    read_text,
    unknown_tasks_warning,
    well_row,
    wells_frame,
)

CFX_MAESTRO = "cfx-maestro"
FORMATS = (CFX_MAESTRO,)

_REQUIRED = ("Well", "Fluor", "Cq")
NO_CQ = frozenset({"nan"})
"""What CFX Maestro / Manager write in the Cq column for no Cq."""
_EXPORT_SUFFIX = re.compile(r"\s*-\s*Quantification Cq Results.*$", re.IGNORECASE)


def sniff(found: Probe) -> str | None:
    """The first line is a comma-separated header with Well, Fluor and Cq (and Content/Sample)."""
    lines = found.first_lines
    if not lines or "," not in lines[0]:
        return None
    header = next(csv.reader([lines[0]]))
    has_required = all(find_column(header, name) is not None for name in _REQUIRED)
    has_layout = find_column(header, "Content", "Sample") is not None
    return CFX_MAESTRO if has_required and has_layout else None


def read(path: Path) -> QpcrPlate:
    records = list(csv.reader(io.StringIO(read_text(path))))
    records = [record for record in records if any(cell.strip() for cell in record)]
    if not records:
        raise format_error(
            path, "the CSV has no rows", "Export the Quantification Cq Results again"
        )
    header, body = records[0], records[1:]
    columns = {name: find_column(header, name) for name in _REQUIRED}
    missing = [name for name, index in columns.items() if index is None]
    if missing:
        raise format_error(
            path,
            f"the CSV has no {', '.join(missing)} column(s); its columns are: "
            + list_columns(header),
            "Export 'Quantification Cq Results' from CFX Maestro",
        )
    if not body:
        raise format_error(path, "the CSV has a header but no wells", "Export the results again")
    _check_complete(path, header, body)
    warnings: list[str] = ["the CSV carries no run identity; run_id is taken from the file name"]
    index = {
        name: find_column(header, *aliases)
        for name, aliases in {
            "well": ("Well",), "fluor": ("Fluor",), "target": ("Target",), "content": ("Content",),
            "sample": ("Sample",), "cq": ("Cq",),
            "quantity": ("Starting Quantity (SQ)", "SQ", "Starting Quantity"),
        }.items()
    }  # fmt: skip
    rows = [_well_row(path, index, record, number) for number, record in enumerate(body, 2)]
    without_target = sum(1 for target in _column(header, body, "Target") if not target.strip())
    if without_target:
        warnings.append(
            f"{without_target} row(s) have no Target name; the fluorophore names the target "
            "(name targets in the CFX plate setup)"
        )
    warnings += unknown_tasks_warning(_column(header, body, "Content"))
    return QpcrPlate(
        instrument_format=CFX_MAESTRO,
        run_id=f"{CFX_MAESTRO}:{_run_name(path)}",
        wells=wells_frame(path, rows),
        warnings=warnings,
    )


def _run_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix) if name.lower().endswith(suffix) else name
    return _EXPORT_SUFFIX.sub("", name) or name


def _check_complete(path: Path, header: list[str], body: list[list[str]]) -> None:
    """CFX writes every field on every line, so a short line means the copy was cut off."""
    for number, record in enumerate(body, start=2):
        if len(record) != len(header):
            raise format_error(
                path,
                f"line {number} has {len(record)} fields where the header has {len(header)}: "
                "the file is truncated or damaged",
                "Copy or export the file again",
            )


def _column(header: list[str], body: list[list[str]], name: str) -> list[str]:
    index = find_column(header, name)
    return [] if index is None else [record[index] for record in body]


def _well_row(
    path: Path, index: dict[str, int | None], record: list[str], line: int
) -> dict[str, object]:
    def cell(name: str) -> str:
        column = index[name]
        return record[column].strip() if column is not None else ""

    well = normalise_well(cell("well"))
    if well is None:
        raise format_error(path, f"line {line} has no readable well ('{cell('well')}')", "")
    fluor, target = cell("fluor"), cell("target")
    quantity = cell("quantity")
    return well_row(
        well=well,
        sample_name=cell("sample"),
        target=target or fluor,
        reporter=fluor,
        task=cell("content"),
        cq_cell=cell("cq"),
        no_cq_markers=NO_CQ,
        standard_quantity=quantity,
        instrument_quantity=quantity,
    )
