"""The demo writers' files read back to the plate they were written from."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.demo.qpcr_files import write_cfx_csv, write_quantstudio_text
from qpcr import normalise_well
from qpcr.model import WELL_COLUMNS, QpcrPlate
from qpcr.readers import read_plate, sniff
from qpcr.readers.quantstudio_text import quantstudio_run_id

CURVES = {
    "CAR": {"slope": -3.342, "intercept": 38.125, "r_squared": 0.997, "efficiency_pct": 99.17}
}


def demo_wells(rows: int, columns: int, *, cq_decimals: int | None) -> pd.DataFrame:
    """Standards in the first column, NTCs in the second, unknowns elsewhere; CAR + RNaseP."""
    random = np.random.default_rng(7)
    records = []
    for row in range(rows):
        for column in range(columns):
            name = f"{chr(65 + row)}{column + 1}"
            for target, reporter in (("CAR", "FAM"), ("RNaseP", "VIC")):
                records.append(_record(name, row, column, target, reporter, random, cq_decimals))
    return pd.DataFrame(records, columns=list(WELL_COLUMNS))


def _record(name, row, column, target, reporter, random, cq_decimals):
    task = "STANDARD" if column == 0 else "NTC" if column == 1 else "UNKNOWN"
    quantity = 10.0 ** (6 - row % 6) if task == "STANDARD" else math.nan
    cq = math.nan if task == "NTC" or (row, column) == (2, 5) else float(random.uniform(15, 36))
    if cq_decimals is not None and not math.isnan(cq):
        cq = round(cq, cq_decimals)
    computed = round(float(random.uniform(10, 90_000)), 3) if task == "UNKNOWN" else math.nan
    return {
        "well": name, "sample_name": f"P00{row % 4 + 1}-D{column}" if task == "UNKNOWN" else
        ("NTC" if task == "NTC" else f"STD {quantity:.0e}"),
        "target": target, "reporter": reporter, "task": task, "cq": cq, "amp_status": "",
        "amplified": not math.isnan(cq), "standard_quantity": quantity,
        "instrument_quantity": computed, "dna_input_ng": math.nan,
        "omitted": (row, column) == (3, 7),
    }  # fmt: skip


def with_status(wells: pd.DataFrame, word: str) -> pd.DataFrame:
    return wells.assign(amp_status=np.where(wells["amplified"], "", word))


def assert_same_wells(read: pd.DataFrame, expected: pd.DataFrame) -> None:
    key = ["well", "target"]
    left = read.sort_values(key).reset_index(drop=True)
    right = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_exact=True)


@pytest.mark.parametrize("rows,columns", [(8, 12), (16, 24)], ids=["96", "384"])
def test_quantstudio_text_round_trip(tmp_path: Path, rows, columns):
    end = datetime(2026, 3, 12, 16, 5, 6, tzinfo=timezone(timedelta(hours=-4)))
    wells = demo_wells(rows, columns, cq_decimals=3)
    plate = QpcrPlate(
        instrument_format="quantstudio-text",
        run_id=f"quantstudio-text:CAR-T qPCR 2026-03-12.eds@{end.isoformat()}",
        wells=wells,
        instrument="QuantStudio(TM) 7 Flex System (SN 278880031)",
        instrument_curves=CURVES,
    )
    path = tmp_path / "qs.txt"
    write_quantstudio_text(path, plate)
    text = path.read_text(encoding="utf-8")
    assert ("384-Well Block" in text) == (rows == 16)
    assert "\tUndetermined\t" in text and "1,000,000.000" in text
    assert sniff(path) == "quantstudio-text"
    back = read_plate(path)
    assert back.run_id == plate.run_id
    assert back.run_id == quantstudio_run_id(
        "D:\\x\\CAR-T qPCR 2026-03-12.eds", "2026-03-12 04:05:06 PM EDT"
    )
    assert back.instrument == plate.instrument
    assert back.instrument_curves == CURVES
    assert_same_wells(back.wells, with_status(wells, "Undetermined"))


@pytest.mark.parametrize("rows,columns", [(8, 12), (16, 24)], ids=["96", "384"])
def test_cfx_csv_round_trip(tmp_path: Path, rows, columns):
    wells = demo_wells(rows, columns, cq_decimals=None)
    plate = QpcrPlate(instrument_format="cfx-maestro", run_id="cfx-maestro:x", wells=wells)
    path = tmp_path / "CAR-T 2026-03-12 -  Quantification Cq Results.csv"
    write_cfx_csv(path, plate)
    assert path.read_text().startswith(",Well,Fluor,Target,Content,Sample,")
    back = read_plate(path)
    assert back.run_id == "cfx-maestro:CAR-T 2026-03-12"
    kept = wells[~wells["omitted"]]
    assert len(back.wells) == len(kept)
    assert_same_wells(back.wells, with_status(kept, "NaN"))


def test_writers_refuse_tasks_the_format_lacks(tmp_path: Path):
    wells = demo_wells(2, 3, cq_decimals=3)
    wells.loc[0, "task"] = "NAC"
    plate = QpcrPlate(instrument_format="x", run_id="x", wells=wells)
    with pytest.raises(ValueError, match="no task for NAC"):
        write_quantstudio_text(tmp_path / "a.txt", plate)
    with pytest.raises(ValueError, match="no task for NAC"):
        write_cfx_csv(tmp_path / "a.csv", plate)


def allotropy_cq(asm: dict) -> dict[tuple[str, str], float]:
    """(well, target) -> Cq from allotropy's Allotrope Simple Model output (NaN where none)."""
    found = {}
    for document in asm["qpcr aggregate document"]["qpcr document"]:
        for measurement in document["measurement aggregate document"]["measurement document"]:
            position = measurement["sample document"]["well location identifier"]
            processed = measurement["processed data aggregate document"]["processed data document"]
            cq = processed[0].get("cycle threshold result (qPCR)") or {}
            well = normalise_well(position) or position
            value = cq.get("value")
            found[(well, measurement["target DNA description"])] = (
                math.nan if value is None else float(value)
            )
    return found


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["quantstudio", "cfx"])
def test_allotropy_reads_the_demo_files_to_the_same_cq(tmp_path: Path, fmt):
    """An independent parser of the vendor formats reads the demo files as this reader does."""
    from allotropy.parser_factory import Vendor
    from allotropy.to_allotrope import allotrope_from_file

    writer, vendor, name = {
        "quantstudio": (write_quantstudio_text, Vendor.APPBIO_QUANTSTUDIO, "demo.txt"),
        "cfx": (write_cfx_csv, Vendor.CFXMAESTRO, "demo.csv"),
    }[fmt]
    plate = QpcrPlate(
        instrument_format="quantstudio-text",
        run_id="quantstudio-text:demo.eds@2026-03-12T16:05:06-04:00",
        wells=demo_wells(8, 12, cq_decimals=3),
        instrument="QuantStudio(TM) 7 Flex System (SN 278880031)",
        instrument_curves=CURVES,
    )
    path = tmp_path / name
    writer(path, plate)
    ours = {(w, t): c for w, t, c in read_plate(path).wells[["well", "target", "cq"]].values}
    theirs = allotropy_cq(allotrope_from_file(str(path), vendor))
    assert theirs.keys() == ours.keys()
    for key, value in ours.items():
        assert value == pytest.approx(theirs[key], nan_ok=True), key
