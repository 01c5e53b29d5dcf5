"""RDML 1.4 and LightCycler 96-style RDML, made in the test from the shipped RDML files and read
back well by well against the shipped file's reading."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from qpcr.readers import read_plate
from tests.qpcr_readers.shipped_exports import RDML_NS, rdml_root, write_rdml_root

pytestmark = pytest.mark.conformance

COMPARED = ["well", "sample_name", "target", "task", "cq", "standard_quantity"]


def migrated_to_1_3(source: Path) -> etree._Element:
    """The shipped file brought to RDML 1.3 by rdmlpython's own migrations."""
    from rdmlpython import rdml

    document = rdml.Rdml()
    document.loadXMLString(etree.tostring(rdml_root(source), encoding="unicode"))
    steps = {"1.0": "migrate_version_1_0_to_1_1", "1.1": "migrate_version_1_1_to_1_2",
             "1.2": "migrate_version_1_2_to_1_3"}  # fmt: skip
    while document.version() in steps:
        getattr(document, steps[document.version()])()
    return document._node


def as_rdml_1_4(root: etree._Element) -> etree._Element:
    """A 1.3 document as 1.4, with the elements 1.4 added (changes_v1.3_to_v1.4.txt)."""
    root.set("version", "1.4")
    for sample in root.iter(RDML_NS + "sample"):
        etree.SubElement(sample, RDML_NS + "doubleStranded").text = "true"
    for react in root.iter(RDML_NS + "react"):
        react.insert(1, etree.Element(RDML_NS + "vol"))
        react[1].text = "20"
        for data in react.findall(RDML_NS + "data"):
            data.insert(1, etree.Element(RDML_NS + "Ncopy"))
            data[1].text = "-1.0"
    return root


def compared(wells: pd.DataFrame) -> pd.DataFrame:
    return wells[COMPARED].sort_values(["well", "target"]).reset_index(drop=True)


def test_rdml_1_4_from_biorad_reads_as_the_shipped_file(shared_data, tmp_path):
    source = shared_data / "qpcr" / "BioRad_qPCR_melt.rdml"
    path = write_rdml_root(tmp_path / "biorad_1_4.rdml", as_rdml_1_4(migrated_to_1_3(source)))
    assert b'version="1.4"' in etree.tostring(rdml_root(path))
    pd.testing.assert_frame_equal(
        compared(read_plate(path).wells), compared(read_plate(source).wells)
    )


def test_rdml_1_4_from_stepone_reads_as_the_shipped_file(shared_data, tmp_path):
    """The StepOne converter marks its NTCs with Cq 40.0 and a NaN quantity, which RDML 1.1+
    cannot carry; the 1.4 copy writes RDML's own "not available" (-1.0) there instead."""
    source = shared_data / "qpcr" / "stepone_std.rdml"
    root = as_rdml_1_4(migrated_to_1_3(source))
    ntc_samples = {s.get("id") for s in root.findall(RDML_NS + "sample")
                   if s.findtext(RDML_NS + "type") == "ntc"}  # fmt: skip
    for react in root.iter(RDML_NS + "react"):
        if react.find(RDML_NS + "sample").get("id") in ntc_samples:
            for cq in react.iter(RDML_NS + "cq"):
                cq.text = "-1.0"
    path = write_rdml_root(tmp_path / "stepone_1_4.rdml", root)
    ours, shipped = read_plate(path), read_plate(source)
    pd.testing.assert_frame_equal(compared(ours.wells), compared(shipped.wells))
    assert len(ours.wells) == 24 and (~ours.wells["amplified"]).sum() == 3
    assert set(ours.wells.loc[~ours.wells["amplified"], "amp_status"]) == {"-1.0"}


def lc96_style(source: Path, target_name: str = "RNase P") -> tuple[etree._Element, dict[str, str]]:
    """The StepOne file written as a LightCycler 96 writes RDML 1.1: Roche as publisher, sample
    ids as GUIDs with the name in <description>, the target as `FAM@<target_name>`, no Cq as 100, and an
    empty Cy5 channel (`Cy5@<GUID>`) in the NTC wells. Returns it and GUID -> sample name."""
    root = migrated_to_1_3(source)
    root.set("version", "1.1")
    identity = etree.Element(RDML_NS + "id")
    etree.SubElement(identity, RDML_NS + "publisher").text = "Roche Diagnostics"
    root.insert(2, identity)
    names = {}
    for sample in root.findall(RDML_NS + "sample"):
        guid = str(uuid.uuid5(uuid.NAMESPACE_OID, sample.get("id")))
        names[guid] = sample.get("id")
        description = etree.Element(RDML_NS + "description")
        description.text = sample.get("id")
        sample.insert(0, description)
        sample.set("id", guid)
    channel = f"Cy5@{uuid.uuid5(uuid.NAMESPACE_OID, 'Cy5')}"
    target = root.find(RDML_NS + "target")
    target.set("id", f"FAM@{target_name}")
    empty = etree.fromstring(f'<target xmlns="http://www.rdml.org" id="{channel}"><type>ref</type>'
                             '<dyeId id="Cy5"/></target>')  # fmt: skip
    target.addnext(empty)
    guids = {v: k for k, v in names.items()}
    for react in root.iter(RDML_NS + "react"):
        sample = react.find(RDML_NS + "sample")
        sample.set("id", guids[sample.get("id")])
        for tar in react.iter(RDML_NS + "tar"):
            tar.set("id", f"FAM@{target_name}")
        if names[sample.get("id")].startswith("NTC"):
            react.find(f"{RDML_NS}data/{RDML_NS}cq").text = "100"
            react.append(etree.fromstring(f'<data xmlns="http://www.rdml.org"><tar id="{channel}"/>'
                                          "<cq>100</cq></data>"))  # fmt: skip
    return root, names


def test_lightcycler_96_style_names_targets_and_no_cq(shared_data, tmp_path):
    source = shared_data / "qpcr" / "stepone_std.rdml"
    root, _ = lc96_style(source)
    plate = read_plate(write_rdml_root(tmp_path / "lc96.rdml", root))
    shipped = read_plate(source)
    ours = plate.wells[plate.wells["target"] == "RNase P"]
    pd.testing.assert_frame_equal(compared(ours), compared(shipped.wells))
    assert set(ours.loc[~ours["amplified"], "amp_status"]) == {"100"}
    channel = plate.wells[plate.wells["target"] == "Cy5"]
    assert len(channel) == 3 and set(channel["task"]) == {"NTC"}
    assert channel["cq"].map(math.isnan).all() and set(channel["reporter"]) == {"Cy5"}


def test_lightcycler_96_plate_named_in_a_manifest_is_ingested(shared_data, tmp_path):
    """Before: `internal error while processing (KeyError: 'sample_name')` - a channel target
    without sample wells broke the analysis, and the GUIDs were the sample names."""
    from pipelines.home import LabHome
    from pipelines.ingest import Processor
    from pipelines.warehouse import connect

    home = LabHome(tmp_path / "lab").ensure()
    (home.root / "cartflow.toml").write_text("[qpcr]\ndefault_dna_input_ng = 200\n")
    manifest = home.inbox / "manifest.csv"
    manifest.write_text(
        "accession,patient_id,timepoint,collection_date\n"
        "pop1_RNase P,P071,D14,2026-02-01\npop2_RNase P,P072,D14,2026-02-02\n"
    )
    processor = Processor(home)
    assert processor.process(manifest, "run-1").status == "ingested"
    root, _ = lc96_style(shared_data / "qpcr" / "stepone_std.rdml", target_name="CAR")
    plate = write_rdml_root(home.inbox / "lc96.rdml", root)
    outcome = processor.process(plate, "run-2")
    assert outcome.status == "ingested", outcome.reason
    rows = (
        connect(home.warehouse)
        .execute("select sample_name, patient_id from car_copies order by 1")
        .fetchall()
    )
    assert rows == [("pop1_RNase P", "P071"), ("pop2_RNase P", "P072")]
