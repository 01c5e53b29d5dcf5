"""The qPCR readers on real instrument exports (../shared/data/qpcr).

Expected values were read off the files themselves (and allotropy's expected output for its test
files); the slow tests compare every Cq with two independent parsers: allotropy for QuantStudio,
Design & Analysis and CFX files, rdmlpython for RDML.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from qpcr import normalise_well
from qpcr.model import WELL_COLUMNS, QpcrFormatError
from qpcr.readers import read_plate, sniff

pytestmark = pytest.mark.conformance


COMPARATIVE_CT = "appbio_quantstudio_example01.txt"
"""The one shipped export of a Comparative Cт (ΔΔCт) run: refused, its Cq read from a copy."""


def plate_of(shared_data: Path, name: str):
    path = shared_data / "qpcr" / name
    return path, read_plate(path)


def as_standard_curve(shared_data: Path, tmp_path: Path) -> Path:
    """The ΔΔCт export with its Experiment Type line saying Standard Curve, the rest untouched."""
    text = (shared_data / "qpcr" / COMPARATIVE_CT).read_text(encoding="utf-8")
    line = "* Experiment Type = Comparative C\u0442 (\u0394\u0394C\u0442)"
    assert line in text
    path = tmp_path / COMPARATIVE_CT
    path.write_text(text.replace(line, "* Experiment Type = Standard Curve"), encoding="utf-8")
    return path


def cq(plate, well: str, target: str | None = None) -> float:
    rows = plate.wells[plate.wells["well"] == well]
    if target is not None:
        rows = rows[rows["target"] == target]
    assert len(rows) == 1
    return float(rows.iloc[0]["cq"])


def no_cq_count(plate) -> int:
    return int((~plate.wells["amplified"]).sum())


def test_every_real_file_is_sniffed_and_read(shared_data):
    expected = {
        "appbio_quantstudio_example01.txt": "quantstudio-text",
        "appbio_quantstudio_example02.txt": "quantstudio-text",
        "appbio_quantstudio_example04.txt": "quantstudio-text",
        "example_quantsudio_results_only.txt": "quantstudio-text",
        "quantstudio_da_QS5_Standard_Curve_4Plex_example03.xlsx": "quantstudio-da",
        "quantstudio_da_QS6_Standard_Curve_example04.xlsx": "quantstudio-da",
        "cfxmaestro_example01.csv": "cfx-maestro",
        "lightcycler480_Nrd1_calibration_Cq.txt.gz": "lightcycler-480",
        "lightcycler480_TxnInhibitors_plate1_Cq.txt.gz": "lightcycler-480",
        "stepone_std.rdml": "rdml",
        "BioRad_qPCR_melt.rdml": "rdml",
    }
    assert {p.name for p in (shared_data / "qpcr").iterdir()} == expected.keys()
    for name, fmt in expected.items():
        path = shared_data / "qpcr" / name
        assert sniff(path) == fmt, name
        if name == COMPARATIVE_CT:
            with pytest.raises(QpcrFormatError, match="relative-quantification"):
                read_plate(path)
            continue
        plate = read_plate(path)
        assert plate.instrument_format == fmt
        assert list(plate.wells.columns) == list(WELL_COLUMNS)
        assert not plate.wells.duplicated(["well", "target"]).any()
        assert (plate.wells["amplified"] == plate.wells["cq"].notna()).all()
        assert not (plate.wells["cq"] == 40.0).any() or name != "stepone_std.rdml"


def test_other_real_files_are_not_taken_for_qpcr(shared_data):
    others = [p for p in shared_data.rglob("*") if p.is_file() and p.parent.name != "qpcr"]
    assert others
    assert [p.name for p in others if sniff(p) is not None] == []


def test_comparative_ct_export_is_refused_with_what_is_needed(shared_data):
    with pytest.raises(QpcrFormatError) as error:
        read_plate(shared_data / "qpcr" / COMPARATIVE_CT)
    reason = str(error.value)
    assert reason.startswith(f"{COMPARATIVE_CT}: a relative-quantification run (Experiment Type")
    assert "absolute-quantification (Standard Curve) export" in reason
    assert "plasmid standards" in reason and len(reason.splitlines()) == 1


def test_viia7_example01(shared_data, tmp_path):
    plate = read_plate(as_standard_curve(shared_data, tmp_path))
    assert len(plate.wells) == 16 and set(plate.wells["target"]) == {"TARGET_1"}
    assert cq(plate, "A1") == 18.717 and cq(plate, "A18") == 18.842
    assert "A13" not in set(plate.wells["well"])  # an empty well in the setup
    assert no_cq_count(plate) == 0
    assert plate.instrument == "ViiA 7 (SN INST_1)"
    assert plate.run_id == "quantstudio-text:test_file@2001-12-31T21:09:19-05:00"


def test_quantstudio6_presence_absence_example02(shared_data):
    _, plate = plate_of(shared_data, "appbio_quantstudio_example02.txt")
    assert len(plate.wells) == 96 and set(plate.wells["target"]) == {"IPC", "TGFb"}
    assert no_cq_count(plate) == 28
    assert set(plate.wells.loc[~plate.wells["amplified"], "amp_status"]) == {"Undetermined"}
    assert cq(plate, "A2", "IPC") == 32.874 and math.isnan(cq(plate, "A2", "TGFb"))
    assert cq(plate, "D12", "TGFb") == 27.989
    assert plate.wells["task"].value_counts().to_dict() == {"OTHER": 48, "UNKNOWN": 44, "NTC": 4}
    assert any("Presence/Absence" in w for w in plate.warnings)


def test_quantstudio7_standard_curve_example04(shared_data):
    _, plate = plate_of(shared_data, "appbio_quantstudio_example04.txt")
    wells = plate.wells
    assert len(wells) == 95  # H11 was removed from [Results] in this file
    assert any("H11/RNase P" in w for w in plate.warnings)
    assert no_cq_count(plate) == 4
    assert list(wells.loc[~wells["amplified"], "well"]) == ["D1", "D2", "D3", "D4"]
    standards = wells[wells["task"] == "STANDARD"]
    assert standards["standard_quantity"].value_counts().to_dict() == {
        q: 4 for q in (1250.0, 2500.0, 5000.0, 10000.0, 20000.0)
    }
    assert standards.set_index("well").loc["D5", "cq"] == 29.331
    unknown = wells.set_index("well").loc["A1"]
    assert unknown["cq"] == 27.102 and unknown["instrument_quantity"] == 5720.562
    assert plate.instrument_curves == {
        "RNase P": {
            "slope": -3.383,
            "intercept": 39.814,
            "r_squared": 0.997,
            "efficiency_pct": 97.505,
        }
    }
    assert plate.instrument == "QuantStudio(TM) 7 Flex System (SN 278880031)"
    assert plate.run_id == (
        "quantstudio-text:QS7_96-Well Standard Curve Example.eds@2010-10-21T00:51:26-04:00"
    )


def test_quantstudio_results_only_with_repeated_columns(shared_data):
    _, plate = plate_of(shared_data, "example_quantsudio_results_only.txt")
    wells = plate.wells
    assert len(wells) == 24 and set(wells["target"]) == {"3'UTR"}
    standards = wells[wells["task"] == "STANDARD"]
    assert sorted(standards["standard_quantity"].unique()) == [1e7, 1e8]
    assert cq(plate, "A1") == 16.484
    assert wells.set_index("well").loc["A4", "instrument_quantity"] == 118_248.2
    assert plate.instrument_curves["3'UTR"]["efficiency_pct"] == 105.533
    assert plate.run_id == "quantstudio-text:01OCT2024.eds@2024-10-01T15:02:50-05:00"


def test_design_and_analysis_qs5_4plex(shared_data):
    _, plate = plate_of(shared_data, "quantstudio_da_QS5_Standard_Curve_4Plex_example03.xlsx")
    wells = plate.wells
    assert len(wells) == 384 and wells["well"].nunique() == 96
    assert set(wells["target"]) == {"FZD1", "APOE", "GAPDH", "CD44"}
    assert set(wells["amp_status"]) == {"AMP"} and no_cq_count(plate) == 0
    assert cq(plate, "A1", "FZD1") == pytest.approx(28.635872856981464)
    assert cq(plate, "H12", "CD44") == pytest.approx(21.758648482661464)
    assert plate.instrument == "QuantStudio™ 5 System (SN SVT001)"
    assert plate.run_started is not None and plate.run_started.isoformat() == (
        "2015-04-07T02:15:04-04:00"
    )


def test_design_and_analysis_qs6_standard_curve(shared_data):
    _, plate = plate_of(shared_data, "quantstudio_da_QS6_Standard_Curve_example04.xlsx")
    wells = plate.wells
    assert len(wells) == 384 and set(wells["target"]) == {"RNAse P"}
    assert no_cq_count(plate) == 16
    assert set(wells.loc[~wells["amplified"], "amp_status"]) == {"NO_AMP"}
    assert set(wells.loc[~wells["amplified"], "task"]) == {"NTC"}
    standards = wells[wells["task"] == "STANDARD"]
    assert standards["standard_quantity"].value_counts().to_dict() == {
        q: 16 for q in (1250.0, 2500.0, 5000.0, 10000.0, 20000.0)
    }
    assert cq(plate, "A2") == pytest.approx(29.84621547854897)
    assert cq(plate, "P24") == pytest.approx(26.77282642418676)
    curve = plate.instrument_curves["RNAse P"]
    assert curve["slope"] == -3.2767 and curve["intercept"] == 39.9434
    assert curve["efficiency_pct"] == pytest.approx(101.9248, abs=1e-4)
    assert curve["r_squared"] == pytest.approx(0.99717, abs=1e-5)


def test_cfx_maestro_example01(shared_data):
    _, plate = plate_of(shared_data, "cfxmaestro_example01.csv")
    wells = plate.wells
    assert len(wells) == 48 and set(wells["target"]) == {"FAM", "VIC"}  # Target column empty
    assert wells["well"].nunique() == 24 and set(wells["task"]) == {"UNKNOWN"}
    assert cq(plate, "A1", "FAM") == 21.1877528266099
    assert cq(plate, "D6", "VIC") == 20.9102822371808
    assert no_cq_count(plate) == 0
    assert plate.run_id == "cfx-maestro:cfxmaestro_example01"


@pytest.mark.parametrize(
    "name,no_cq,first,last",
    [
        ("lightcycler480_Nrd1_calibration_Cq.txt.gz", 105, 22.78, math.nan),
        ("lightcycler480_TxnInhibitors_plate1_Cq.txt.gz", 61, 14.98, 32.92),
    ],
)
def test_lightcycler480_gzipped_exports(shared_data, name, no_cq, first, last):
    _, plate = plate_of(shared_data, name)
    assert len(plate.wells) == 384 and plate.wells["well"].iloc[-1] == "P24"
    assert set(plate.wells["target"]) == {"SYBR Green I / HRM Dye (483-533)"}
    assert no_cq_count(plate) == no_cq
    assert cq(plate, "A1") == first
    assert cq(plate, "P24") == pytest.approx(last, nan_ok=True)


def test_rdml_stepone_standard_curve(shared_data):
    _, plate = plate_of(shared_data, "stepone_std.rdml")
    wells = plate.wells.set_index("well")
    assert len(wells) == 24 and set(wells["target"]) == {"RNase P"}
    assert wells["task"].value_counts().to_dict() == {"STANDARD": 15, "UNKNOWN": 6, "NTC": 3}
    # the converter wrote 40.0 with a NaN quantity for the three NTCs: not found, never 40
    assert no_cq_count(plate) == 3
    assert list(wells.index[~wells["amplified"]]) == ["A1", "A2", "A3"]
    assert set(wells.loc[["A1", "A2", "A3"], "amp_status"]) == {"40.0"}
    assert sorted(wells.loc[wells["task"] == "STANDARD", "standard_quantity"].unique()) == [
        625.0, 1250.0, 2500.0, 5000.0, 10000.0,
    ]  # fmt: skip
    assert (
        wells.loc["B2", "cq"] == 26.874498 and wells.loc["A4", "instrument_quantity"] == 2484.3098
    )
    assert plate.instrument_curves == {"RNase P": {"efficiency_pct": 93.91181}}
    assert plate.instrument == "Applied Biosystems StepOne™ Instrument"


def test_rdml_biorad_amplification_with_melt(shared_data):
    _, plate = plate_of(shared_data, "BioRad_qPCR_melt.rdml")
    wells = plate.wells
    assert len(wells) == 30 and set(wells["target"]) == {"EvaGreen"}
    assert set(wells["well"]) >= {"A1", "A10", "D1", "H1", "H10"}  # numbered 1..96 in an 8x12
    assert no_cq_count(plate) == 4
    assert cq(plate, "A1") == 27.7514537682101 and cq(plate, "H10") == 35.3197402365743
    assert any("Amp Step 3_Cy5" in w for w in plate.warnings)  # a channel with no Cq at all


# --- independent parsers ---------------------------------------------------------------------------


def allotropy_cq(asm: dict) -> list[tuple[str, str, float]]:
    """(well, target, Cq) per measurement in allotropy's output, Cq -1.0 where it has none."""
    found = []
    for document in asm["qpcr aggregate document"]["qpcr document"]:
        for measurement in document["measurement aggregate document"]["measurement document"]:
            position = measurement["sample document"]["well location identifier"]
            processed = measurement["processed data aggregate document"]["processed data document"]
            value = (processed[0].get("cycle threshold result (qPCR)") or {}).get("value")
            well = normalise_well(position) or position
            found.append((well, measurement["target DNA description"], _comparable(value)))
    return sorted(found)


def _comparable(value: float | None) -> float:
    return -1.0 if value is None or math.isnan(value) else round(float(value), 9)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,vendor",
    [
        ("appbio_quantstudio_example01.txt", "APPBIO_QUANTSTUDIO"),
        ("appbio_quantstudio_example02.txt", "APPBIO_QUANTSTUDIO"),
        ("appbio_quantstudio_example04.txt", "APPBIO_QUANTSTUDIO"),
        ("example_quantsudio_results_only.txt", "APPBIO_QUANTSTUDIO"),
        (
            "quantstudio_da_QS6_Standard_Curve_example04.xlsx",
            "APPBIO_QUANTSTUDIO_DESIGNANDANALYSIS",
        ),
        ("cfxmaestro_example01.csv", "CFXMAESTRO"),
    ],
)
def test_cq_agrees_with_allotropy(shared_data, tmp_path, name, vendor):
    from allotropy.parser_factory import Vendor
    from allotropy.to_allotrope import allotrope_from_file

    path = shared_data / "qpcr" / name
    plate = read_plate(as_standard_curve(shared_data, tmp_path) if name == COMPARATIVE_CT else path)
    theirs = allotropy_cq(allotrope_from_file(str(path), getattr(Vendor, vendor)))
    wells = plate.wells
    if name.startswith("cfx"):  # the Target column is empty: allotropy writes N/A, we the Fluor
        wells = wells.assign(target="N/A")
    if name.endswith("01.txt"):  # [Sample Setup] stops at A16; allotropy drops A17/A18 with it
        assert {"A17", "A18"} <= set(wells["well"])
        wells = wells[~wells["well"].isin(["A17", "A18"])]
    ours = sorted(
        (w, t, _comparable(c))
        for w, t, c in wells[["well", "target", "cq"]].itertuples(index=False)
    )
    assert ours == theirs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stepone_std.rdml", "BioRad_qPCR_melt.rdml"])
def test_cq_agrees_with_rdmlpython(shared_data, name):
    from rdmlpython import rdml

    path, plate = plate_of(shared_data, name)
    document = rdml.Rdml()
    try:
        document.load(str(path))
    except rdml.RdmlError:  # Bio-Rad names the XML member after the file
        document.load_any_zip(str(path))
    theirs = pd.DataFrame(
        [
            (react["id"], data.get("tar"), data.get("cq"))
            for experiment in document.experiments()
            for run in experiment.runs()
            for react in run.getreactjson(curves=False)["reacts"]
            for data in react["datas"]
            if data.get("cq") is not None
        ],
        columns=["react", "target", "cq"],
    )
    theirs["cq"] = theirs["cq"].astype(float)
    ours = plate.wells[plate.wells["amplified"]]
    assert sorted(ours["cq"]) == sorted(theirs.loc[theirs["cq"] != 40.0, "cq"])
    assert (theirs["cq"] == 40.0).sum() == (plate.wells["amp_status"] == "40.0").sum()


def test_relative_quantification_workbook_is_refused_with_what_is_needed(shared_data, tmp_path):
    """A Design & Analysis Relative Quantification (ΔΔCq) workbook, made from the shipped
    Standard Curve one: its plug-in line, an RQ sheet, and no Standard Curve Result sheet."""
    import openpyxl

    from tests.qpcr_readers.shipped_exports import slim_design_and_analysis

    name = "quantstudio_da_QS6_Standard_Curve_example04.xlsx"
    book = openpyxl.load_workbook(slim_design_and_analysis(shared_data / "qpcr" / name))
    del book["Standard Curve Result"]
    for row in book["Results"].iter_rows():
        if row[0].value == "Plugin Name and Version":
            row[1].value = "Primary Analysis v1.8.0, Relative Quantification v1.7.0"
    book.create_sheet("RQ Replicate Group Result").append(["Target", "Sample", "Rq"])
    path = tmp_path / "relative.xlsx"
    book.save(path)
    with pytest.raises(QpcrFormatError) as error:
        read_plate(path)
    reason = str(error.value)
    assert reason.startswith("relative.xlsx: a relative-quantification (ΔΔCq) analysis")
    assert "absolute-quantification (Standard Curve) export" in reason
