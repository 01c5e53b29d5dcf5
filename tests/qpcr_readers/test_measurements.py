"""No reader invents a measurement: real exports (../shared/data/qpcr) with hostile Cq and
quantity cells written into a copy are refused naming the wells, or, where the cell is the
vendor's own "no Cq" marker, read as not amplified with the vendor's wording."""

from __future__ import annotations

import csv
import gzip
import io
import math
import string
import tempfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qpcr import parse_number
from qpcr.model import QpcrFormatError
from qpcr.readers import read_plate, sniff
from tests.qpcr_readers.shipped_exports import (
    EXPORTS,
    RDML_NS,
    rdml_root,
    slim_design_and_analysis,
    write_cfx,
    write_lightcycler,
    write_quantstudio_text,
    write_rdml,
    write_rdml_root,
)

pytestmark = pytest.mark.conformance

QS = "appbio_quantstudio_example04.txt"
CFX = "cfxmaestro_example01.csv"
LC = "lightcycler480_TxnInhibitors_plate1_Cq.txt.gz"
DA = "quantstudio_da_QS6_Standard_Curve_example04.xlsx"
STEPONE = "stepone_std.rdml"


def refusal(path: Path) -> str:
    with pytest.raises(QpcrFormatError) as error:
        read_plate(path)
    return str(error.value)


def row(plate, well: str, target: str | None = None):
    rows = plate.wells[plate.wells["well"] == well]
    if target is not None:
        rows = rows[rows["target"] == target]
    assert len(rows) == 1
    return rows.iloc[0]


# --- the cases, on the shipped files ---------------------------------------------------


@pytest.mark.parametrize("ct", ["see notes", "NaN", "-2.5", "inf", "0"])
def test_quantstudio_ct_that_is_not_a_measurement_refuses_the_plate(shared_data, tmp_path, ct):
    """Before: text, NaN, negative and inf were taken as "no Cq" (a false "CAR lost")."""
    path = tmp_path / QS
    write_quantstudio_text(shared_data / "qpcr" / QS, path, ["27.102", ct])
    reason = refusal(path)
    assert reason.startswith(f"{QS}: values that are not measurements: A2 Cq {ct!r} (a Cq")
    assert "Correct these wells in the instrument software" in reason
    assert len(reason.splitlines()) == 1


def test_quantstudio_undetermined_is_not_amplified(shared_data, tmp_path):
    path = tmp_path / QS
    write_quantstudio_text(shared_data / "qpcr" / QS, path, ["27.102", "Undetermined"])
    well = row(read_plate(path), "A2")
    assert math.isnan(well["cq"]) and not well["amplified"]
    assert well["amp_status"] == "Undetermined"


def test_every_bad_well_is_named_up_to_five(shared_data, tmp_path):
    path = tmp_path / QS
    write_quantstudio_text(shared_data / "qpcr" / QS, path, ["x", "-1", "y", "z", "NaN", "inf"])
    reason = refusal(path)
    assert "A1 Cq 'x', A2 Cq '-1', A3 Cq 'y', A4 Cq 'z', A5 Cq 'NaN' (and 1 more)" in reason


@pytest.mark.parametrize("cq", ["no result", "-3.2", "N/A", "Undetermined"])
def test_cfx_text_or_negative_cq_refuses_the_plate(shared_data, tmp_path, cq):
    """Before: taken as NO_CURVE; CFX's own "no Cq" is NaN and nothing else."""
    path = tmp_path / CFX
    write_cfx(shared_data / "qpcr" / CFX, path, [cq])
    assert f"A1 Cq {cq!r}" in refusal(path)


def test_cfx_nan_is_its_no_cq(shared_data, tmp_path):
    path = tmp_path / CFX
    write_cfx(shared_data / "qpcr" / CFX, path, ["NaN"])
    well = row(read_plate(path), "A1", "FAM")
    assert math.isnan(well["cq"]) and not well["amplified"] and well["amp_status"] == "NaN"


@pytest.mark.parametrize("cp", ["NaN", "-1", "Undetermined"])
def test_lightcycler_cp_other_than_empty_refuses_the_plate(shared_data, tmp_path, cp):
    path = tmp_path / LC
    write_lightcycler(shared_data / "qpcr" / LC, path, [cp])
    assert f"A1 Cq {cp!r}" in refusal(path)


@pytest.mark.parametrize(
    "cq,refused",
    [("-2.5", True), ("NaN", True), ("INF", True), ("text", True), ("-1", False), ("", False)],
)
def test_rdml_cq_other_than_absent_or_not_available_refuses(shared_data, tmp_path, cq, refused):
    path = tmp_path / STEPONE
    keys = write_rdml(shared_data / "qpcr" / STEPONE, path, [cq])
    well, target = keys[0]
    if refused:
        assert f"{well} Cq {cq!r}" in refusal(path)
    else:
        found = row(read_plate(path), well, target)
        assert math.isnan(found["cq"]) and not found["amplified"] and found["amp_status"] == cq


@pytest.mark.parametrize("value", ["abc", -2.5, "UNDETERMINED"])
def test_design_and_analysis_cq(shared_data, tmp_path, value):
    book = openpyxl.load_workbook(slim_design_and_analysis(shared_data / "qpcr" / DA))
    sheet = book["Results"]
    header = next(
        r for r in sheet.iter_rows() if r[0].value == "Well" and r[1].value == "Well Position"
    )
    cq_column = [c.value for c in header].index("Cq")
    sheet.cell(row=header[0].row + 1, column=cq_column + 1, value=value)
    path = tmp_path / DA
    book.save(path)
    if value == "UNDETERMINED":
        assert not row(read_plate(path), "A1")["amplified"]
    else:
        assert f"A1 Cq {str(value)!r}" in refusal(path)


# --- quantities ----------------------------------------------------------------------------------


def _quantstudio_with_quantity(shared_data: Path, tmp_path: Path, well: str, quantity: str) -> Path:
    lines = (shared_data / "qpcr" / QS).read_text(encoding="utf-8").split("\n")
    start = lines.index("[Results]") + 1
    header = lines[start].split("\t")
    column, position = header.index("Quantity"), header.index("Well Position")
    for number in range(start + 1, len(lines)):
        fields = lines[number].split("\t")
        if len(fields) > position and fields[position] == well:
            fields[column] = quantity
            lines[number] = "\t".join(fields)
    path = tmp_path / QS
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("quantity", ["0", "-1,250.000", "inf", "lots"])
def test_a_standard_quantity_must_be_above_zero(shared_data, tmp_path, quantity):
    plate = read_plate(shared_data / "qpcr" / QS)
    standard = plate.wells.loc[plate.wells["task"] == "STANDARD", "well"].iloc[0]
    reason = refusal(_quantstudio_with_quantity(shared_data, tmp_path, standard, quantity))
    assert f"{standard} standard quantity {quantity!r}" in reason


@pytest.mark.parametrize("quantity,refused", [("-5.0", True), ("inf", True), ("0", False)])
def test_an_instrument_quantity_must_be_zero_or_more(shared_data, tmp_path, quantity, refused):
    path = _quantstudio_with_quantity(shared_data, tmp_path, "A1", quantity)
    if refused:
        assert f"A1 quantity {quantity!r}" in refusal(path)
    else:
        assert row(read_plate(path), "A1")["instrument_quantity"] == 0.0


def test_cfx_negative_starting_quantity_of_a_standard_is_refused(shared_data, tmp_path):
    rows = list(csv.reader(io.StringIO((shared_data / "qpcr" / CFX).read_text(encoding="utf-8"))))
    header = rows[0]
    rows[1][header.index("Content")] = "Std-01"
    rows[1][header.index("Starting Quantity (SQ)")] = "-100"
    path = tmp_path / CFX
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    assert "A1 standard quantity '-100'" in refusal(path)


def test_lightcycler_negative_standard_is_refused_not_taken_as_a_sample(shared_data, tmp_path):
    lines = gzip.decompress((shared_data / "qpcr" / LC).read_bytes()).decode("utf-8").split("\n")
    header = lines[1].split("\t")
    fields = lines[2].split("\t")
    fields[header.index("Standard")] = "-1E3"
    lines[2] = "\t".join(fields)
    path = tmp_path / LC
    path.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    assert "A1 standard quantity '-1E3'" in refusal(path)


def test_rdml_standard_quantity_of_zero_is_refused(shared_data, tmp_path):
    root = rdml_root(shared_data / "qpcr" / STEPONE)
    sample = next(s for s in root.iter(RDML_NS + "sample") if s.get("id") == "STD_RNase P_625.0")
    sample.find(f"{RDML_NS}quantity/{RDML_NS}value").text = "0"
    reason = refusal(write_rdml_root(tmp_path / STEPONE, root))
    assert "standard quantity '0'" in reason


# --- the property: never a finite stored measurement from a non-measurement ---------------------

CQS = st.floats(min_value=0.001, max_value=60.0).map(lambda x: f"{x:.3f}")
ODD_CELLS = st.one_of(
    st.floats(max_value=-0.001, min_value=-1e6).map(lambda x: f"{x:.3f}"),
    st.sampled_from(
        [
            "inf",
            "-inf",
            "Infinity",
            "NaN",
            "nan",
            "",
            "Undetermined",
            "UNDETERMINED",
            "N/A",
            "-1",
            "-1.0",
            "No Ct",
            "0",
            "0.000",
            "1e999",
            "-",
            "100",
            "-0",
        ]
    ),  # fmt: skip
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=8),
)


@st.composite
def plate_cells(draw, wells: int) -> list[str]:
    """Cq cells for the first wells: real-looking Cqs with zero to two odd cells among them, so
    that plates holding only Cqs and one vendor's marker are drawn often."""
    cells = draw(st.lists(CQS, min_size=1, max_size=wells))
    for odd in draw(st.lists(ODD_CELLS, max_size=2)):
        cells[draw(st.integers(0, len(cells) - 1))] = odd
    return cells


def _expected_cq(cell: str, is_no_cq) -> float | None:
    """NaN for the vendor's marker, the number for a Cq, None where the plate must be refused."""
    if is_no_cq(cell):
        return math.nan
    value = parse_number(cell)
    return value if value is not None and math.isfinite(value) and value > 0 else None


@pytest.mark.parametrize(
    "fmt",
    [pytest.param(f, marks=pytest.mark.slow) if f == "quantstudio-da" else f for f in EXPORTS],
)
def test_no_reader_turns_a_non_measurement_into_a_stored_cq(shared_data, fmt):
    name, export = EXPORTS[fmt]

    @settings(
        max_examples=25 if fmt == "quantstudio-da" else 150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(cells=plate_cells(export.editable_wells))
    def read_back(cells: list[str]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            keys = export.write(shared_data / "qpcr" / name, path, cells)
            assert sniff(path) == export.format
            expected = [_expected_cq(cell, export.is_no_cq) for cell in cells]
            if any(value is None for value in expected):
                first = next(i for i, value in enumerate(expected) if value is None)
                reason = refusal(path)
                assert "values that are not measurements" in reason
                assert f"{keys[first][0]} Cq" in reason
                return
            plate = read_plate(path)
            for (well, target), cell, value in zip(keys, cells, expected, strict=True):
                found = row(plate, well, target)
                if math.isnan(value):
                    assert math.isnan(found["cq"]) and not found["amplified"], cell
                    if fmt in ("quantstudio-text", "abi-7500", "cfx-maestro", "rdml"):
                        assert found["amp_status"] == cell.strip()
                else:
                    assert found["cq"] == pytest.approx(value) and found["amplified"], cell

    read_back()
