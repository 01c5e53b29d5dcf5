"""Write demo qPCR exports that look like what the instruments' software writes.

`write_quantstudio_text` writes a QuantStudio 7 Flex (software 1.x) text export and
`write_cfx_csv` a Bio-Rad CFX Maestro "Quantification Cq Results" CSV, 96- or 384-well (chosen
from the wells used). `qpcr.readers.read_plate` reads them back to the same wells, at the
precision the instruments write: QuantStudio rounds Cq, quantities and fit statistics to three
decimals, CFX writes full precision.

What each format can express limits what round-trips:
- tasks: both formats have UNKNOWN, STANDARD and NTC; other tasks raise ValueError;
- amplification curves (Delta Rn per cycle) are written by QuantStudio only, to three decimals;
  the CFX Cq CSV has none;
- `amp_status` is the format's own: `Undetermined` (QuantStudio) or `NaN` (CFX) without a Cq,
  blank with one;
- CFX has no exclusion column: omitted wells are left out of the CSV; QuantStudio writes `Omit`;
- run identity: QuantStudio keeps the run in its header. A `run_id` of the reader's form
  `quantstudio-text:<file>.eds@<ISO time>` round-trips (see `quantstudio_run_id`); any other
  run_id becomes the experiment name. The CFX reader takes the run from the file name.
- `instrument` (`<model>` or `<model> (SN <serial>)`) round-trips; `instrument_curves` are written
  in QuantStudio's per-row Y-Intercept / R(superscript 2) / Slope / Efficiency columns; the CFX
  Cq CSV has no such columns.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qpcr import ZONE_OFFSETS, QpcrPlate, normalise_well
from qpcr.readers.quantstudio_text import QUANTSTUDIO_TEXT

_QS_TASKS = {"UNKNOWN": "UNKNOWN", "STANDARD": "STANDARD", "NTC": "NTC"}
_CFX_CONTENT = {"UNKNOWN": "Unkn", "STANDARD": "Std", "NTC": "NTC"}
_DEFAULT_MODEL = "QuantStudio(TM) 7 Flex System"

_QS_SETUP_COLUMNS = (
    "Well", "Well Position", "Sample Name", "Sample Color", "Biogroup Name", "Biogroup Color",
    "Target Name", "Target Color", "Task", "Reporter", "Quencher", "Quantity", "Comments",
)  # fmt: skip
_QS_RESULT_COLUMNS = (
    "Well", "Well Position", "Omit", "Sample Name", "Target Name", "Task", "Reporter", "Quencher",
    "CT", "Ct Mean", "Ct SD", "Quantity", "Quantity Mean", "Quantity SD",
    "Automatic Ct Threshold", "Ct Threshold", "Automatic Baseline", "Baseline Start",
    "Baseline End", "Comments", "Y-Intercept", "R(superscript 2)", "Slope", "Efficiency",
)  # fmt: skip
_CFX_COLUMNS = (
    "", "Well", "Fluor", "Target", "Content", "Sample", "Biological Set Name", "Cq", "Cq Mean",
    "Cq Std. Dev", "Starting Quantity (SQ)", "Log Starting Quantity", "SQ Mean", "SQ Std. Dev",
    "Set Point", "Well Note",
)  # fmt: skip


Row = Mapping[str, Any]  # one well as a dict record


def write_quantstudio_text(path: Path, plate: QpcrPlate) -> None:
    """A QuantStudio 7 Flex text export of `plate`: header, [Sample Setup], [Amplification Data]
    (when the plate has curves) and [Results]."""
    wells = _sorted_wells(plate.wells)
    _check_tasks(wells, _QS_TASKS, "QuantStudio")
    columns = _plate_columns(wells)
    experiment_file, run_end = _quantstudio_run(plate)
    model, serial = _instrument_parts(plate.instrument)
    header = {
        "Block Type": "384-Well Block" if columns == 24 else "96-Well Block (0.2mL)",
        "Calibration Background is expired ": "No",
        "Calibration Background performed on": "01-05-2026",
        "Chemistry": "TAQMAN",
        "Date Created": _vendor_time(run_end),
        "Experiment Barcode": "NA",
        "Experiment Comment": "NA",
        "Experiment File Name": "D:\\Users\\qPCR\\Documents\\CAR-T\\" + experiment_file,
        "Experiment Name": experiment_file.removesuffix(".eds"),
        "Experiment Run End Time": _vendor_time(run_end),
        "Experiment Type": "Standard Curve",
        "Instrument Name": serial,
        "Instrument Serial Number": serial,
        "Instrument Type": model,
        "Passive Reference": "ROX",
        "Quantification Cycle Method": "Ct",
        "Signal Smoothing On": "true",
        "Stage/ Cycle where Analysis is performed": "Stage 2, Step 2",
        "User Name": "NA",
    }
    rows = wells.to_dict("records")
    groups = _replicate_stats(wells, decimals=3)
    lines = [f"* {key} = {value}" for key, value in header.items() if value]
    lines += ["", "[Sample Setup]", "\t".join(_QS_SETUP_COLUMNS)]
    lines += ["\t".join(_setup_fields(row, columns)) for row in rows]
    lines += _amplification_lines(plate.amplification, columns)
    lines += ["[Results]", "\t".join(_QS_RESULT_COLUMNS)]
    lines += [
        "\t".join(_result_fields(row, columns, groups, plate.instrument_curves)) for row in rows
    ]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\r\n")


def write_cfx_csv(path: Path, plate: QpcrPlate) -> None:
    """A CFX Maestro 'Quantification Cq Results' CSV of `plate` (leading empty column, NaN)."""
    wells = _sorted_wells(plate.wells[~plate.wells["omitted"]])
    _check_tasks(wells, _CFX_CONTENT, "CFX Maestro")
    wells = wells.assign(fluor=[r or "FAM" for r in wells["reporter"]])
    wells = wells.sort_values(["fluor", "_row", "_column"], kind="stable")
    groups = _replicate_stats(wells, decimals=None)
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(_CFX_COLUMNS)
        for row in wells.to_dict("records"):
            writer.writerow(_cfx_fields(row, groups))


# --- plate layout -------------------------------------------------------------------------------


def _sorted_wells(wells: pd.DataFrame) -> pd.DataFrame:
    positions = [_row_column(str(w)) for w in wells["well"]]
    return wells.assign(
        _row=[p[0] for p in positions], _column=[p[1] for p in positions]
    ).sort_values(["_row", "_column"], kind="stable")


def _row_column(well: str) -> tuple[int, int]:
    """'B3' -> (1, 2): zero-based row and column."""
    name = normalise_well(well)
    match = re.fullmatch(r"([A-Z])(\d+)", name or "")
    if match is None:
        raise ValueError(f"well {well!r} is not a 96/384-well plate position like A1")
    return ord(match.group(1)) - 65, int(match.group(2)) - 1


QS_PASSIVE_BASELINE_RN = 0.6
"""Rn before amplification: the written Rn is this plus Delta Rn."""


def _amplification_lines(curves: pd.DataFrame, columns: int) -> list[str]:
    """The [Amplification Data] section, wells numbered as in [Results]; none without curves."""
    if curves.empty:
        return []
    lines = ["[Amplification Data]", "Well\tCycle\tTarget Name\tRn\tDelta Rn"]
    numbers = {w: _well_number(dict(zip(("_row", "_column"), _row_column(w), strict=True)), columns)
               for w in curves["well"].unique()}  # fmt: skip
    for row in curves.itertuples(index=False):
        lines.append(f"{numbers[row.well]}\t{row.cycle}\t{row.target}\t"
                     f"{row.fluorescence + QS_PASSIVE_BASELINE_RN:.3f}\t{row.fluorescence:.3f}")  # fmt: skip
    return lines


def _plate_columns(wells: pd.DataFrame) -> int:
    fits_96 = wells["_row"].max() < 8 and wells["_column"].max() < 12
    return 12 if fits_96 else 24


def _well_number(row: Row, columns: int) -> int:
    return int(row["_row"]) * columns + int(row["_column"]) + 1


def _check_tasks(wells: pd.DataFrame, known: Mapping[str, str], fmt: str) -> None:
    unsupported = sorted(set(wells["task"]) - known.keys())
    if unsupported:
        raise ValueError(f"{fmt} exports have no task for {', '.join(unsupported)}")


def _quantity(row: Row) -> float:
    """What the instrument shows as Quantity: the entered one for standards, else computed."""
    key = "standard_quantity" if row["task"] == "STANDARD" else "instrument_quantity"
    return float(row[key])


Stats = dict[tuple[str, str, str], tuple[float, float, float, float]]


def _replicate_stats(wells: pd.DataFrame, decimals: int | None) -> Stats:
    """Per replicate group (sample, target, task): Cq mean and SD, quantity mean and SD.

    The software summarises the replicates it kept: omitted wells and wells without Cq are left
    out; values are rounded first when the format writes rounded values.
    """
    stats: Stats = {}
    for (sample, target, task), group in wells.groupby(["sample_name", "target", "task"]):
        kept = group[~group["omitted"]]
        cq = kept["cq"].dropna()
        quantity = pd.Series([_quantity(r) for r in kept.to_dict("records")], dtype=float)
        quantity = quantity.dropna()
        if decimals is not None:
            cq, quantity = cq.round(decimals), quantity.round(decimals)
        stats[(str(sample), str(target), str(task))] = (
            _mean(cq), _sd(cq), _mean(quantity), _sd(quantity),
        )  # fmt: skip
    return stats


def _group(row: Row, stats: Stats) -> tuple[float, float, float, float]:
    return stats[(str(row["sample_name"]), str(row["target"]), str(row["task"]))]


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _sd(values: pd.Series) -> float:
    if len(values) > 1:
        return float(values.std(ddof=1))
    return 0.0 if len(values) else math.nan


# --- QuantStudio fields ---------------------------------------------------------------------------


def _quantstudio_run(plate: QpcrPlate) -> tuple[str, datetime | None]:
    """(experiment file name, run end) from a run_id of the reader's form, else from the plate."""
    pattern = rf"{QUANTSTUDIO_TEXT}:(.+?)(?:@(\d{{4}}-\d\d-\d\dT[^@]+))?"
    match = re.fullmatch(pattern, plate.run_id)
    if match:
        moment = datetime.fromisoformat(match.group(2)) if match.group(2) else None
        return match.group(1), moment
    name = re.sub(r"[^A-Za-z0-9._ -]+", "_", plate.run_id).strip() or "run"
    return f"{name}.eds", plate.run_started


def _instrument_parts(instrument: str) -> tuple[str, str]:
    match = re.fullmatch(r"(.*?) \(SN (.+)\)", instrument.strip())
    if match:
        return match.group(1), match.group(2)
    return (instrument.strip() or _DEFAULT_MODEL), ""  # no serial: the lines are left out


def _vendor_time(moment: datetime | None) -> str:
    """'2026-03-12 04:05:06 PM EDT', as QuantStudio writes local times."""
    if moment is None:
        return ""
    text = moment.strftime("%Y-%m-%d %I:%M:%S %p")
    offset = moment.utcoffset()
    if offset is None:
        return text
    hours = offset.total_seconds() / 3600
    zone = next((name for name, h in ZONE_OFFSETS.items() if h == hours), None)
    if zone is None:
        raise ValueError(f"no time-zone abbreviation for UTC offset {hours:+g} h")
    return f"{text} {zone}"


def _setup_fields(row: Row, columns: int) -> list[str]:
    quantity = _qs_number(_quantity(row)) if row["task"] == "STANDARD" else ""
    return [
        str(_well_number(row, columns)), str(row["well"]), str(row["sample_name"]),
        '"RGB(176,23,31)"', "", "", str(row["target"]), '"RGB(176,23,31)"',
        _QS_TASKS[str(row["task"])], str(row["reporter"] or "FAM"), "NFQ-MGB", quantity, "",
    ]  # fmt: skip


def _result_fields(
    row: Row, columns: int, stats: Stats, curves: Mapping[str, Mapping[str, float]]
) -> list[str]:
    cq_mean, cq_sd, quantity_mean, quantity_sd = _group(row, stats)
    curve = curves.get(str(row["target"]), {})
    cq = float(row["cq"])
    return [
        str(_well_number(row, columns)), str(row["well"]), "true" if row["omitted"] else "false",
        str(row["sample_name"]), str(row["target"]), _QS_TASKS[str(row["task"])],
        str(row["reporter"] or "FAM"), "NFQ-MGB",
        "Undetermined" if math.isnan(cq) else f"{cq:.3f}",
        _qs_number(cq_mean), _qs_number(cq_sd),
        _qs_number(_quantity(row)), _qs_number(quantity_mean), _qs_number(quantity_sd),
        "true", "0.200", "true", "3", "15", "",
        _qs_number(curve.get("intercept", math.nan)), _qs_number(curve.get("r_squared", math.nan)),
        _qs_number(curve.get("slope", math.nan)), _qs_number(curve.get("efficiency_pct", math.nan)),
    ]  # fmt: skip


def _qs_number(value: float) -> str:
    """QuantStudio's number format: three decimals with thousands separators, blank if none."""
    return "" if math.isnan(value) else f"{value:,.3f}"


# --- CFX fields ------------------------------------------------------------------------------------


def _cfx_fields(row: Row, stats: Stats) -> list[str]:
    cq_mean, cq_sd, sq_mean, sq_sd = _group(row, stats)
    sq = _quantity(row)
    return [
        "", _padded(str(row["well"])), str(row["fluor"]), str(row["target"]),
        _CFX_CONTENT[str(row["task"])], str(row["sample_name"]), "",
        _cfx_number(float(row["cq"])), _cfx_number(cq_mean), _cfx_number(cq_sd),
        _cfx_number(sq), _cfx_number(math.log10(sq) if sq > 0 else math.nan),
        _cfx_number(sq_mean), _cfx_number(sq_sd), "60", "",
    ]  # fmt: skip


def _padded(well: str) -> str:
    """CFX names wells with two-digit columns: A01."""
    row, column = _row_column(well)
    return f"{chr(65 + row)}{column + 1:02d}"


def _cfx_number(value: float) -> str:
    """CFX writes full precision and `NaN` for a missing value."""
    return "NaN" if math.isnan(value) else repr(float(value))
