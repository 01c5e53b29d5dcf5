from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest

from cba import read_plate, sniff
from cba.errors import CbaFormatError
from cba.model import parse_reported_value
from cba.settings import CbaSettings

FCAP_HEAD = "FCAP Array v3.0.1\nExperiment Name,RUN-7\n\n"
FCAP_COLUMNS = "Well,Sample ID,Sample Type,Dilution,Standard Conc. (pg/mL),IL-6 MFI,IFN-g MFI\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_fcap_wide_csv_is_sniffed_and_read(tmp_path: Path) -> None:
    path = write(tmp_path / "plate.txt", FCAP_HEAD + FCAP_COLUMNS
                 + "A1,Standard 1,Standard,1,5000,20100.5,18000\n"
                 + "C1,S26-0100,Sample,2,,355.2,410\n")  # fmt: skip
    assert sniff(path) == "fcap-array-csv"
    plate = read_plate(path)
    assert plate.run_id == "fcap-array:RUN-7"
    wells = plate.wells.set_index(["well", "analyte"])
    assert wells.loc[("A1", "IFN-γ"), "analyte_as_exported"] == "IFN-g"
    assert wells.loc[("A1", "IL-6"), ["type", "standard_pg_ml", "mfi"]].tolist() == [
        "standard", 5000.0, 20100.5,
    ]  # fmt: skip
    assert wells.loc[("C1", "IL-6"), ["type", "sample_dilution"]].tolist() == ["sample", 2.0]
    assert plate.sample_names == ["S26-0100"]


def test_long_fcap_table_with_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", "FCAP Array v3\nExperiment;X\n"
                 "Well;Sample;Analyte;Median FI;Expected Conc.\n"
                 "A01;Std 1;TNF-a;15000;5000\nB01;S26-0101;TNF-a;420;\n")  # fmt: skip
    plate = read_plate(path)
    assert plate.wells["analyte"].tolist() == ["TNF", "TNF"]
    assert plate.wells["well"].tolist() == ["A1", "B1"]
    assert plate.wells["standard_pg_ml"].iloc[0] == 5000


def test_concentration_table_keeps_censored_strings(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Concentration"
    sheet.append(["LEGENDplex Data Analysis Software"])
    sheet.append(["Well", "Sample ID", "IL-6 (A7)", "IFN-g (B2)", "sCD25 (B4)"])
    sheet.append(["A3", "S26-0100", "< 3.2", "> 5000", "12.5"])
    sheet.append(["A4", "S26-0100", "OOR <", "N/A", "13.5"])
    book.save(tmp_path / "conc.xlsx")
    assert sniff(tmp_path / "conc.xlsx") == "legendplex-concentrations-xlsx"
    plate = read_plate(tmp_path / "conc.xlsx")
    assert plate.wells["mfi"].isna().all()
    assert plate.wells["reported_concentration"].tolist()[:3] == ["< 3.2", "> 5000", "12.5"]
    from cba import analyse_plate

    result = analyse_plate(plate)
    rows = result.cytokines.set_index("analyte")
    assert (rows.loc["IL-6", "censoring"], rows.loc["IL-6", "censor_limit_pg_ml"]) == (
        "below_lloq", 3.2,
    )  # fmt: skip
    assert np.isnan(rows.loc["IL-6", "concentration_pg_ml"])
    assert rows.loc["IFN-γ", "censoring"] == "above_uloq"
    assert rows.loc["sIL-2Rα", "concentration_pg_ml"] == 13.0
    assert set(result.curves["model"]) == {"NONE"}


@pytest.mark.parametrize(
    ("text", "censoring", "limit"),
    [("< 3.2", "below_lloq", 3.2), ("> 5000", "above_uloq", 5000), ("OOR <", "below_lloq", None),
     ("OOR >", "above_uloq", None), ("ND", "not_detected", None), ("N/A", "not_measured", None),
     ("NaN", "not_measured", None), ("---", "not_measured", None), ("***", "not_measured", None),
     ("", "not_measured", None)],
)  # fmt: skip
def test_censored_strings_are_never_numbers(text: str, censoring: str, limit: float | None) -> None:
    value = parse_reported_value(text)
    assert (value.value, value.censoring, value.limit) == (None, censoring, limit)


def test_a_decimal_comma_is_refused_not_read_as_a_larger_number() -> None:
    with pytest.raises(ValueError):
        parse_reported_value("3,2")
    assert parse_reported_value("5,000").value == 5000


def test_mfi_column_of_text_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", FCAP_HEAD + FCAP_COLUMNS + "A1,S1,Sample,1,,high,12\n")
    with pytest.raises(CbaFormatError, match=r"p\.csv.*'IL-6 MFI'.*'high'"):
        read_plate(path)


def test_an_unknown_analyte_is_kept_flagged_and_the_rest_analysed(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", FCAP_HEAD
                 + "Well,Sample ID,IL-6 MFI,Zorbin MFI,IL-6x MFI\nA1,S1,10,12,14\n")  # fmt: skip
    plate = read_plate(path)
    flags = plate.wells.set_index("analyte")["analyte_recognised"].to_dict()
    assert flags == {"IL-6": True, "Zorbin": False, "IL-6x": False}
    (warning,) = plate.warnings
    assert "'Zorbin', 'IL-6x' (did you mean 'IL-6'?)" in warning
    assert '[cba] analyte_aliases = { "Zorbin" = "<canonical name, e.g. IL-6>" }' in warning
    assert "analytes.py" not in warning


def test_lab_aliases_name_an_analyte_the_vocabulary_did_not_know(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", FCAP_HEAD + "Well,Sample ID,Zorbin MFI\nA1,S1,12\n")
    vocabulary = CbaSettings(analyte_aliases={"Zorbin": "sIL-2Rα"}).vocabulary
    plate = read_plate(path, vocabulary=vocabulary)
    assert plate.wells[["analyte", "analyte_recognised"]].values.tolist() == [["sIL-2Rα", True]]
    assert plate.warnings == []


def test_two_columns_of_one_analyte_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", FCAP_HEAD + "Well,Sample ID,IL6 MFI,IL-6 MFI\nA1,S1,1,2\n")
    with pytest.raises(CbaFormatError, match="'IL6' and 'IL-6' are both IL-6"):
        read_plate(path)


@pytest.mark.parametrize(
    ("cell", "shown"), [("-12", "-12"), ("inf", "inf"), ("1e400", "inf"), ("-0.5", "-0.5")]
)
def test_a_negative_or_infinite_mfi_refuses_the_plate_naming_well_and_analyte(
    tmp_path: Path, cell: str, shown: str
) -> None:
    path = write(tmp_path / "p.csv", FCAP_HEAD + FCAP_COLUMNS
                 + f"A1,Standard 1,Standard,1,5000,20100.5,18000\nC3,S26-0100,Sample,1,,{cell},410\n")  # fmt: skip
    with pytest.raises(CbaFormatError) as caught:
        read_plate(path)
    reason = str(caught.value)
    assert f"well C3 (S26-0100), IL-6: median fluorescence (MFI) {shown} is not" in reason
    assert "no measurement was stored" in reason


def test_a_nan_mfi_is_refused_but_an_empty_cell_is_no_value(tmp_path: Path) -> None:
    nan = write(tmp_path / "nan.csv", FCAP_HEAD + FCAP_COLUMNS + "C3,S26-0100,Sample,1,,NaN,4\n")
    with pytest.raises(CbaFormatError, match=r"row 5 \(well C3\) 'IL-6 MFI' holds 'NaN'"):
        read_plate(nan)
    empty = write(tmp_path / "empty.csv", FCAP_HEAD + FCAP_COLUMNS + "C3,S26-0100,Sample,1,,,4\n")
    assert np.isnan(read_plate(empty).wells.set_index("analyte").loc["IL-6", "mfi"])


def test_a_negative_standard_concentration_or_zero_dilution_is_refused(tmp_path: Path) -> None:
    standard = write(tmp_path / "s.csv", FCAP_HEAD + FCAP_COLUMNS
                     + "A1,Standard 1,Standard,1,-5000,20100.5,18000\n")  # fmt: skip
    with pytest.raises(CbaFormatError, match="expected standard concentration -5000 is not"):
        read_plate(standard)
    dilution = write(tmp_path / "d.csv", FCAP_HEAD + FCAP_COLUMNS + "C1,S1,Sample,0,,3,4\n")
    with pytest.raises(CbaFormatError, match="dilution factor 0 is not a number above 0"):
        read_plate(dilution)


def test_a_table_without_a_vendor_signature_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "Well,Sample ID,IL-6 MFI\nA1,S1,10\n")
    assert sniff(path) is None
    with pytest.raises(CbaFormatError, match="neither FCAP Array nor LEGENDplex"):
        read_plate(path)


def test_qpcr_exports_and_manifests_are_not_claimed(tmp_path: Path) -> None:
    qpcr = write(tmp_path / "q.csv", "Well,Sample Name,Target Name,Task,CT\n"
                 "A1,S26-0100,CAR,UNKNOWN,24.1\n")  # fmt: skip
    manifest = write(tmp_path / "m.csv", "accession,patient_id,timepoint,collection_date\n"
                     "S26-0100,P001,BL,2026-02-23\n")  # fmt: skip
    assert sniff(qpcr) is None
    assert sniff(manifest) is None
