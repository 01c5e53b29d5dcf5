"""The pipeline's adapter: a table of the three assay libraries, identity added to their rows,
their verdicts and bad-input errors turned into refusals a technician reads."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from pipelines.assays import (
    CBA,
    COMPLETE_MANIFEST,
    FIX_FILE,
    QPCR,
    Recognised,
    Rejection,
    compute,
    recognise,
)
from pipelines.demo.qpcr_files import write_quantstudio_text
from pipelines.demo.qpcr_plates import FAILING_CURVES, GOOD_CURVES, TrueCurve, build_plate
from pipelines.demo.trial import Sample
from pipelines.identity import IdentityResolver, ManifestEntry
from pipelines.settings import DEFAULT_SAMPLE_NAME_PATTERN, Settings
from qpcr import QpcrSettings

ACCESSION = "S26-0417"
MANIFEST = [ManifestEntry(ACCESSION, "P007", "D14", date(2026, 3, 2), date(2026, 2, 16), 50.0)]


def _export(tmp_path: Path, curves: dict[str, TrueCurve], names: list[str]) -> Path:
    sample = Sample("x", "P001", "D14", date(2026, 1, 1), 200.0)
    plate = build_plate(
        instrument_format="quantstudio-text", run_id="run-7", instrument="QuantStudio 7 Flex",
        run_started=datetime(2026, 5, 1, 9), samples=[(n, sample) for n in names],
        curves=curves, rng=np.random.default_rng(0), wells_per_plate=96,
    )  # fmt: skip
    path = tmp_path / "plate.txt"
    write_quantstudio_text(path, plate)
    return path


def _resolver() -> IdentityResolver:
    return IdentityResolver(MANIFEST, DEFAULT_SAMPLE_NAME_PATTERN)


def test_a_qpcr_plate_gets_identity_and_manifest_facts_on_its_sample_rows_only(
    tmp_path: Path,
) -> None:
    path = _export(tmp_path, GOOD_CURVES, [ACCESSION, "P002_D7"])
    recognised = recognise(path)
    assert recognised == Recognised(QPCR, "quantstudio-text")
    settings = Settings(qpcr=QpcrSettings(default_dna_input_ng=100.0))
    assay = compute(path, recognised, settings, _resolver())
    assert assay.qc_failure is None and assay.run_identity.startswith("quantstudio-text:")
    copies = assay.tables["car_copies"].set_index(["sample_name", "target"])
    manifest_row = copies.loc[(ACCESSION, "CAR")]
    assert (manifest_row["patient_id"], manifest_row["timepoint"]) == ("P007", "D14")
    assert manifest_row["collection_date"] == date(2026, 3, 2)
    assert manifest_row["dna_input_ng"] == 50.0 and manifest_row["dna_input_source"] == "manifest"
    named_by_pattern = copies.loc[("P002_D7", "CAR")]
    assert named_by_pattern["patient_id"] == "P002"
    assert (named_by_pattern["dna_input_ng"], named_by_pattern["dna_input_source"]) == (
        100.0,
        "setting",
    )  # the library's choice of input stands: no manifest input to write over it
    wells = assay.tables["qpcr_wells"]
    assert wells.loc[wells["task"] != "UNKNOWN", "patient_id"].isna().all()
    assert wells.loc[wells["sample_name"] == "PC", "patient_id"].isna().all()
    assert assay.samples == [("P002", "D7", "CAR"), ("P007", "D14", "CAR")]


def test_a_failed_plate_keeps_its_qc_tables_and_says_to_rerun(tmp_path: Path) -> None:
    path = _export(tmp_path, FAILING_CURVES, ["P002_D7"])
    assay = compute(path, recognise(path), Settings(), _resolver())
    assert set(assay.tables) == {"qpcr_wells", "qpcr_runs"}
    assert assay.qc_failure.startswith("plate.txt: plate failed QC, no result reported for P002_D7")
    assert assay.samples == [("P002", "D7", "CAR")]


def test_an_unknown_sample_is_refused_with_the_manifest_as_the_remedy(tmp_path: Path) -> None:
    path = _export(tmp_path, GOOD_CURVES, ["S26-9999"])
    with pytest.raises(Rejection) as refused:
        compute(path, recognise(path), Settings(), _resolver())
    assert refused.value.reason.startswith("identity: ") and "S26-9999" in refused.value.reason
    assert refused.value.action == COMPLETE_MANIFEST


@pytest.mark.conformance
def test_one_raw_bead_fcs_file_is_refused_with_what_to_drop_instead(shared_data: Path) -> None:
    path = shared_data / "cba" / "legendplex_K2-C07-A7.fcs"
    recognised = recognise(path)
    assert recognised == Recognised(CBA, "bead-fcs")
    with pytest.raises(Rejection) as refused:
        compute(path, recognised, Settings(), _resolver())
    assert refused.value.reason.startswith(
        "legendplex_K2-C07-A7.fcs: one raw bead-array FCS file is one well of a plate"
    )
    assert str(shared_data) not in refused.value.reason
    assert (refused.value.kind, refused.value.action) == (CBA, FIX_FILE)
