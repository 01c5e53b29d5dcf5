"""Applied Biosystems text exports: QuantStudio / ViiA 7 (software 1.x) and 7500 / StepOne.

Layout: a `* key = value` header, then sections (`[Sample Setup]`, `[Raw Data]`,
`[Amplification Data]`, `[Results]`, ...), each a tab-separated table. Only `[Results]` holds
Cq values; `[Sample Setup]` is used to notice a truncated export; `[Amplification Data]`, where
the export has it, gives each well's Delta Rn (Rn where Delta Rn is missing) per cycle. Numbers carry thousands
separators (`1,250.000`), a missing Cq is `Undetermined`, and the per-target standard-curve fit
(Y-Intercept, R(superscript 2), Slope, Efficiency) is repeated on every row. The 7500 and StepOne
software spell the Cq column `Cт` with a Cyrillic т, and name wells `A1` in the `Well` column.

allotropy (0.1.134) reads QuantStudio text too, but it is not used here: its import takes ~6 s and
a 96-well file 0.4-1.1 s (a 384-well file would break the 2 s budget), it drops the
`Undetermined` wording and reports NTC and STANDARD wells alike as "control sample role". The
conformance tests compare this reader's Cq values with allotropy's.

run_id: `<format>:<experiment file name or barcode>@<run end time>`; a re-export of the same run
from the same .eds file keeps both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from qpcr.model import QpcrPlate, no_amplification
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
    parse_number,
    parse_vendor_time,
    read_text,
    run_id,
    unknown_tasks_warning,
    well_from_index,
    well_row,
    wells_frame,
)

QUANTSTUDIO_TEXT = "quantstudio-text"
ABI_7500 = "abi-7500"
FORMATS = (QUANTSTUDIO_TEXT, ABI_7500)

_HEADER_LINE = re.compile(r"^\*\s*([^=]+?)\s*=\s?(.*)$")
_SECTION_LINE = re.compile(r"^\[([^\]]+)\]\s*$")
_IDENTIFYING_KEYS = {"instrument type", "experiment run end time", "experiment file name"}
_NOT_QUANTIFICATION = ("genotyping", "melt", "high resolution", "hrm")
_RELATIVE = ("comparative", "\u03b4\u03b4")  # "Comparative Cт (ΔΔCт)", lower-cased
NO_CQ = frozenset({"undetermined"})
"""What the QuantStudio, ViiA 7, 7500 and StepOne software write in the Cт column for no Cq."""


@dataclass
class _Export:
    header: dict[str, str]
    sections: dict[str, list[str]]


def sniff(found: Probe) -> str | None:
    """The format when the head has the `* key = value` header and a `[section]` line."""
    header: dict[str, str] = {}
    for line in found.first_lines:
        if match := _HEADER_LINE.match(line):
            header[column_key(match.group(1))] = match.group(2).strip()
        elif _SECTION_LINE.match(line) or (line.strip() and header):
            break
    if not _IDENTIFYING_KEYS & header.keys():
        return None
    if found.text is None or not re.search(r"^\[[^\]]+\]\s*$", found.text, re.MULTILINE):
        return None
    return _format_for(header.get("instrument type", ""))


def _format_for(instrument_type: str) -> str:
    model = instrument_type.lower()
    return ABI_7500 if "7500" in model or "stepone" in model else QUANTSTUDIO_TEXT


def read(path: Path) -> QpcrPlate:
    export = _split(read_text(path))
    fmt = _format_for(export.header.get("instrument type", ""))
    _refuse_non_quantification(path, export)
    results = export.sections.get("results")
    if not results:
        raise format_error(
            path,
            "no [Results] section with rows: the export is truncated or was saved without results",
            "Export again from the instrument software with the Results table ticked",
        )
    table = _Table.parse(results)
    warnings: list[str] = []
    rows = table.well_rows(path, _plate_columns(export.header), warnings)
    wells = wells_frame(path, rows)
    _check_setup_complete(path, export, wells, warnings)
    experiment_type = export.header.get("experiment type", "")
    if "presence" in experiment_type.lower():
        warnings.append(
            f"experiment type '{experiment_type}': Cq values are read, the calls are not"
        )
    warnings += unknown_tasks_warning(table.raw_tasks())
    amplification, measure = _amplification(path, export, _plate_columns(export.header))
    return QpcrPlate(
        instrument_format=fmt,
        run_id=run_id(fmt, _identity(export.header, path), _run_end(export.header)),
        wells=wells,
        instrument=instrument_label(
            export.header.get("instrument type", ""),
            export.header.get("instrument serial number")
            or export.header.get("instrument name", ""),
        ),
        run_started=None,  # these exports record only the run end time
        instrument_curves=table.curves(warnings),
        warnings=warnings,
        amplification=amplification,
        amplification_measure=measure,
    )


def _amplification(path: Path, export: _Export, columns: int) -> tuple[pd.DataFrame, str]:
    """The `[Amplification Data]` section as (AMPLIFICATION_COLUMNS frame, measure name); an
    empty frame and "" when the export was saved without it."""
    lines = export.sections.get("amplification data")
    if not lines or len(lines) < 2:
        return no_amplification(), ""
    table = _Table.parse(lines)
    cycle, target = table.column("Cycle"), table.column("Target Name", "Target", "Detector")
    delta, rn = table.column("Delta Rn", "dRn"), table.column("Rn")
    signal = delta if delta is not None else rn
    if cycle is None or target is None or signal is None:
        raise format_error(
            path,
            "[Amplification Data] lacks a Cycle, Target Name or Rn / Delta Rn column; its "
            f"columns are: {list_columns(table.header)}",
            "Export again with the amplification data complete, or without it",
        )
    names = {"position": table.column("Well Position"), "well": table.column("Well")}
    rows = []
    for number, row in enumerate(table.rows):
        value, cycle_number = (
            parse_number(table.cell(row, signal)),
            parse_number(table.cell(row, cycle)),
        )
        if value is None or cycle_number is None:
            raise format_error(
                path,
                f"[Amplification Data] row {number + 1} has no number in its cycle or "
                f"fluorescence cell ({table.cell(row, cycle)!r}, {table.cell(row, signal)!r})",
                "Copy or export the file again",
            )
        rows.append({
            "well": table._position(path, row, names, columns),
            "target": table.cell(row, target), "cycle": int(cycle_number), "fluorescence": value,
        })  # fmt: skip
    measure = "Delta Rn" if delta is not None else "Rn"
    return pd.DataFrame(rows, columns=list(no_amplification().columns)), measure


def quantstudio_run_id(experiment_file: str, run_end_text: str, fmt: str = QUANTSTUDIO_TEXT) -> str:
    """The run_id this reader gives a file with these header values (for writers and tests)."""
    return run_id(fmt, file_basename(experiment_file), parse_vendor_time(run_end_text))


def _split(text: str) -> _Export:
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if section := _SECTION_LINE.match(line):
            current = sections.setdefault(column_key(section.group(1)), [])
        elif current is not None:
            if line.strip():
                current.append(line)
        elif match := _HEADER_LINE.match(line):
            header[column_key(match.group(1))] = match.group(2).strip()
    return _Export(header=header, sections=sections)


def _refuse_non_quantification(path: Path, export: _Export) -> None:
    experiment_type = export.header.get("experiment type", "")
    if any(word in experiment_type.lower() for word in _RELATIVE):
        raise format_error(
            path,
            f"a relative-quantification run (Experiment Type = {experiment_type}): its RQ and "
            "ΔCт values compare samples with each other and carry no copy numbers",
            RELATIVE_QUANTIFICATION_ADVICE,
        )
    if any(word in experiment_type.lower() for word in _NOT_QUANTIFICATION):
        raise format_error(
            path,
            f"not a quantification run (Experiment Type = {experiment_type}); "
            "it has no Cq values to quantify CAR copies from",
            "Export the Standard Curve (quantification) experiment instead",
        )


def _identity(header: dict[str, str], path: Path) -> str:
    for key in ("experiment barcode", "experiment file name", "experiment name"):
        value = header.get(key, "").strip()
        if value and value.upper() != "NA":
            return file_basename(value)
    return path.name


def _run_end(header: dict[str, str]) -> datetime | None:
    return parse_vendor_time(header.get("experiment run end time", ""))


def _plate_columns(header: dict[str, str]) -> int:
    """Columns of the block, to turn a bare well number into a position."""
    block = header.get("block type", "")
    if "384" in block:
        return 24
    if "48" in block:
        return 8
    return 12


@dataclass
class _Table:
    """One tab-separated section: its header and rows (trailing empty fields may be missing)."""

    header: list[str]
    rows: list[list[str]]

    @classmethod
    def parse(cls, lines: list[str]) -> _Table:
        return cls(header=lines[0].split("\t"), rows=[line.split("\t") for line in lines[1:]])

    def column(self, *names: str) -> int | None:
        return find_column(self.header, *names)

    def cell(self, row: list[str], index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    def raw_tasks(self) -> list[str]:
        task = self.column("Task")
        return [self.cell(row, task) for row in self.rows]

    def well_rows(self, path: Path, columns: int, warnings: list[str]) -> list[dict[str, object]]:
        cq = self.column(*CQ_COLUMN_NAMES)
        if cq is None:
            raise format_error(
                path,
                "the [Results] table has no Cq column (expected one of CT, Cт, Cq, CRT); "
                f"its columns are: {list_columns(self.header)}",
                "Export the results with the Cт/Cq column included",
            )
        names = {
            "well": self.column("Well"),
            "position": self.column("Well Position"),
            "omit": self.column("Omit"),
            "sample": self.column("Sample Name", "Sample"),
            "target": self.column("Target Name", "Target", "Detector"),
            "task": self.column("Task"),
            "reporter": self.column("Reporter"),
            "quantity": self.column("Quantity", "Qty"),
            "amp_status": self.column("Amp Status"),
        }
        rows = []
        for number, row in enumerate(self.rows):
            if len(row) <= cq:
                raise format_error(
                    path,
                    f"[Results] row {number + 1} stops before the Cq column "
                    f"({len(row)} of {len(self.header)} fields): the export seems truncated",
                    "Copy or export the file again",
                )
            rows.append(self._well_row(path, row, cq, names, columns))
        numbered = names["position"] is None and names["well"] is not None
        if numbered and any(normalise_well(self.cell(r, names["well"])) is None for r in self.rows):
            warnings.append(
                f"wells are numbered without positions; positions assume {columns} columns"
            )
        return rows

    def _well_row(
        self, path: Path, row: list[str], cq: int, names: dict[str, int | None], columns: int
    ) -> dict[str, object]:
        well = self._position(path, row, names, columns)
        quantity = self.cell(row, names["quantity"])
        amp_status = None if names["amp_status"] is None else self.cell(row, names["amp_status"])
        return well_row(
            well=well,
            sample_name=self.cell(row, names["sample"]),
            target=self.cell(row, names["target"]),
            reporter=self.cell(row, names["reporter"]),
            task=self.cell(row, names["task"]),
            cq_cell=self.cell(row, cq),
            no_cq_markers=NO_CQ,
            amp_status=amp_status,
            standard_quantity=quantity,
            instrument_quantity=quantity,
            omitted=parse_bool(self.cell(row, names["omit"])),
        )

    def _position(
        self, path: Path, row: list[str], names: dict[str, int | None], columns: int
    ) -> str:
        for source in (names["position"], names["well"]):
            position = normalise_well(self.cell(row, source))
            if position:
                return position
        number = self.cell(row, names["well"])
        try:
            return well_from_index(int(float(number)), columns)
        except ValueError:
            raise format_error(
                path, f"[Results] has a row with no readable well ('{number}')", ""
            ) from None

    def curves(self, warnings: list[str]) -> dict[str, dict[str, float]]:
        """Per target, the fit statistics the software repeated on each row."""
        target = self.column("Target Name", "Target", "Detector")
        indices = (
            self.column("Slope"),
            self.column("Y-Intercept", "Intercept"),
            self.column("R(superscript 2)", "R2", "R²", "R^2", "Rsquared"),
            self.column("Efficiency", "Efficiency %", "Amp Efficiency"),
        )
        if target is None or all(index is None for index in indices):
            return {}
        curves: dict[str, dict[str, float]] = {}
        disagreeing: list[str] = []
        for row in self.rows:
            stats = curve_stats(*(self.cell(row, index) for index in indices))
            if not stats:
                continue
            name = self.cell(row, target)
            if curves.setdefault(name, stats) != stats and name not in disagreeing:
                disagreeing.append(name)
        warnings += [
            f"target '{name}': rows disagree on the standard-curve statistics; the first is kept"
            for name in disagreeing
        ]
        return curves


def _check_setup_complete(
    path: Path, export: _Export, wells: pd.DataFrame, warnings: list[str]
) -> None:
    """Compare the wells set up in [Sample Setup] with the [Results] rows.

    A copy cut off mid-[Results] keeps its header and earlier rows, so the set-up wells missing
    from the end of the plate are how a truncated export shows. Wells missing in the middle (an
    analyst removed them from the results) are only a warning.
    """
    setup = export.sections.get("sample setup")
    if not setup:
        return
    table = _Table.parse(setup)
    position, well = table.column("Well Position"), table.column("Well")
    target = table.column("Target Name", "Target", "Detector")
    if target is None:
        return
    read = set(zip(wells["well"], wells["target"], strict=True))
    expected = []
    for row in table.rows:
        name = table.cell(row, target)
        spot = normalise_well(table.cell(row, position)) or normalise_well(table.cell(row, well))
        if name and spot:
            expected.append((spot, name))
    missing = [key for key in expected if key not in read]
    if not missing:
        return
    listed = ", ".join(f"{spot}/{name}" for spot, name in missing[:5])
    if expected[-len(missing) :] == missing:
        raise format_error(
            path,
            f"the last {len(missing)} well(s) set up in [Sample Setup] have no row in [Results] "
            f"({listed}): the export seems truncated",
            "Copy or export the file again",
        )
    warnings.append(f"{len(missing)} well(s) set up in [Sample Setup] have no result: {listed}")
