"""Every assay library meets one contract (docs/assay-libraries.md): checked on each of them
with real instrument files where the shared data holds one, else with the demo's exports."""

from __future__ import annotations

import json
import zipfile
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cba.assay
import gating.assay
import qpcr
import qpcr.assay
from assaykit import FAILED_QC, PASSED, REFUSED, Analysis, AssayInputError, SampleNames
from cba import LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX, CbaFormatError, CbaSettings, analyse_plate
from gating import FlowFormatError, FlowSettings, FlowTemplateError
from pipelines.demo.flow_files import demo_tubes, write_tube
from pipelines.demo.qpcr_plates import FAILING_CURVES, GOOD_CURVES, TrueCurve, build_plate
from pipelines.demo.trial import Sample
from qpcr import QpcrFormatError, QpcrSettings
from tests.cba.synthetic import SAMPLES_PG_ML, make_plate
from validation.schemas import TABLES

LIBRARIES = [qpcr.assay, cba.assay, gating.assay]


@pytest.mark.parametrize("library", LIBRARIES, ids=["qpcr", "cba", "flow"])
def test_each_library_exposes_the_contract(library) -> None:
    for name in ("FORMATS", "sniff", "read", "sample_names", "analyse"):
        assert hasattr(library, name), f"{library.__name__} has no {name}"
    assert len(set(library.FORMATS)) == len(library.FORMATS)


def test_every_bad_input_error_shares_one_base_that_is_not_a_bug() -> None:
    for error in (QpcrFormatError, CbaFormatError, FlowFormatError, FlowTemplateError):
        assert issubclass(error, AssayInputError)
    assert not issubclass(KeyError, AssayInputError)


def _assert_tables_follow_the_registry(analysis: Analysis) -> None:
    for table, frame in analysis.tables.items():
        assert set(frame.columns) <= set(TABLES[table].assay_column_names), table


@pytest.mark.conformance
def test_qpcr_sniff_read_analyse_on_a_real_cfx_export(shared_data: Path) -> None:
    path = shared_data / "qpcr" / "cfxmaestro_example01.csv"
    fmt = qpcr.assay.sniff(path)
    assert fmt == "cfx-maestro"
    plate = qpcr.assay.read(path, fmt)
    settings = QpcrSettings()
    names = qpcr.assay.sample_names(plate, settings)
    assert names.names[:2] == ("M3890 R Ctx", "M3897 R Ctx") and not names.whole_file
    analysis = qpcr.assay.analyse(plate, settings)
    assert analysis.supersede_key == "cfx-maestro:cfxmaestro_example01"
    assert analysis.verdict.outcome == PASSED
    assert set(analysis.tables) == {"qpcr_wells", "qpcr_runs", "car_copies"}
    assert len(analysis.tables["qpcr_wells"]) == 48
    _assert_tables_follow_the_registry(analysis)


@pytest.mark.conformance
def test_the_format_is_handed_on_not_detected_again(shared_data: Path) -> None:
    """`read` reads the format it is given: a CFX export read as RDML is refused as RDML."""
    path = shared_data / "qpcr" / "cfxmaestro_example01.csv"
    with pytest.raises(QpcrFormatError, match="cfxmaestro_example01.csv"):
        qpcr.assay.read(path, "rdml")


def _plate(curves: dict[str, TrueCurve]) -> qpcr.QpcrPlate:
    """A 96-well plate with standards, NTCs, the positive control and sample P001_D7."""
    sample = Sample("x", "P001", "D7", date(2026, 1, 1), 200.0)
    return build_plate(
        instrument_format="quantstudio-text", run_id="run-1", instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[("P001_D7", sample)], curves=curves,
        rng=np.random.default_rng(0), wells_per_plate=96,
    )  # fmt: skip


def test_a_failed_qpcr_plate_keeps_its_qc_tables_and_names_what_to_do() -> None:
    plate = _plate(FAILING_CURVES)
    settings = QpcrSettings()
    analysis = qpcr.assay.analyse(plate, settings, {"P001_D7": {"dna_input_ng": 100.0}})
    assert analysis.verdict.outcome == FAILED_QC
    assert set(analysis.tables) == {"qpcr_wells", "qpcr_runs"}
    assert analysis.verdict.message.startswith("plate failed QC, no result reported for P001_D7: ")
    assert analysis.verdict.message.endswith("(this run's QC figures are kept in qpcr_runs)")
    assert analysis.verdict.reasons and all(
        r in analysis.verdict.message for r in analysis.verdict.reasons
    )
    assert {name for name, _ in analysis.results} == {"P001_D7"}


def test_qpcr_dna_input_from_the_manifest_gives_copies_per_ug() -> None:
    plate = _plate(GOOD_CURVES)
    settings = QpcrSettings()
    without = qpcr.assay.analyse(plate, settings).tables["car_copies"]
    given = qpcr.assay.analyse(plate, settings, {"P001_D7": {"dna_input_ng": 100.0}})
    copies = given.tables["car_copies"]
    car = copies[copies["target"] == "CAR"].iloc[0]
    assert without[without["target"] == "CAR"]["copies_per_ug"].isna().all()
    assert car["dna_input_source"] == "manifest"
    assert car["copies_per_ug"] == pytest.approx(car["copies_per_reaction"] / 0.1)


def test_cba_refuses_a_plate_whose_every_curve_failed_and_one_without_samples() -> None:
    settings = CbaSettings()
    good = make_plate()
    assert cba.assay.analyse(good, settings).verdict.outcome == PASSED
    # the same standards written 1000x too large from the third level on: no curve is usable
    broken = make_plate(levels=[10000 / 4**i * (1000 if i >= 2 else 1) for i in range(7)] + [0.0])
    verdict = cba.assay.analyse(broken, settings).verdict
    assert verdict.outcome == REFUSED
    assert verdict.message.startswith("every standard curve failed; standard series broken")
    no_samples = make_plate()
    no_samples.wells = no_samples.wells[no_samples.wells["type"] != "sample"]
    verdict = cba.assay.plate_verdict(analyse_plate(no_samples, settings))
    assert (verdict.outcome, verdict.message) == (REFUSED, "the plate has no sample wells")


@pytest.mark.conformance
def test_cba_sniff_read_then_refuse_a_real_xponent_export_without_standards(
    shared_data: Path,
) -> None:
    """The real xPONENT file holds sample MFIs but no standard concentrations: read, then refused
    as bad input (a library error a technician can act on), not a fault."""
    path = shared_data / "cba" / "luminex_xPONENT_example02.csv"
    fmt = cba.assay.sniff(path)
    assert fmt == "luminex-xponent-csv"
    plate = cba.assay.read(path, fmt, CbaSettings())
    names = cba.assay.sample_names(plate, CbaSettings())
    assert names == SampleNames(tuple(plate.sample_names)) and names.names
    with pytest.raises(AssayInputError, match="no standard wells with a known concentration"):
        cba.assay.analyse(plate, CbaSettings())


def test_cba_analysis_of_a_plate_with_standards_follows_the_registry() -> None:
    analysis = cba.assay.analyse(make_plate(), CbaSettings())
    assert analysis.supersede_key == "test:plate"
    assert len(analysis.tables["cytokines"]) == len(analysis.tables["cba_curves"]) * len(
        SAMPLES_PG_ML
    )
    _assert_tables_follow_the_registry(analysis)


@pytest.mark.conformance
def test_one_raw_bead_fcs_file_is_refused_with_what_to_drop_instead(shared_data: Path) -> None:
    path = shared_data / "cba" / "legendplex_K2-C07-A7.fcs"
    assert cba.assay.sniff(path) == "bead-fcs"
    with pytest.raises(CbaFormatError) as refused:
        cba.assay.read(path, "bead-fcs")
    reason = str(refused.value)
    assert reason.startswith(
        "legendplex_K2-C07-A7.fcs: one raw bead-array FCS file is one well of a plate "
        "(standard C7, well A7)"
    )
    assert "panel.json" in reason and "MFI table" in reason and "pass panel=" not in reason


@pytest.mark.conformance
def test_the_plate_zipped_with_its_panel_is_read_as_the_refusal_says(
    shared_data: Path, tmp_path: Path
) -> None:
    """The path the refusal names: the plate's files zipped with panel.json are one export."""
    source = shared_data / "cba" / "legendplex_K2-C07-A7.fcs"
    panel = tmp_path / "panel.json"
    panel.write_text(_panel_json())
    archive = tmp_path / "plate.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(source, source.name)
        handle.write(panel, "panel.json")
    assert cba.assay.sniff(archive) == "bead-fcs-plate"
    plate = cba.assay.read(archive, "bead-fcs-plate", CbaSettings())
    standards = plate.wells[plate.wells["type"] == "standard"]
    assert set(standards["well"]) == {"A7"}
    assert set(standards["analyte"]) == {
        bead.analyte
        for beads in LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX.groups.values()
        for bead in beads
    }


def _panel_json() -> str:
    """The 13-plex panel in the layout `BeadPanel.from_dict` reads, as a lab would write it."""
    panel = LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX
    return json.dumps({
        "panel_name": panel.name,
        "std_dilution": panel.dilution_factor,
        "analytes": {
            group: {b.bead_id: {"name": b.analyte, "concentration": b.top_pg_ml} for b in beads}
            for group, beads in panel.groups.items()
        },
    })  # fmt: skip


def test_flow_tube_is_one_sample_with_its_names_and_acquisition_key(tmp_path: Path) -> None:
    tube = demo_tubes()[0]
    path = write_tube(tmp_path / tube.file_name, tube, np.random.default_rng(3))
    fmt = gating.assay.sniff(path)
    assert fmt in gating.assay.FORMATS
    export = gating.assay.read(path, fmt)
    names = gating.assay.sample_names(export, FlowSettings())
    assert names.whole_file and names.names[0] == export.keywords["$SRC"]
    analysis = gating.assay.analyse(export, FlowSettings())
    assert analysis.supersede_key.startswith("flow:panel=")
    assert f"sample={export.keywords['$SRC']}" in analysis.supersede_key
    assert analysis.verdict.outcome == PASSED
    _assert_tables_follow_the_registry(analysis)
    assert pd.Series(analysis.tables["flow_populations"]["count"]).gt(0).any()
