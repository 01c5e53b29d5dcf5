from __future__ import annotations

import json

import numpy as np
import pytest

from cba.analysis import StandardLevel, analyse_plate, check_standard_series
from cba.errors import CbaAnalysisError, StandardSeriesError
from cba.settings import CbaSettings
from tests.cba.synthetic import SAMPLES_PG_ML, by_sample, make_plate
from validation.schemas import CBA_CURVES, CYTOKINES


def test_frames_hold_exactly_the_assay_columns_of_the_schemas(exact_plate) -> None:
    """The library keeps no column list of its own: the registry's names are the contract (the
    pipeline orders and types the columns by the registry)."""
    result = analyse_plate(exact_plate)
    assert set(result.curves.columns) == set(CBA_CURVES.assay_column_names)
    assert set(result.cytokines.columns) == set(CYTOKINES.assay_column_names)
    assert result.sample_names == list(SAMPLES_PG_ML)


@pytest.mark.parametrize("model", ["4PL", "5PL", "auto"])
def test_concentrations_recovered_within_10_pct_with_noise(model: str) -> None:
    plate = make_plate(noise_cv=0.03, seed=11, dilution=2.0)
    result = analyse_plate(plate, CbaSettings(model=model))
    assert set(result.curves["verdict"]) == {"PASS"}
    for analyte in ("IL-6", "IFN-γ"):
        rows = by_sample(result.cytokines, analyte)
        for sample in ("S26-0100", "S26-0101", "S26-0102"):
            assert rows.loc[sample, "censoring"] == "none"
            assert rows.loc[sample, "concentration_pg_ml"] == pytest.approx(
                SAMPLES_PG_ML[sample], rel=0.10
            )
            assert rows.loc[sample, "n_replicates"] == 2
            assert 0 < rows.loc[sample, "mfi_cv_pct"] < 15


def test_values_outside_the_range_are_censored_not_extrapolated(exact_plate) -> None:
    result = analyse_plate(exact_plate)
    curve = result.curves.set_index("analyte").loc["IL-6"]
    assert curve["lloq_pg_ml"] == pytest.approx(10000 / 4**6)
    assert curve["uloq_pg_ml"] == 10000
    rows = by_sample(result.cytokines, "IL-6")
    low, high = rows.loc["S26-0103"], rows.loc["S26-0104"]
    assert (low["censoring"], low["censor_limit_pg_ml"]) == ("below_lloq", curve["lloq_pg_ml"])
    assert np.isnan(low["concentration_pg_ml"])
    assert (high["censoring"], high["censor_limit_pg_ml"]) == ("above_uloq", 10000)
    assert np.isnan(high["concentration_pg_ml"])


def test_recovery_per_standard_is_reported(exact_plate) -> None:
    curve = analyse_plate(exact_plate).curves.iloc[0]
    recoveries = json.loads(curve["recovery_json"])
    assert [r["level"] for r in recoveries] == [f"C{n}" for n in range(7, 0, -1)]
    assert all(r["pass"] and r["recovery_pct"] == pytest.approx(100, abs=0.5) for r in recoveries)
    assert (curve["n_standards"], curve["n_standards_passed"], curve["dilution_factor"]) == (
        7,
        7,
        4,
    )


def test_a_1000x_slip_in_the_standards_is_flagged_not_fitted() -> None:
    levels = [10000 / 4**i for i in range(7)]
    levels[4] *= 1000  # C3: 39.0625 written as 39062.5
    result = analyse_plate(make_plate(levels=[*levels, 0.0]))
    assert set(result.curves["verdict"]) == {"FAIL"}
    assert set(result.curves["model"]) == {"NONE"}
    assert (
        result.curves["verdict_reason"]
        .str.contains(r"C3 = 39062\.5 pg/mL is 1000x what the series predicts \(39\.06\)")
        .all()
    )
    assert result.series_breaks == {"C3 1000x the series": ["IL-6", "IFN-γ"]}
    assert "standard series broken: C3 1000x the series for IL-6, IFN-γ" in result.warnings[-1]
    assert result.cytokines["concentration_pg_ml"].isna().all()
    assert set(result.cytokines["curve_verdict"]) == {"FAIL"}


def test_series_check_names_the_broken_step() -> None:
    unnumbered = [StandardLevel("top", 5000, 1), StandardLevel("mid", 2500, 1),
                  StandardLevel("x", 1250_000, 1), StandardLevel("low", 625, 1)]  # fmt: skip
    unnumbered.sort(key=lambda lv: -lv.expected_pg_ml)
    with pytest.raises(StandardSeriesError, match="divided by the dilution factor"):
        check_standard_series(unnumbered, CbaSettings())
    numbered = [StandardLevel(f"Standard{i + 1}", 5000 / 3**i, 1) for i in range(7)]
    numbered[0] = StandardLevel("Standard1", 5, 1)  # the top standard written in ng/mL
    with pytest.raises(StandardSeriesError, match=r"^standard series broken: Standard1 = 5 pg/mL "
                       r"is 0\.001x what the series predicts \(5000\)") as caught:  # fmt: skip
        check_standard_series(numbered, CbaSettings())
    assert caught.value.fault == "Standard1 0.001x the series"
    swapped = [StandardLevel("Standard 1", 5000, 1), StandardLevel("Standard 2", 1250, 1),
               StandardLevel("Standard 3", 2500, 1), StandardLevel("Standard 4", 312.5, 1)]  # fmt: skip
    with pytest.raises(StandardSeriesError, match="Standard 2 = 1250 pg/mL is 0.5x"):
        check_standard_series(swapped, CbaSettings())
    fine = [StandardLevel(f"C{7 - i}", 10000 / 4**i, 1) for i in range(7)]
    assert check_standard_series(fine, CbaSettings()) == 4
    masked = [level for level in fine if level.level != "C3"]  # a standard left out: a gap
    assert check_standard_series(masked, CbaSettings()) == 4
    rounded = [StandardLevel(f"S{i + 1}", float(f"{10000 / 3**i:.3g}"), 1) for i in range(8)]
    assert check_standard_series(rounded, CbaSettings()) == pytest.approx(3, rel=0.01)


def test_a_plate_without_standards_is_refused() -> None:
    plate = make_plate()
    plate.wells = plate.wells[plate.wells["type"] != "standard"]
    with pytest.raises(CbaAnalysisError, match="no standard wells"):
        analyse_plate(plate)


def test_too_few_passing_standards_fail_the_curve() -> None:
    plate = make_plate(noise_cv=0.25, seed=5)
    result = analyse_plate(plate, CbaSettings(recovery_low_pct=98, recovery_high_pct=102))
    assert "FAIL" in set(result.curves["verdict"])
    failed = result.cytokines[result.cytokines["curve_verdict"] == "FAIL"]
    assert failed["concentration_pg_ml"].isna().all()


def test_settings_from_dict_and_refusals() -> None:
    settings = CbaSettings.from_dict({"model": "auto", "recovery_low_pct": 70})
    assert (settings.model, settings.recovery_low_pct, settings.recovery_high_pct) == (
        "auto", 70, 120,
    )  # fmt: skip
    with pytest.raises(ValueError, match="model"):
        CbaSettings(model="3PL")


def test_a_sample_without_an_mfi_is_not_measured_not_not_detected() -> None:
    plate = make_plate()
    no_beads = (plate.wells["sample_name"] == "S26-0101") & (plate.wells["analyte"] == "IL-6")
    plate.wells.loc[no_beads, "mfi"] = float("nan")
    rows = by_sample(analyse_plate(plate).cytokines, "IL-6")
    assert rows.loc["S26-0101", ["censoring", "n_replicates"]].tolist() == ["not_measured", 0]
    assert np.isnan(rows.loc["S26-0101", "concentration_pg_ml"])
    assert rows.loc["S26-0100", "censoring"] == "none"


def test_unrecognised_analytes_are_analysed_and_flagged_on_both_tables() -> None:
    plate = make_plate()
    ifn = plate.wells["analyte"] == "IFN-γ"
    plate.wells.loc[ifn, ["analyte", "analyte_as_exported"]] = "Zorbin"
    plate.wells.loc[ifn, "analyte_recognised"] = False
    result = analyse_plate(plate)
    assert result.curves.set_index("analyte")["analyte_recognised"].to_dict() == {
        "IL-6": True, "Zorbin": False,
    }  # fmt: skip
    assert set(result.curves["verdict"]) == {"PASS"}
    zorbin = by_sample(result.cytokines, "Zorbin")
    assert not zorbin["analyte_recognised"].any()
    assert zorbin.loc["S26-0101", "concentration_pg_ml"] == pytest.approx(150.0, rel=1e-3)


def test_vendor_concentration_text_that_is_no_value_refuses_the_plate_naming_the_well() -> None:
    plate = make_plate()
    plate.wells = plate.wells[plate.wells["type"] == "sample"].copy()
    plate.wells["mfi"] = float("nan")
    plate.wells["reported_concentration"] = "12.5"
    plate.wells.loc[plate.wells.index[3], "reported_concentration"] = "*12.3"
    row = plate.wells.loc[plate.wells.index[3]]
    with pytest.raises(CbaAnalysisError, match=rf"well {row['well']} \({row['sample_name']}\), "
                       rf"{row['analyte_as_exported']}: the software's concentration '\*12.3'"):  # fmt: skip
        analyse_plate(plate)
