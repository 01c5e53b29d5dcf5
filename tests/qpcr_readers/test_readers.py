"""qPCR readers on synthetic exports written here, each with a known truth, and on bad input."""

from __future__ import annotations

import gzip
import math
import os
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest

from qpcr.model import WELL_COLUMNS, QpcrFormatError
from qpcr.readers import FORMATS, read_plate, sniff

# --- QuantStudio / ViiA 7 and 7500 / StepOne text ---------------------------------------------

QS_HEADER = """\
* Block Type = 96-Well Block (0.2mL)
* Chemistry = TAQMAN
* Experiment Barcode = NA
* Experiment File Name = D:\\Users\\lab\\CAR-T run 12.eds
* Experiment Name = CAR-T run 12
* Experiment Run End Time = 2026-03-12 04:05:06 PM EDT
* Experiment Type = {experiment_type}
* Instrument Name = 278880031
* Instrument Serial Number = 278880031
* Instrument Type = {instrument}
* Passive Reference = ROX
"""
QS_SETUP = """\
[Sample Setup]
Well\tWell Position\tSample Name\tSample Color\tTarget Name\tTask\tReporter\tQuencher\tQuantity
1\tA1\tSTD-1e5\t"RGB(1,2,3)"\tCAR\tSTANDARD\tFAM\tNFQ-MGB\t100,000.000
2\tA2\tP001-D7\t"RGB(1,2,3)"\tCAR\tUNKNOWN\tFAM\tNFQ-MGB\t
3\tA3\tNTC\t"RGB(1,2,3)"\tCAR\tNTC\tFAM\tNFQ-MGB\t
"""
QS_RESULTS_HEADER = (
    "Well\tWell Position\tOmit\tSample Name\tTarget Name\tTask\tReporter\tQuencher\t{cq}\t"
    "{cq} Mean\t{cq} SD\tQuantity\tQuantity Mean\tQuantity SD\tY-Intercept\t"
    "R(superscript 2)\tSlope\tEfficiency\n"
)
QS_RESULTS_ROWS = (
    "1\tA1\tfalse\tSTD-1e5\tCAR\tSTANDARD\tFAM\tNFQ-MGB\t21.004\t21.004\t\t100,000.000\t\t\t"
    "37.612\t0.998\t-3.321\t100.041\n"
    "2\tA2\ttrue\tP001-D7\tCAR\tUNKNOWN\tFAM\tNFQ-MGB\t24.511\t24.511\t\t8,812.345\t\t\t"
    "37.612\t0.998\t-3.321\t100.041\n"
    "3\tA3\tfalse\tNTC\tCAR\tNTC\tFAM\tNFQ-MGB\tUndetermined\t\t\t\t\t\t"
    "37.612\t0.998\t-3.321\t100.041\n"
)


def quantstudio_text(
    *,
    instrument: str = "QuantStudio(TM) 7 Flex System",
    experiment_type: str = "Standard Curve",
    cq: str = "CT",
    rows: str = QS_RESULTS_ROWS,
) -> str:
    header = QS_HEADER.format(instrument=instrument, experiment_type=experiment_type)
    amplification = (
        "[Amplification Data]\nWell\tCycle\tTarget Name\tRn\tDelta Rn\n1\t1\tCAR\t0.5\t0.0\n"
    )
    return (
        header + "\n" + QS_SETUP + amplification + "[Results]\n"
        + QS_RESULTS_HEADER.format(cq=cq) + rows
    )  # fmt: skip


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def well(plate, name: str, target: str | None = None):
    rows = plate.wells[plate.wells["well"] == name]
    if target is not None:
        rows = rows[rows["target"] == target]
    assert len(rows) == 1, f"expected one row for {name}/{target}"
    return rows.iloc[0]


def test_quantstudio_text_reads_values_undetermined_and_thousands(tmp_path):
    path = write(tmp_path, "run.txt", quantstudio_text())
    assert sniff(path) == "quantstudio-text"
    plate = read_plate(path)
    assert list(plate.wells.columns) == list(WELL_COLUMNS)
    assert plate.instrument_format == "quantstudio-text"
    assert plate.instrument == "QuantStudio(TM) 7 Flex System (SN 278880031)"
    assert plate.run_id == "quantstudio-text:CAR-T run 12.eds@2026-03-12T16:05:06-04:00"
    standard, unknown, ntc = (well(plate, w) for w in ("A1", "A2", "A3"))
    assert standard["task"] == "STANDARD" and standard["standard_quantity"] == 100_000.0
    assert math.isnan(standard["instrument_quantity"])
    assert unknown["cq"] == pytest.approx(24.511) and unknown["instrument_quantity"] == 8812.345
    assert unknown["omitted"] and not standard["omitted"]
    assert math.isnan(ntc["cq"]) and ntc["amp_status"] == "Undetermined"
    assert not ntc["amplified"] and unknown["amplified"]
    assert ntc["task"] == "NTC"
    assert plate.instrument_curves == {
        "CAR": {"slope": -3.321, "intercept": 37.612, "r_squared": 0.998, "efficiency_pct": 100.041}
    }


def test_abi_7500_cyrillic_ct_header_and_position_wells(tmp_path):
    rows = QS_RESULTS_ROWS.replace("1\tA1\t", "A1\t").replace("2\tA2\t", "A2\t")
    rows = rows.replace("3\tA3\t", "A3\t")
    header = QS_RESULTS_HEADER.replace("Well\tWell Position\t", "Well\t")
    text = quantstudio_text(instrument="7500 Fast (96 Wells)", cq="C\u0442", rows=rows)
    text = text.replace(QS_RESULTS_HEADER.format(cq="C\u0442"), header.format(cq="C\u0442"))
    assert "C\u0442" in text
    path = write(tmp_path, "7500 export.txt", text)
    assert sniff(path) == "abi-7500"
    plate = read_plate(path)
    assert plate.instrument_format == "abi-7500"
    assert well(plate, "A1")["cq"] == pytest.approx(21.004)
    assert math.isnan(well(plate, "A3")["cq"])


def test_plain_ct_header_from_stepone(tmp_path):
    path = write(tmp_path, "s1.txt", quantstudio_text(instrument="StepOnePlus", cq="CT"))
    assert read_plate(path).instrument_format == "abi-7500"


def test_quantstudio_numbered_wells_on_384_block(tmp_path):
    text = quantstudio_text().replace("96-Well Block (0.2mL)", "384-Well Block")
    text = text.replace("Well\tWell Position\tOmit", "Well\tOmit")
    text = text.replace("1\tA1\tfalse", "25\tfalse").replace("2\tA2\ttrue", "26\ttrue")
    text = text.replace("3\tA3\tfalse", "384\tfalse")
    text = text.split("[Sample Setup]")[0] + "[Results]" + text.split("[Results]")[1]
    plate = read_plate(write(tmp_path, "numbered.txt", text))
    assert set(plate.wells["well"]) == {"B1", "B2", "P24"}
    assert any("positions assume 24 columns" in w for w in plate.warnings)


def test_corrected_reexport_keeps_run_id(tmp_path):
    first = read_plate(write(tmp_path, "a.txt", quantstudio_text()))
    corrected = quantstudio_text().replace("P001-D7", "P001-D07")
    second = read_plate(write(tmp_path, "renamed export.txt", corrected))
    assert first.run_id == second.run_id


@pytest.mark.parametrize("experiment_type", ["Genotyping", "Melt Curve", "High Resolution Melt"])
def test_quantstudio_non_quantification_run_is_refused(tmp_path, experiment_type):
    path = write(tmp_path, "geno.txt", quantstudio_text(experiment_type=experiment_type))
    with pytest.raises(QpcrFormatError, match="not a quantification run") as error:
        read_plate(path)
    assert "geno.txt" in str(error.value)


def test_quantstudio_without_cq_column_is_refused(tmp_path):
    text = quantstudio_text().replace("\tCT\tCT Mean\tCT SD", "\tRn\tRn Mean\tRn SD")
    with pytest.raises(QpcrFormatError, match="no Cq column"):
        read_plate(write(tmp_path, "nocq.txt", text))


def test_quantstudio_truncated_before_results_is_refused(tmp_path):
    text = quantstudio_text().split("[Results]")[0]
    with pytest.raises(QpcrFormatError, match=r"no \[Results\] section"):
        read_plate(write(tmp_path, "cut.txt", text))


def test_quantstudio_truncated_mid_results_is_refused(tmp_path):
    text = quantstudio_text()
    cut = text[: text.index("2\tA2\ttrue") + 30]  # the copy stops inside row A2
    with pytest.raises(QpcrFormatError, match="truncated") as error:
        read_plate(write(tmp_path, "cut.txt", cut))
    assert "cut.txt" in str(error.value)


def test_quantstudio_gap_in_results_is_a_warning_not_an_error(tmp_path):
    rows = "".join(line + "\n" for line in QS_RESULTS_ROWS.splitlines() if "\tA2\t" not in line)
    plate = read_plate(write(tmp_path, "gap.txt", quantstudio_text(rows=rows)))
    assert len(plate.wells) == 2
    assert any("A2/CAR" in w for w in plate.warnings)


def test_quantstudio_utf16_export(tmp_path):
    path = write(tmp_path, "utf16.txt", quantstudio_text().encode("utf-16"))
    assert sniff(path) == "quantstudio-text"
    assert len(read_plate(path).wells) == 3


# --- QuantStudio Design & Analysis workbook -----------------------------------------------------

DA_META = [
    ("File Name", "C:\\D&A\\CAR-T plate 7.eds"),
    ("Comment", None),
    ("Operator", "DEFAULT"),
    ("Barcode", None),
    ("Instrument Type", "QuantStudio™ 5 System"),
    ("Block Type", "96-Well 0.2-mL Block"),
    ("Instrument Name", "QS5-LAB"),
    ("Instrument Serial Number", "2725512345"),
    ("Run Start Date/Time", "2026-03-20 09:00:00 AM CET"),
    ("Run End Data/Time", "2026-03-20 10:02:03 AM CET"),
    ("Software Name and Version", "Design & Analysis Software v2.7.0"),
    ("Plugin Name and Version", "Primary Analysis v1.8.0, Standard Curve v1.7.0"),
]
DA_RESULTS = [
    "Well", "Well Position", "Omit", "Sample", "Target", "Task", "Reporter", "Quencher",
    "Amp Status", "Amp Score", "Cq", "Cq Confidence",
]  # fmt: skip
DA_CURVE = [
    "Well", "Well Position", "Sample", "Quantity", "Target", "Task", "Cq", "Y-Intercept", "R2",
    "Slope", "Efficiency", "Omit",
]  # fmt: skip


def write_da_workbook(path: Path, *, cq_column: str = "Cq", curve_sheet: bool = True) -> Path:
    book = openpyxl.Workbook()
    results = book.active
    results.title = "Results"
    wells = [
        (1, "A1", "FALSE", "STD 1000", "CAR", "STANDARD", "FAM", "NFQ-MGB", "AMP", 1.2, 28.125),
        (2, "A2", "FALSE", "P002-D10", "CAR", "UNKNOWN", "FAM", "NFQ-MGB", "AMP", 1.1, 25.5),
        (3, "A3", "TRUE", "NTC", "CAR", "NTC", "FAM", "NFQ-MGB", "NO_AMP", 0.0, "UNDETERMINED"),
    ]
    sheets = [(results, DA_RESULTS, [(*w, 0.98) for w in wells])]
    if curve_sheet:
        curve = book.create_sheet("Standard Curve Result")
        stats = (38.0, 0.995, -3.35, 98.84)
        rows = [
            (1, "A1", "STD 1000", 1000.0, "CAR", "STANDARD", 28.125, *stats, "FALSE"),
            (2, "A2", "P002-D10", 3912.5, "CAR", "UNKNOWN", 25.5, *stats, "FALSE"),
            (3, "A3", "NTC", None, "CAR", "NTC", "UNDETERMINED", *stats, "TRUE"),
        ]
        sheets.append((curve, DA_CURVE, rows))
    for sheet, header, rows in sheets:
        for key, value in DA_META:
            sheet.append([key, value])
        sheet.append([])
        sheet.append([cq_column if h == "Cq" else h for h in header])
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


def test_design_and_analysis_workbook(tmp_path):
    path = write_da_workbook(tmp_path / "plate7.xlsx")
    assert sniff(path) == "quantstudio-da"
    plate = read_plate(path)
    assert plate.instrument_format == "quantstudio-da"
    assert plate.instrument == "QuantStudio™ 5 System (SN 2725512345)"
    assert plate.run_id == "quantstudio-da:CAR-T plate 7.eds@2026-03-20T10:02:03+01:00"
    assert plate.run_started == datetime(2026, 3, 20, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    standard, unknown, ntc = (well(plate, w) for w in ("A1", "A2", "A3"))
    assert standard["standard_quantity"] == 1000.0 and standard["cq"] == 28.125
    assert unknown["instrument_quantity"] == 3912.5
    assert ntc["amp_status"] == "NO_AMP" and math.isnan(ntc["cq"]) and ntc["omitted"]
    assert plate.instrument_curves["CAR"] == {
        "slope": -3.35, "intercept": 38.0, "r_squared": 0.995, "efficiency_pct": 98.84
    }  # fmt: skip


def test_design_and_analysis_without_curve_sheet_warns(tmp_path):
    plate = read_plate(write_da_workbook(tmp_path / "p.xlsx", curve_sheet=False))
    assert math.isnan(well(plate, "A1")["standard_quantity"])
    assert any("carry no quantity" in w for w in plate.warnings)


def test_design_and_analysis_without_cq_is_refused(tmp_path):
    path = write_da_workbook(tmp_path / "p.xlsx", cq_column="Call")
    with pytest.raises(QpcrFormatError, match="no Cq column"):
        read_plate(path)


def test_truncated_workbook_is_refused(tmp_path):
    data = write_da_workbook(tmp_path / "full.xlsx").read_bytes()
    path = write(tmp_path, "cut.xlsx", data[: len(data) // 2])
    with pytest.raises(QpcrFormatError, match="cut.xlsx"):
        read_plate(path)


# --- Bio-Rad CFX Maestro CSV ---------------------------------------------------------------------

CFX_HEADER = (
    ",Well,Fluor,Target,Content,Sample,Biological Set Name,Cq,Cq Mean,Cq Std. Dev,"
    "Starting Quantity (SQ),Log Starting Quantity,SQ Mean,SQ Std. Dev,Set Point,Well Note"
)
CFX_ROWS = [
    ",A01,FAM,CAR,Std-01,STD 1e4,,24.1234567890123,24.1234567890123,0,10000,4,10000,0,60,",
    ",A01,HEX,RNaseP,Std-01,STD 1e4,,26.5,26.5,0,NaN,NaN,NaN,0,60,",
    ",A02,FAM,CAR,Unkn-01,P003-D14,,27.75,27.75,0,1234.5,3.09,1234.5,0,60,",
    ",A03,FAM,CAR,NTC,NTC,,NaN,NaN,0,NaN,NaN,NaN,0,60,",
    ",A04,FAM,CAR,Pos Ctrl,PC,,22.0,22.0,0,NaN,NaN,NaN,0,60,",
]


def cfx_csv(leading_empty_column: bool = True, rows: list[str] = CFX_ROWS) -> str:
    lines = [CFX_HEADER, *rows]
    if not leading_empty_column:
        lines = [line[1:] for line in lines]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("leading_empty_column", [True, False])
def test_cfx_with_and_without_leading_empty_column(tmp_path, leading_empty_column):
    path = write(tmp_path, "run -  Quantification Cq Results.csv", cfx_csv(leading_empty_column))
    assert sniff(path) == "cfx-maestro"
    plate = read_plate(path)
    assert plate.run_id == "cfx-maestro:run"
    assert len(plate.wells) == 5
    standard = well(plate, "A1", "CAR")
    assert standard["cq"] == 24.1234567890123 and standard["task"] == "STANDARD"
    assert standard["standard_quantity"] == 10000.0 and standard["reporter"] == "FAM"
    assert well(plate, "A1", "RNaseP")["reporter"] == "HEX"
    assert well(plate, "A2")["instrument_quantity"] == 1234.5
    ntc = well(plate, "A3")
    assert ntc["task"] == "NTC" and math.isnan(ntc["cq"]) and ntc["amp_status"] == "NaN"
    assert not ntc["amplified"]
    assert well(plate, "A4")["task"] == "OTHER"
    assert any("'Pos Ctrl'" in w for w in plate.warnings)


def test_cfx_without_target_names_uses_fluor(tmp_path):
    rows = [r.replace(",CAR,", ",,").replace(",RNaseP,", ",,") for r in CFX_ROWS]
    plate = read_plate(write(tmp_path, "x.csv", cfx_csv(rows=rows)))
    assert set(plate.wells["target"]) == {"FAM", "HEX"}
    assert any("no Target name" in w for w in plate.warnings)


def test_cfx_truncated_line_is_refused(tmp_path):
    text = cfx_csv()
    path = write(tmp_path, "cut.csv", text[: text.index("P003-D14") + 6])
    with pytest.raises(QpcrFormatError, match="line 4 has .* fields.*truncated"):
        read_plate(path)


# --- Roche LightCycler 480 -------------------------------------------------------------------------

LC_TEXT = (
    "Experiment: CAR-T LC plate 3  Selected Filter: FAM (465-510)\r\n"
    "Include\tColor\tPos\tName\tCp\tConcentration\tStandard\tStatus\r\n"
    "True\t255\tA1\tStd 1e5\t20.12\t1.01E5\t1E5\t\r\n"
    "True\t255\tA2\tP004-D21\t27.5\t8.75E2\t0\t\r\n"
    "True\t65280\tA3\tNTC\t\t\t0\t\r\n"
    "False\t255\tA4\tbubble\t31.02\t\t0\t\r\n"
)


@pytest.mark.parametrize("compressed", [False, True])
def test_lightcycler_plain_and_gzipped(tmp_path, compressed):
    data = LC_TEXT.encode("utf-8")
    name = "lc.txt.gz" if compressed else "lc.txt"
    path = write(tmp_path, name, gzip.compress(data) if compressed else data)
    assert sniff(path) == "lightcycler-480"
    plate = read_plate(path)
    assert plate.run_id == "lightcycler-480:CAR-T LC plate 3"
    assert set(plate.wells["target"]) == {"FAM (465-510)"}
    standard = well(plate, "A1")
    assert standard["task"] == "STANDARD" and standard["standard_quantity"] == 100_000.0
    assert well(plate, "A2")["instrument_quantity"] == 875.0
    empty = well(plate, "A3")
    assert math.isnan(empty["cq"]) and not empty["amplified"] and empty["task"] == "UNKNOWN"
    assert well(plate, "A4")["omitted"]


def test_truncated_gzip_is_refused(tmp_path):
    data = gzip.compress(LC_TEXT.encode() * 20)
    path = write(tmp_path, "cut.txt.gz", data[: len(data) // 2])
    with pytest.raises(QpcrFormatError, match="cut.txt.gz"):
        read_plate(path)


# --- RDML -----------------------------------------------------------------------------------------

RDML_12 = """<?xml version="1.0" encoding="UTF-8"?>
<rdml version="1.2" xmlns="http://www.rdml.org">
  <sample id="STD1"><type>std</type><quantity><value>50000</value><unit>cop</unit></quantity></sample>
  <sample id="P001-D10"><type>unkn</type></sample>
  <sample id="H2O"><type>ntc</type></sample>
  <target id="CAR"><type>toi</type><amplificationEfficiency>1.95</amplificationEfficiency>
    <dyeId id="FAM"/></target>
  <experiment id="CAR-T qPCR 5">
    <run id="run-1">
      <instrument>CFX Opus 96</instrument>
      <runDate>2026-04-01T10:00:00</runDate>
      <pcrFormat><rows>8</rows><columns>12</columns><rowLabel>ABC</rowLabel>
        <columnLabel>123</columnLabel></pcrFormat>
      <react id="1"><sample id="STD1"/><data><tar id="CAR"/><cq>22.5</cq></data></react>
      <react id="13"><sample id="P001-D10"/><data><tar id="CAR"/><cq>26.25</cq>
        <excl>pipetting error</excl></data></react>
      <react id="96"><sample id="H2O"/><data><tar id="CAR"/><cq>-1</cq></data></react>
      <react id="2"><sample id="P001-D10"/><data><tar id="CAR"/><cq>40.0</cq>
        <quantity><value>NaN</value><unit>cop</unit></quantity></data></react>
    </run>
  </experiment>
</rdml>
"""

RDML_STEPONE_NTC = """<?xml version="1.0" encoding="UTF-8"?>
<rdml xmlns="http://www.rdml.org" version="1.0">
  <sample id="NTC"><type>ntc</type></sample>
  <target id="CAR"><type>toi</type><dyeId>FAM</dyeId></target>
  <experiment id="e"><run id="r">
    <react id="A1"><sample id="NTC"/><data><tar id="CAR"/><cq>40.0</cq>
      <quantity><value>NaN</value><unit>cop</unit></quantity></data></react>
    <react id="A2"><sample id="NTC"/><data><tar id="CAR"/><cq>40.0</cq></data></react>
  </run></experiment>
</rdml>
"""


def write_rdml(path: Path, xml: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rdml_data.xml", xml)
    return path


def test_rdml_numbered_reacts_minus_one_and_exclusion(tmp_path):
    path = write_rdml(tmp_path / "run.rdml", RDML_12)
    assert sniff(path) == "rdml"
    plate = read_plate(path)
    assert plate.run_id == "rdml:CAR-T qPCR 5/run-1@2026-04-01T10:00:00"
    assert set(plate.wells["well"]) == {"A1", "B1", "H12", "A2"}
    standard = well(plate, "A1")
    assert standard["standard_quantity"] == 50_000.0 and standard["reporter"] == "FAM"
    assert well(plate, "B1")["omitted"]
    ntc = well(plate, "H12")
    assert math.isnan(ntc["cq"]) and ntc["amp_status"] == "-1" and ntc["task"] == "NTC"
    # a 40.0 on an unknown sample is a real Cq, even with a NaN quantity
    assert well(plate, "A2")["cq"] == 40.0 and well(plate, "A2")["amplified"]
    assert plate.instrument_curves == {"CAR": {"efficiency_pct": pytest.approx(95.0)}}


def test_rdml_stepone_forty_is_none_only_where_marked(tmp_path):
    plate = read_plate(write_rdml(tmp_path / "s1.rdml", RDML_STEPONE_NTC))
    marked, unmarked = well(plate, "A1"), well(plate, "A2")
    assert math.isnan(marked["cq"]) and marked["amp_status"] == "40.0" and not marked["amplified"]
    assert unmarked["cq"] == 40.0 and unmarked["amplified"]
    assert any("Cq 40.0 with quantity NaN" in w for w in plate.warnings)


def test_bare_rdml_xml(tmp_path):
    path = write(tmp_path, "run.xml", RDML_12)
    assert sniff(path) == "rdml"
    assert len(read_plate(path).wells) == 4


def test_rdml_melt_only_is_refused(tmp_path):
    melt = RDML_12.replace("<cq>22.5</cq>", "").replace("<cq>26.25</cq>", "")
    melt = melt.replace("<cq>-1</cq>", "").replace("<cq>40.0</cq>", "")
    melt = melt.replace(
        '<tar id="CAR"/>', '<tar id="CAR"/><mdp><tmp>80</tmp><fluor>1</fluor></mdp>'
    )
    with pytest.raises(QpcrFormatError, match="not a quantification run"):
        read_plate(write_rdml(tmp_path / "melt.rdml", melt))


def test_decimal_comma_is_refused_not_misread(tmp_path):
    rows = [r.replace("27.75,27.75", '"27,75","27,75"') for r in CFX_ROWS]
    with pytest.raises(QpcrFormatError, match="'27,75' is not a number with a decimal point"):
        read_plate(write(tmp_path, "de.csv", cfx_csv(rows=rows)))


# --- bad input -----------------------------------------------------------------------------------


def test_empty_file_is_refused(tmp_path):
    path = write(tmp_path, "empty.txt", b"")
    assert sniff(path) is None
    with pytest.raises(QpcrFormatError, match=r"empty.txt: the file is empty"):
        read_plate(path)


def test_random_bytes_are_refused(tmp_path):
    path = write(tmp_path, "noise.csv", os.urandom(4096))
    assert sniff(path) is None
    with pytest.raises(QpcrFormatError, match=r"noise.csv: .*binary") as error:
        read_plate(path)
    assert "Supported: " in str(error.value)


@pytest.mark.parametrize(
    "content",
    [
        "accession,patient_id,timepoint,collection_date\nA-001,P001,D7,2026-03-09\n",
        '"Program","xPONENT","","FlexMAP 3D"\n"Build","4.3.229.0"\n\n'
        '"Location","Sample","IL-6","IFN-g"\n"1(1,A1)","S1","120.5","88"\n',
        "Well,Sample,Analyte,MFI,Concentration\nA1,S1,IL-6,1023,12.5\n",
    ],
    ids=["manifest", "xponent", "bead-table"],
)
def test_csv_of_another_kind_is_refused(tmp_path, content):
    path = write(tmp_path, "other.csv", content)
    assert sniff(path) is None
    with pytest.raises(QpcrFormatError, match="other.csv: not a recognised qPCR export"):
        read_plate(path)


def test_other_zip_is_refused(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert sniff(path) is None
    with pytest.raises(QpcrFormatError, match="zip archive that is neither"):
        read_plate(path)


def test_extension_is_never_trusted(tmp_path):
    assert sniff(write(tmp_path, "export.csv", quantstudio_text())) == "quantstudio-text"
    assert sniff(write(tmp_path, "export.txt", cfx_csv())) == "cfx-maestro"
    assert sniff(write(tmp_path, "export.xlsx", LC_TEXT)) == "lightcycler-480"


def test_format_names_are_listed():
    assert FORMATS == (
        "quantstudio-text", "abi-7500", "quantstudio-da", "cfx-maestro", "lightcycler-480", "rdml",
    )  # fmt: skip
