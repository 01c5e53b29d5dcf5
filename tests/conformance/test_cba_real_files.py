"""The bead-array library on real instrument files (../shared/data/cba)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cba import (
    LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX,
    CbaAnalysisError,
    analyse_plate,
    read_bead_fcs,
    read_plate,
    sniff,
)

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def cba_dir(shared_data: Path) -> Path:
    return shared_data / "cba"


def test_every_real_file_is_recognised(cba_dir: Path) -> None:
    assert {p.name: sniff(p) for p in sorted(cba_dir.iterdir())} == {
        "legendplex_K2-C07-A7.fcs": "bead-fcs",
        "luminex_intelliflex_v2_2.csv": "luminex-intelliflex-csv",
        "luminex_xPONENT_example02.csv": "luminex-xponent-csv",
    }


def test_xponent_file(cba_dir: Path) -> None:
    path = cba_dir / "luminex_xPONENT_example02.csv"
    plate = read_plate(path)
    assert "'alpha', 'bravo'; their rows are kept" in plate.warnings[0]
    assert not plate.wells["analyte_recognised"].any()
    assert plate.run_id == "xponent:FM3DD20137021:PCD00360_184221_20230517:5/17/2023 6:42:29 PM"
    wells = plate.wells.set_index(["well", "analyte"])
    assert list(dict.fromkeys(plate.wells["well"])) == ["A1", "B1", "C1", "D1"]
    assert plate.analytes == ["alpha", "bravo"]
    assert wells.loc[("A1", "alpha"), "mfi"] == 10921.5
    assert wells.loc[("D1", "bravo"), "mfi"] == 28980
    assert set(plate.wells["type"]) == {"sample"}
    with pytest.raises(CbaAnalysisError, match="no standard wells"):
        analyse_plate(plate)


def test_intelliflex_file(cba_dir: Path) -> None:
    path = cba_dir / "luminex_intelliflex_v2_2.csv"
    plate = read_plate(path)
    assert "'HPV6'" in plate.warnings[0]
    assert plate.run_id == "intelliflex:IFLXTEST001:TEST_PLATE_001:2026-02-25 04:42:08 PM"
    assert len(plate.analytes) == 14 and plate.analytes[:2] == ["HPV6", "HPV11"]
    assert len(set(plate.wells["well"])) == 10
    wells = plate.wells.set_index(["well", "analyte"])
    assert wells.loc[("B1", "HPV6"), "mfi"] == pytest.approx(6.05021)
    assert wells.loc[("B1", "HPV6"), "sample_dilution"] == 15
    assert wells.loc[("A1", "HPV6"), "mfi"] != wells.loc[("A1", "HPV6"), "mfi"]  # dry: NaN, not 0
    assert sum("Dry" in w for w in plate.warnings) == 8


@pytest.mark.slow  # importing allotropy takes 3-15 s
def test_luminex_medians_agree_with_allotropy(cba_dir: Path) -> None:
    allotropy = pytest.importorskip("allotropy.to_allotrope")
    from allotropy.parser_factory import Vendor

    path = cba_dir / "luminex_xPONENT_example02.csv"
    asm = allotropy.allotrope_from_file(str(path), Vendor.LUMINEX_XPONENT)
    theirs = {}
    for doc in asm["multi analyte profiling aggregate document"][
        "multi analyte profiling document"
    ]:
        for measurement in doc["measurement aggregate document"]["measurement document"]:
            well = measurement["sample document"]["location identifier"]
            for analyte in measurement["analyte aggregate document"]["analyte document"]:
                stats = analyte["statistics aggregate document"]["statistics document"][0]
                value = stats["statistic dimension aggregate document"][
                    "statistic dimension document"
                ][0]
                theirs[(well, analyte["analyte name"])] = value["statistical value"]["value"]
    ours = read_plate(path).wells
    assert {
        (w, a): m for w, a, m in zip(ours["well"], ours["analyte"], ours["mfi"], strict=True)
    } == theirs


def test_legendplex_fcs_bead_populations(cba_dir: Path) -> None:
    path = cba_dir / "legendplex_K2-C07-A7.fcs"
    well = read_bead_fcs(path)
    assert (well.identity.kit, well.identity.label, well.identity.well) == ("K2", "C7", "A7")
    counts = well.populations.groupby("bead_group").size().to_dict()
    assert counts == {"A": 6, "B": 7}
    assert well.populations["n_events"].min() > 200
    assert well.populations["pe_median"].min() > 50_000  # the top standard lights every bead


def test_legendplex_fcs_with_the_th_panel(cba_dir: Path) -> None:
    path = cba_dir / "legendplex_K2-C07-A7.fcs"
    plate = read_plate(path, panel=LEGENDPLEX_HUMAN_TH_CYTOKINE_13PLEX)
    assert len(plate.wells) == 13
    assert set(plate.wells["type"]) == {"standard"}
    assert set(plate.wells["standard_pg_ml"]) == {10000.0}
    assert plate.run_id == "bead-fcs:AS12113:2016-10-25:K2"
    by_analyte = plate.wells.set_index("analyte")
    assert by_analyte.loc["IL-6", "analyte_as_exported"] == "A7"
    assert by_analyte.loc["IFN-γ", "mfi"] == pytest.approx(113600.9, rel=1e-3)
