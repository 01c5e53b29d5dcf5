"""No reader turns a non-finite, negative or unreadable MFI or concentration into a stored number.

Each property writes one impossible value into a well of a real-derived or vendor-shaped export
and reads it back: the plate is refused (`CbaFormatError`), or the value is stored as no value
(NaN MFI, a censored concentration) - never as a finite measurement.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cba import analyse_plate, read_plate
from cba.errors import CbaAnalysisError, CbaFormatError
from cba.model import parse_reported_value

SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=',;\t"'
    ),
    max_size=12,
)


def _is_a_valid_measurement(text: str) -> bool:
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        return False
    return math.isfinite(number) and number >= 0


NEGATIVE_OR_INFINITE = st.one_of(
    st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf]),
).flatmap(lambda x: st.sampled_from([repr(x), f"{x:.3e}", f"{x:f}", str(x).upper()]))
IMPOSSIBLE = st.one_of(
    NEGATIVE_OR_INFINITE,
    st.sampled_from(["NaN", "nan", "Infinity", "1e400", "-0.5", "high", "12,5", "#DIV/0!", "∞"]),
    SAFE_TEXT.filter(lambda t: not _is_a_valid_measurement(t)),
)
"""Cell texts that are no MFI or concentration of 0 or more."""

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _stored_mfi(path: Path, well: str, analyte: str) -> float | None:
    """The MFI read for one well and analyte, or None when the plate is refused."""
    try:
        plate = read_plate(path)
    except CbaFormatError:
        return None
    wells = plate.wells
    chosen = wells[(wells["well"] == well) & (wells["analyte_as_exported"] == analyte)]
    return float(chosen["mfi"].iloc[0])


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


@PROPERTY
@given(cell=IMPOSSIBLE)
def test_fcap_table_never_stores_an_impossible_mfi(tmp_path: Path, cell: str) -> None:
    path = _write_csv(tmp_path / "fcap.csv", [
        ["FCAP Array v3.0.1"], ["Experiment Name", "RUN-7"], [],
        ["Well", "Sample ID", "Sample Type", "Dilution", "IL-6 MFI", "IFN-g MFI"],
        ["C3", "S26-0100", "Sample", "1", cell, "410"],
    ])  # fmt: skip
    stored = _stored_mfi(path, "C3", "IL-6")
    assert stored is None or not math.isfinite(stored)


@PROPERTY
@given(cell=IMPOSSIBLE)
def test_xponent_never_stores_an_impossible_median(
    tmp_path: Path, shared_data: Path, cell: str
) -> None:
    header = (shared_data / "cba" / "luminex_xPONENT_example02.csv").read_bytes().decode("latin-1")
    rows = list(csv.reader(io.StringIO(header)))
    rows = rows[: next(i for i, row in enumerate(rows) if row[:1] == ["Results"]) + 1]
    rows += [[], ["DataType:", "Median"], ["Location", "Sample", "IL6", "IL8", "Total Events"],
             ["1(1,A1)", "P001_D7", cell, "812", "900"], [], ["DataType:", "Count"],
             ["Location", "Sample", "IL6", "IL8", "Total Events"],
             ["1(1,A1)", "P001_D7", "48", "51", "900"]]  # fmt: skip
    stored = _stored_mfi(_write_csv(tmp_path / "xponent.csv", rows), "A1", "IL6")
    assert stored is None or not math.isfinite(stored)


@PROPERTY
@given(cell=IMPOSSIBLE)
def test_intelliflex_never_stores_an_impossible_median(
    tmp_path: Path, shared_data: Path, cell: str
) -> None:
    original = (shared_data / "cba" / "luminex_intelliflex_v2_2.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(original)))
    column = rows[0].index("R25: RP1 MEDIAN")
    well_b1 = next(r for r in rows[1:] if r[rows[0].index("WELL LOCATION")] == "B1")
    well_b1[column] = cell  # a well with status Warning and beads counted: not a dry well
    stored = _stored_mfi(_write_csv(tmp_path / "intelliflex.csv", rows), "B1", "HPV6")
    assert stored is None or not math.isfinite(stored)


@given(cell=IMPOSSIBLE)
def test_a_reported_concentration_is_never_an_impossible_number(cell: str) -> None:
    try:
        value = parse_reported_value(cell)
    except ValueError:
        return
    assert value.value is None or (math.isfinite(value.value) and value.value >= 0)
    assert value.limit is None or (math.isfinite(value.limit) and value.limit >= 0)


@PROPERTY
@given(cell=NEGATIVE_OR_INFINITE)
def test_a_concentration_table_refuses_negative_and_infinite_values(
    tmp_path: Path, cell: str
) -> None:
    path = _write_csv(tmp_path / "conc.csv", [
        ["LEGENDplex Data Analysis Software"], ["Data Type", "Concentration"],
        ["Well", "Sample ID", "IL-6 (A7)"], ["A3", "S26-0100", cell],
    ])  # fmt: skip
    with pytest.raises((CbaFormatError, CbaAnalysisError)):
        analyse_plate(read_plate(path))


def test_xponent_nan_is_no_value_only_where_the_count_is_zero(
    tmp_path: Path, shared_data: Path
) -> None:
    header = (shared_data / "cba" / "luminex_xPONENT_example02.csv").read_bytes().decode("latin-1")
    rows = list(csv.reader(io.StringIO(header)))
    rows = rows[: next(i for i, row in enumerate(rows) if row[:1] == ["Results"]) + 1]

    def plate(count: str) -> Path:
        body = [[], ["DataType:", "Median"], ["Location", "Sample", "IL6", "Total Events"],
                ["1(1,A1)", "P001_D7", "NaN", "900"], [], ["DataType:", "Count"],
                ["Location", "Sample", "IL6", "Total Events"], ["1(1,A1)", "P001_D7", count, "900"]]  # fmt: skip
        return _write_csv(tmp_path / f"count{count}.csv", rows + body)

    assert math.isnan(_stored_mfi(plate("0"), "A1", "IL6"))
    with pytest.raises(CbaFormatError, match=r"the Median of IL6 in well A1 holds 'NaN'"):
        read_plate(plate("12"))
