"""Synthetic truth: on demo files, after compensation, the trial's CAR+ % of CD3, CD4:CD8 ratio
and B cells/uL are recovered (1 percentage point; 5 % relative for the ratio and counts)."""

from __future__ import annotations

import json

import pytest

from gating import FlowSettings, analyse_fcs
from pipelines.demo import flow_files, trial
from pipelines.demo.flow_files import write_flow_files
from validation.schemas import FLOW_MFI, FLOW_POPULATIONS, FLOW_SAMPLES

CD3 = "Lymphocytes/Singlets/Live/CD3pos"


def _by_path(result) -> dict[str, int]:
    return dict(zip(result.populations["gate_path"], result.populations["count"], strict=True))


def test_tcell_tubes_recover_car_percentage_and_cd4_cd8_ratio(demo_tubes, demo_results):
    for path, tube in demo_tubes.items():
        if tube.panel != "tcell":
            continue
        counts = _by_path(demo_results[path])
        car_pct = 100.0 * counts[f"{CD3}/CARpos"] / counts[CD3]
        ratio = counts[f"{CD3}/CD4_CD8/CD4pos"] / counts[f"{CD3}/CD4_CD8/CD8pos"]
        expected_car = (trial.PRODUCT_CAR_PCT_OF_CD3[tube.patient_id] if tube.timepoint == "PRODUCT"
                        else trial.CAR_PCT_OF_CD3[tube.patient_id][tube.timepoint])  # fmt: skip
        assert car_pct == pytest.approx(expected_car, abs=1.0), path.name
        assert ratio == pytest.approx(trial.CD4_CD8_RATIO[tube.patient_id], rel=0.05), path.name


def test_bcell_tubes_recover_b_cells_per_ul(demo_tubes, demo_results):
    for path, tube in demo_tubes.items():
        if tube.panel != "bcell":
            continue
        result = demo_results[path]
        b_cells = result.populations.set_index("gate_path").loc[f"{CD3[:-6]}CD3neg/CD19pos"]
        expected = trial.B_CELLS_PER_UL[tube.patient_id][tube.timepoint]
        assert b_cells["cells_per_ul"] == pytest.approx(expected, rel=0.05), path.name


def test_frames_have_exactly_the_assay_columns(demo_results):
    result = next(iter(demo_results.values()))
    assert list(result.samples.columns) == FLOW_SAMPLES.assay_column_names
    assert list(result.populations.columns) == FLOW_POPULATIONS.assay_column_names
    assert list(result.mfi.columns) == FLOW_MFI.assay_column_names
    for frame, table in ((result.samples, FLOW_SAMPLES), (result.populations, FLOW_POPULATIONS),
                         (result.mfi, FLOW_MFI)):  # fmt: skip
        assert frame[list(table.required)].notna().all().all(), table.name


def test_sample_row_keeps_only_allowed_keywords_and_reports_identity(demo_tubes, demo_results):
    path, tube = next((p, t) for p, t in demo_tubes.items() if t.timepoint == "PRODUCT")
    result = demo_results[path]
    row = result.samples.iloc[0]
    stored = json.loads(row["keywords_json"])
    assert {"$OP", "$SRC", "$FIL", "TUBE NAME"}.isdisjoint(stored)
    assert stored["$CYT"] == "LSRFortessa" and "$SPILLOVER" in stored
    assert row["compensation_source"] == "$SPILLOVER"
    assert row["panel"] == "tcell" and row["sample_name"] == tube.accession
    assert result.identity["$SRC"] == tube.accession
    assert result.identity["TUBE NAME"] == "T cell CAR panel"


def test_mfi_is_compensated(demo_tubes, demo_results):
    """CD4+ BV421 spills 16 % into the viability dye's BV510 detector; compensated, the CD4+
    cells' viability median stays at the unstained level (true median 0)."""
    path = next(p for p, t in demo_tubes.items() if t.panel == "tcell")
    mfi = demo_results[path].mfi.set_index(["gate_path", "marker"])
    cd4_viability = mfi.loc[(f"{CD3}/CD4_CD8/CD4pos", "Viability"), "median_compensated"]
    cd4 = mfi.loc[(f"{CD3}/CD4_CD8/CD4pos", "CD4"), "median_compensated"]
    assert cd4 > 5_000
    assert abs(cd4_viability) < 50


def test_panel_detected_from_markers_when_no_keyword_names_it(demo_tubes):
    path = next(p for p, t in demo_tubes.items() if t.panel == "bcell")
    settings = FlowSettings(panel_keywords=())
    assert analyse_fcs(path, settings).samples.loc[0, "panel"] == "bcell"


def test_demo_covers_every_draw_and_product(monkeypatch, tmp_path):
    tubes = flow_files.demo_tubes()
    assert len(tubes) == 2 * len(trial.study_samples()) + len(trial.PATIENTS)
    assert {t.accession for t in tubes if t.timepoint == "PRODUCT"} == {
        f"{p}_PRODUCT" for p in trial.PATIENTS
    }
    monkeypatch.setattr(flow_files, "demo_tubes", lambda: tubes[:1])
    paths = write_flow_files(tmp_path, seed=3)
    truth = json.loads((tmp_path / "flow_truth.json").read_text())
    assert [p.name for p in paths] == [t["file"] for t in truth] == [tubes[0].file_name]
