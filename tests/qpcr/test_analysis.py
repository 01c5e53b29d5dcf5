"""qPCR maths against synthetic plates whose truth is known exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from qpcr.analysis import RESULTS, analyse_plate
from qpcr.curve import CurveError, fit_standard_curve
from qpcr.model import WELL_COLUMNS, QpcrPlate
from qpcr.settings import QpcrSettings

PERFECT_SLOPE = -1.0 / np.log10(2.0)  # each cycle doubles: efficiency exactly 100 %


def _well(well, sample, target, task, cq, quantity=np.nan, dna=np.nan):
    amplified = not np.isnan(cq)
    return {
        "well": well, "sample_name": sample, "target": target, "reporter": "FAM", "task": task,
        "cq": cq, "amp_status": "AMP" if amplified else "Undetermined", "amplified": amplified,
        "standard_quantity": quantity, "instrument_quantity": np.nan, "dna_input_ng": dna,
        "omitted": False,
    }  # fmt: skip


def _plate(wells: list[dict]) -> QpcrPlate:
    return QpcrPlate("test", "run-1", pd.DataFrame(wells, columns=list(WELL_COLUMNS)))


def _standards(target: str, slope: float, intercept: float, levels=range(1, 7)) -> list[dict]:
    wells = []
    for level in levels:
        quantity = 10.0**level
        for rep in range(3):
            wells.append(_well(f"S{level}{rep}", f"Std{level}", target, "STANDARD",
                               slope * level + intercept, quantity))  # fmt: skip
    return wells


def test_perfect_dilution_series_gives_100_percent_efficiency_and_r2_of_1():
    quantities = np.repeat(10.0 ** np.arange(1, 7), 3)
    curve = fit_standard_curve(quantities, PERFECT_SLOPE * np.log10(quantities) + 40.0, 3)
    assert curve.efficiency_pct == pytest.approx(100.0, abs=1e-9)
    assert curve.r_squared == pytest.approx(1.0, abs=1e-12)
    assert curve.intercept == pytest.approx(40.0)
    assert (curve.lowest_standard, curve.highest_standard, curve.n_levels) == (10.0, 1e6, 6)


def test_curve_needs_enough_levels():
    with pytest.raises(CurveError, match="2 standard level"):
        fit_standard_curve(np.array([10.0, 100.0, np.nan]), np.array([30.0, 27.0, 20.0]), 3)


@pytest.mark.parametrize("true_copies", [12.0, 150.0, 2_400.0, 37_000.0, 520_000.0])
def test_copies_recovered_within_10_percent_over_five_decades(true_copies):
    slope, intercept = -3.36, 38.9
    wells = _standards("CAR", slope, intercept)
    cq = slope * np.log10(true_copies) + intercept
    wells += [_well(f"U{i}", "P001_D14", "CAR", "UNKNOWN", cq + d, dna=200.0)
              for i, d in enumerate((-0.05, 0.0, 0.05))]  # fmt: skip
    result = analyse_plate(_plate(wells), QpcrSettings())
    row = result.copies.iloc[0]
    assert row["copies_per_reaction"] == pytest.approx(true_copies, rel=0.10)
    assert row["copies_per_ug"] == pytest.approx(true_copies / 0.2, rel=0.10)
    assert row["dna_input_source"] == "export"
    assert row["cq_sd"] == pytest.approx(0.05)
    assert not row["below_loq"]
    assert result.runs.iloc[0]["qc_verdict"] == "PASS"


def test_qc_fails_outside_efficiency_window_and_names_the_rule():
    wells = _standards("CAR", -4.1, 42.0)  # efficiency 10^(1/4.1) - 1 = 75.3 %
    wells += [_well("U1", "x", "CAR", "UNKNOWN", 30.0)]
    run = analyse_plate(_plate(wells), QpcrSettings()).runs.iloc[0]
    assert run["curve_verdict"] == "FAIL"
    assert run["qc_verdict"] == "FAIL"
    assert "efficiency 75.3% within 90-110%: FAIL" in run["qc_rules"]


def test_efficiency_window_is_a_setting():
    wells = _standards("CAR", -4.1, 42.0) + [_well("U1", "x", "CAR", "UNKNOWN", 30.0)]
    lenient = QpcrSettings(efficiency_min_pct=70.0)
    assert analyse_plate(_plate(wells), lenient).runs.iloc[0]["qc_verdict"] == "PASS"


def test_contaminated_ntc_fails_the_plate_late_ntc_does_not():
    base = _standards("CAR", -3.32, 38.0) + [_well("U1", "x", "CAR", "UNKNOWN", 30.0)]
    late = base + [_well("N1", "NTC", "CAR", "NTC", 38.5), _well("N2", "NTC", "CAR", "NTC", np.nan)]
    run = analyse_plate(_plate(late), QpcrSettings()).runs.iloc[0]
    assert (run["ntc_verdict"], run["ntc_amplified"], run["ntc_wells"]) == ("PASS", 0, 2)
    early = base + [_well("N1", "NTC", "CAR", "NTC", 33.0)]
    run = analyse_plate(_plate(early), QpcrSettings()).runs.iloc[0]
    assert (run["ntc_verdict"], run["qc_verdict"]) == ("FAIL", "FAIL")


def test_no_amplification_is_not_detected_with_no_copy_number_never_0_nor_cycle_40():
    wells = _standards("CAR", -3.32, 38.0)
    wells += [_well(f"U{i}", "P001_BL", "CAR", "UNKNOWN", np.nan, dna=200.0) for i in range(3)]
    row = analyse_plate(_plate(wells), QpcrSettings()).copies.iloc[0]
    assert row["n_amplified"] == 0
    assert np.isnan(row["cq_mean"])
    assert (row["result"], row["result_reason"]) == (
        "not_detected", "not detected: 0 of 3 replicates amplified",
    )  # fmt: skip
    assert np.isnan(row["copies_per_reaction"]) and np.isnan(row["copies_per_ug"])
    assert np.isnan(row["copies_per_reference_copy"])
    assert row["below_lod"] and row["below_loq"]


def test_loq_is_lowest_standard_whose_replicates_all_amplified():
    wells = _standards("CAR", -3.32, 38.0, levels=range(2, 7))
    wells += [_well("L1", "Std1", "CAR", "STANDARD", 34.68, 10.0),
              _well("L2", "Std1", "CAR", "STANDARD", np.nan, 10.0)]  # fmt: skip
    wells += [_well("U1", "s", "CAR", "UNKNOWN", -3.32 * np.log10(50) + 38.0, dna=250.0)]
    result = analyse_plate(_plate(wells), QpcrSettings())
    assert result.runs.iloc[0]["loq_copies_per_reaction"] == 100.0
    row = result.copies.iloc[0]
    assert row["result"] == "below_loq"  # the estimate is kept and flagged, not stored as 0
    assert row["result_reason"] == "detected in 1 of 1 replicates, 50 copies/reaction < LOQ 100"
    assert row["copies_per_reaction"] == pytest.approx(50.0, rel=1e-6)
    assert row["copies_per_ug"] == pytest.approx(200.0, rel=1e-6)
    assert row["below_loq"] and not row["below_lod"]


def test_replicate_sd_flag_and_reference_gene_normalisation():
    wells = _standards("CAR", -3.32, 38.0) + _standards("RNaseP", -3.40, 39.0)
    car_cq = -3.32 * np.log10(1_000) + 38.0
    ref_cq = -3.40 * np.log10(60_000) + 39.0
    wells += [_well(f"C{i}", "s1", "CAR", "UNKNOWN", car_cq + d)
              for i, d in enumerate((-0.6, 0.0, 0.6))]  # fmt: skip
    wells += [_well(f"R{i}", "s1", "RNaseP", "UNKNOWN", ref_cq) for i in range(3)]
    result = analyse_plate(_plate(wells), QpcrSettings(), dna_input_ng={"s1": 100.0})
    assert len(result.copies) == 1  # the reference gene is not reported as a sample row
    row = result.copies.iloc[0]
    assert row["replicate_sd_ok"] is False or row["replicate_sd_ok"] == False  # noqa: E712
    assert row["reference_target"] == "RNaseP"
    assert row["reference_copies_per_reaction"] == pytest.approx(60_000, rel=1e-6)
    assert row["copies_per_reference_copy"] == pytest.approx(row["copies_per_reaction"] / 60_000)
    assert row["delta_cq"] == pytest.approx(car_cq - ref_cq)
    assert row["dna_input_source"] == "manifest"
    assert row["copies_per_ug"] == pytest.approx(row["copies_per_reaction"] * 10)
    runs = result.runs.set_index("target")
    assert runs.loc["CAR", "replicate_verdict"] == "FLAG"
    assert runs.loc["RNaseP", "role"] == "reference"


def test_omitted_wells_are_left_out():
    wells = _standards("CAR", -3.32, 38.0)
    outlier = _well("X", "Std3", "CAR", "STANDARD", 20.0, 1e3)
    outlier["omitted"] = True
    result = analyse_plate(_plate(wells + [outlier, _well("U", "s", "CAR", "UNKNOWN", 30.0)]),
                           QpcrSettings())  # fmt: skip
    assert result.runs.iloc[0]["r_squared"] == pytest.approx(1.0)
    assert len(result.wells) == len(wells) + 2  # omitted wells are still recorded


def test_positive_control_is_quantified_per_run_not_reported_as_a_sample():
    wells = _standards("CAR", -3.32, 38.0)
    pc_cq = -3.32 * np.log10(2_000) + 38.0
    wells += [_well(f"P{i}", "Pos Ctrl", "CAR", "UNKNOWN", pc_cq) for i in range(3)]
    wells += [_well("U1", "P001_D7", "CAR", "UNKNOWN", 30.0)]
    result = analyse_plate(_plate(wells), QpcrSettings())
    assert list(result.copies["sample_name"]) == ["P001_D7"]
    run = result.runs.iloc[0]
    assert run["positive_control_copies_per_reaction"] == pytest.approx(2_000, rel=1e-6)


# --- the car_copies result contract: quantified / below_loq / not_detected / not_measured ---------

CAR_CURVE = (-3.32, 38.0)


def _cq(copies: float) -> float:
    return CAR_CURVE[0] * np.log10(copies) + CAR_CURVE[1]


def _sample_row(cqs: list[float], settings: QpcrSettings | None = None, **well_kw) -> pd.Series:
    """The car_copies row of one sample whose replicates have these Cq values (NaN: no Cq)."""
    wells = _standards("CAR", *CAR_CURVE)
    wells += [
        _well(f"U{i}", "P001_D7", "CAR", "UNKNOWN", cq, **well_kw) for i, cq in enumerate(cqs)
    ]
    result = analyse_plate(_plate(wells), settings or QpcrSettings(loq_copies_per_reaction=10.0))
    [row] = result.copies.to_dict("records")
    return pd.Series(row)


def test_a_replicate_without_amplification_is_left_out_of_the_mean_not_counted_as_zero():
    row = _sample_row([_cq(40.0), _cq(40.0), np.nan], dna=200.0)
    assert (row["result"], row["n_replicates"], row["n_amplified"]) == ("quantified", 3, 2)
    assert row["copies_per_reaction"] == pytest.approx(40.0, rel=1e-9)  # not 26.7
    assert row["copies_per_ug"] == pytest.approx(200.0, rel=1e-9)
    assert pd.isna(row["result_reason"])


def test_one_of_three_replicates_below_the_loq_is_an_estimate_flagged_with_its_count():
    row = _sample_row([np.nan, _cq(4.0), np.nan], dna=200.0)
    assert row["result"] == "below_loq"
    assert row["result_reason"] == "detected in 1 of 3 replicates, 4 copies/reaction < LOQ 10"
    assert row["copies_per_reaction"] == pytest.approx(4.0, rel=1e-9)
    assert row["copies_per_ug"] == pytest.approx(20.0, rel=1e-9)
    assert row["below_loq"] and not row["below_lod"]


def test_one_of_three_replicates_above_the_loq_is_not_measured():
    row = _sample_row([np.nan, _cq(5_000.0), np.nan], dna=200.0)
    assert row["result"] == "not_measured"
    assert row["result_reason"].startswith("only 1 of 3 replicates amplified, at 5e+03")
    assert row["result_reason"].endswith("repeat the sample")
    assert np.isnan(row["copies_per_reaction"]) and np.isnan(row["copies_per_ug"])
    assert pd.isna(row["below_loq"]) and pd.isna(row["below_lod"])


def test_missing_dna_input_keeps_copies_per_reaction_and_says_where_to_add_it():
    row = _sample_row([_cq(300.0)] * 3)
    assert row["result"] == "not_measured"
    assert row["result_reason"] == (
        "no DNA input for this sample: add dna_input_ng to the manifest or set "
        "[qpcr] default_dna_input_ng"
    )
    assert row["copies_per_reaction"] == pytest.approx(300.0, rel=1e-9)
    assert np.isnan(row["copies_per_ug"]) and pd.isna(row["dna_input_source"])
    assert row["below_loq"] == False  # noqa: E712 - the estimate is above the LOQ
    with_default = _sample_row(
        [_cq(300.0)] * 3, QpcrSettings(loq_copies_per_reaction=10.0, default_dna_input_ng=150.0)
    )
    assert (with_default["result"], with_default["dna_input_source"]) == ("quantified", "setting")
    assert with_default["copies_per_ug"] == pytest.approx(2_000.0, rel=1e-9)


def test_a_plate_that_failed_qc_gives_not_measured_with_the_failed_rule_never_a_number():
    wells = _standards("CAR", -4.1, 42.0)  # efficiency 75.3 %
    wells += [_well(f"U{i}", "P001_D7", "CAR", "UNKNOWN", 30.0, dna=200.0) for i in range(3)]
    wells += [_well(f"V{i}", "P001_D14", "CAR", "UNKNOWN", np.nan, dna=200.0) for i in range(3)]
    copies = analyse_plate(_plate(wells), QpcrSettings()).copies.set_index("sample_name")
    assert list(copies["result"]) == ["not_measured", "not_measured"]
    assert copies["copies_per_reaction"].isna().all() and copies["copies_per_ug"].isna().all()
    assert copies["below_loq"].isna().all()
    assert copies.loc["P001_D7", "result_reason"] == (
        "plate QC failed (CAR: amplification efficiency 75.3 % outside 90–110 % (slope -4.10 "
        "over 6 standard levels)); re-run the assay on a new plate"
    )
    assert (copies["plate_qc_verdict"] == "FAIL").all()


def test_a_target_without_standards_gives_not_measured_rows_instead_of_none():
    wells = [_well(f"U{i}", "P001_D7", "CAR", "UNKNOWN", 30.0, dna=200.0) for i in range(3)]
    result = analyse_plate(_plate(wells), QpcrSettings())
    [row] = result.copies.to_dict("records")
    assert row["result"] == "not_measured"
    assert row["result_reason"] == (
        "no standard curve for CAR on this plate (no standard wells); quantify the sample on a "
        "plate with the plasmid standards"
    )
    assert np.isnan(row["copies_per_reaction"]) and row["plate_qc_verdict"] == "NO_CURVE"


@pytest.mark.parametrize("bad_cq", [np.inf, -np.inf, -12.0, 0.0])
def test_an_amplified_well_whose_cq_is_not_a_positive_number_gives_no_copy_number(bad_cq):
    wells = _standards("CAR", *CAR_CURVE)
    wells += [_well("U1", "P001_D7", "CAR", "UNKNOWN", _cq(300.0), dna=200.0),
              _well("U2", "P001_D7", "CAR", "UNKNOWN", bad_cq, dna=200.0)]  # fmt: skip
    [row] = analyse_plate(_plate(wells), QpcrSettings()).copies.to_dict("records")
    assert row["result"] == "not_measured"
    assert row["result_reason"] == (
        "well U2: amplified but its Cq is not a positive number; check the export"
    )
    assert np.isnan(row["copies_per_reaction"]) and np.isnan(row["copies_per_ug"])


def test_without_an_loq_nothing_is_called_quantified():
    wells = _standards("CAR", *CAR_CURVE, levels=range(2, 6))
    for i, well in enumerate(wells):  # every standard level has one silent replicate
        if i % 3 == 0:
            well.update(cq=np.nan, amplified=False, amp_status="Undetermined")
    wells += [
        _well(f"U{i}", "P001_D7", "CAR", "UNKNOWN", _cq(3_000.0), dna=200.0) for i in range(3)
    ]
    result = analyse_plate(_plate(wells), QpcrSettings())
    assert result.runs.iloc[0]["qc_verdict"] == "PASS"
    [row] = result.copies.to_dict("records")
    assert row["result"] == "not_measured"
    assert row["result_reason"].startswith("no LOQ for CAR on this plate")
    assert row["result_reason"].endswith("set [qpcr] loq_copies_per_reaction")
    assert np.isnan(row["copies_per_ug"])


_REPLICATE = st.one_of(
    st.floats(min_value=8.0, max_value=40.0),  # a readable Cq
    st.just(np.nan),  # no Cq: not amplified
    st.sampled_from([np.inf, -np.inf, -5.0, 0.0]),  # unreadable, yet marked amplified
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(cqs=st.lists(_REPLICATE, min_size=1, max_size=4), dna=st.sampled_from([np.nan, 200.0]))
def test_every_row_keeps_the_result_contract(cqs, dna):
    wells = _standards("CAR", *CAR_CURVE)
    for i, cq in enumerate(cqs):
        well = _well(f"U{i}", "P001_D7", "CAR", "UNKNOWN", cq, dna=dna)
        well["amplified"] = not np.isnan(cq)  # an inf or negative Cq claims amplification
        wells.append(well)
    [row] = analyse_plate(_plate(wells), QpcrSettings()).copies.to_dict("records")
    per_reaction, per_ug, result = row["copies_per_reaction"], row["copies_per_ug"], row["result"]
    assert result in RESULTS
    assert (row["result_reason"] is None) == (result == "quantified")
    if result in ("not_detected", "not_measured"):
        assert np.isnan(per_ug)
    if result == "not_detected":
        assert np.isnan(per_reaction) and all(np.isnan(cqs))
    for value in (per_reaction, per_ug):
        assert np.isnan(value) or (np.isfinite(value) and value >= 0)
    readable = [c for c in cqs if np.isfinite(c) and c > 0]
    if len(readable) < len([c for c in cqs if not np.isnan(c)]):  # an unreadable Cq was given
        assert result == "not_measured" and np.isnan(per_reaction)
    if not np.isnan(per_reaction):
        truth = np.mean([10 ** ((c - CAR_CURVE[1]) / CAR_CURVE[0]) for c in readable])
        assert per_reaction == pytest.approx(truth, rel=1e-9)


def test_a_target_run_without_standards_that_is_not_car_is_not_reported():
    wells = _standards("CAR", *CAR_CURVE)
    wells += [_well("U1", "P001_D7", "CAR", "UNKNOWN", _cq(300.0), dna=200.0),
              _well("U1", "P001_D7", "IPC", "UNKNOWN", 27.0, dna=200.0)]  # fmt: skip
    copies = analyse_plate(_plate(wells), QpcrSettings()).copies
    assert list(copies["target"]) == ["CAR"] and list(copies["result"]) == ["quantified"]


def test_qc_failures_name_the_target_wells_measured_values_and_limits():
    wells = _standards("CAR", PERFECT_SLOPE, 40.0)
    # the 10-copy standard scatters: R2 falls and the level's spread is named with its wells
    for well, cq in (("S10", 33.0), ("S11", 37.5), ("S12", 35.0)):
        next(w for w in wells if w["well"] == well)["cq"] = cq
    wells += [
        _well("H11", "NTC", "CAR", "NTC", np.nan),
        _well("H12", "NTC", "CAR", "NTC", 31.2),
        _well("U1", "P001_D7", "CAR", "UNKNOWN", 30.0, dna=200.0),
    ]
    result = analyse_plate(_plate(wells), QpcrSettings())
    r_squared = result.runs.set_index("target").loc["CAR", "r_squared"]
    assert r_squared < 0.98 and not result.passed_qc
    assert result.qc_failures == [
        f"CAR: standard curve R² {r_squared:.3f} < 0.98",
        "CAR: standard 10 copies, wells S10, S11, S12: replicate spread 2.25 Cq > 0.5",
        "CAR: NTC well H12 amplified at Cq 31.2 (before Cq 38; 0 allowed)",
    ]
    assert result.runs["qc_verdict"].tolist() == ["FAIL"]


def test_a_plate_that_passes_qc_has_no_qc_failures():
    wells = _standards("CAR", PERFECT_SLOPE, 40.0) + [_well("H12", "NTC", "CAR", "NTC", np.nan)]
    result = analyse_plate(_plate(wells), QpcrSettings())
    assert result.passed_qc and result.qc_failures == []
