"""Non-compartmental CAR-T kinetics on small profiles with hand-computed answers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipelines.derived.kinetics import (
    auc_linear_up_log_down,
    auc_profile,
    car_kinetics_row,
    interval_auc,
    nca,
    post_infusion_profile,
)

LOQ_PER_UG = 50.0


def _qpcr(values: dict[str, tuple[int, float | None]], lod_blq: set[str] = frozenset()):
    """{timepoint: (day, copies/ug, or None for below the LOQ)}; a timepoint in `lod_blq` was not
    detected at all, the others below the LOQ are detected with an estimate of LOQ/2."""
    return _results({
        t: (day, "quantified", copies) if copies is not None
        else (day, "not_detected", None) if t in lod_blq
        else (day, "below_loq", LOQ_PER_UG / 2)
        for t, (day, copies) in values.items()
    })  # fmt: skip


def _results(values: dict[str, tuple[int, str, float | None]]) -> pd.DataFrame:
    """car_copies rows from {timepoint: (day, result, copies/ug or None)}."""
    rows = []
    for timepoint, (day, result, copies) in values.items():
        rows.append({
            "timepoint": timepoint, "study_day": day, "result": result,
            "result_reason": None if result == "quantified" else f"why {timepoint}",
            "copies_per_ug": math.nan if copies is None else copies,
            "below_loq": None if result == "not_measured" else result != "quantified",
            "below_lod": None if result == "not_measured" else result == "not_detected",
            "loq_copies_per_ug": LOQ_PER_UG,
        })  # fmt: skip
    return pd.DataFrame(rows)


NO_FLOW = pd.DataFrame(columns=["timepoint", "study_day", "cells_per_ul"])


def test_linear_up_log_down_trapezoids():
    assert interval_auc(0, 0, 10, 100) == pytest.approx(500)
    falling = interval_auc(10, 100, 20, 10)
    assert falling == pytest.approx((100 - 10) * 10 / math.log(10))
    assert falling < (100 + 10) / 2 * 10  # the log trapezoid is below the linear one


def test_auc_interpolates_day_28_on_the_log_scale_when_falling():
    auc, end = auc_linear_up_log_down([0, 10, 60], [0.0, 1000.0, 10.0], 28)
    c28 = math.exp(math.log(1000) + (18 / 50) * (math.log(10) - math.log(1000)))
    expected = 0.5 * 1000 * 10 + (1000 - c28) * 18 / math.log(1000 / c28)
    assert end == 28 and auc == pytest.approx(expected)


def test_blq_rules_leading_zero_embedded_dropped_trailing_dropped():
    frame = _qpcr({
        "BL": (-7, None), "D1": (1, None), "D4": (4, 200.0), "D7": (7, None), "D10": (10, 800.0),
        "D14": (14, 300.0), "D21": (21, None), "D28": (28, None),
    })  # fmt: skip
    frame = frame.assign(quantifiable=frame["result"] == "quantified")
    profile = post_infusion_profile(frame, "copies_per_ug", "quantifiable")
    days, values = auc_profile(profile)
    assert list(days) == [0, 1, 4, 10, 14]  # BL excluded, D7 embedded BLQ and post-Tlast dropped
    assert list(values) == [0.0, 0.0, 200.0, 800.0, 300.0]
    result = nca(profile, 28)
    assert (result.cmax, result.tmax_day, result.tlast_day) == (800.0, 10, 14)
    assert result.auc_end_day == 14  # no extrapolation past Tlast
    assert result.n_samples == 7 and result.n_blq == 4


def test_row_reports_loss_of_persistence():
    frame = _qpcr(
        {"BL": (-7, None), "D7": (7, 5000.0), "D14": (14, 9000.0), "D28": (28, 400.0),
         "M2": (60, None), "M3": (90, None)},
        lod_blq={"M3"},
    )  # fmt: skip
    row = car_kinetics_row(frame, NO_FLOW, 28)
    assert row["tlast_day"] == 28 and row["persistence_status"] == "lost"
    assert row["last_detected_day"] == 60  # still detected below the LOQ at M2
    assert row["persistence_lost_day"] == 90  # lost when no longer detected
    later = json.loads(row["persistence_json"])
    assert [(p["status"], p["copies_per_ug"]) for p in later] == [
        ("below_loq", LOQ_PER_UG / 2), ("not_detected", None),
    ]  # fmt: skip
    assert row["cmax_car_cells_per_ul"] is None


def test_row_without_any_quantifiable_sample():
    row = car_kinetics_row(_qpcr({"BL": (-7, None), "D7": (7, None)}), NO_FLOW, 28)
    assert row["persistence_status"] == "not_expanded"
    assert row["cmax_copies_per_ug"] is None and row["n_qpcr_below_loq"] == 1


EXPANSION = {"BL": (-7, "not_detected", None), "D4": (4, "quantified", 200.0),
             "D10": (10, "quantified", 800.0), "D28": (28, "quantified", 100.0)}  # fmt: skip


def test_a_below_loq_estimate_never_enters_cmax_or_the_auc():
    plain = car_kinetics_row(_results(EXPANSION), NO_FLOW, 28)
    with_estimates = car_kinetics_row(
        _results({**EXPANSION, "D1": (1, "below_loq", 40.0), "D21": (21, "below_loq", 45.0)}),
        NO_FLOW, 28,
    )  # fmt: skip
    # D1 is BLQ before the first quantifiable: 0, not its estimate of 40
    expected_auc = 200 / 2 * 3 + (200 + 800) / 2 * 6 + (800 - 100) * 18 / math.log(8)
    assert with_estimates["auc_0_28"] == pytest.approx(expected_auc)
    assert plain["auc_0_28"] == pytest.approx(200 / 2 * 4 + (200 + 800) / 2 * 6
                                              + (800 - 100) * 18 / math.log(8))  # fmt: skip
    assert with_estimates["cmax_copies_per_ug"] == 800.0 and with_estimates["tlast_day"] == 28
    assert (with_estimates["n_qpcr_samples"], with_estimates["n_qpcr_below_loq"]) == (5, 2)


def test_not_measured_is_no_data_point_never_a_zero():
    row = car_kinetics_row(
        _results({**EXPANSION, "D1": (1, "not_measured", None), "D14": (14, "not_measured", None)}),
        NO_FLOW, 28,
    )  # fmt: skip
    # a not-measured D1 taken as 0 would give an AUC from day 1 (300), not from day 0 (400)
    first_interval = 200 / 2 * 4
    assert row["auc_0_28"] == pytest.approx(
        first_interval + (200 + 800) / 2 * 6 + (800 - 100) * 18 / math.log(8)
    )
    assert (row["n_qpcr_samples"], row["n_qpcr_below_loq"]) == (3, 0)
    listed = json.loads(row["qpcr_not_measured_json"])
    assert listed == [
        {"timepoint": "D1", "study_day": 1, "reason": "why D1"},
        {"timepoint": "D14", "study_day": 14, "reason": "why D14"},
    ]


def test_a_plate_whose_values_were_not_measured_never_makes_a_patient_car_lost():
    """The issue's false "CAR lost": a later plate that gave no number is not a loss."""
    row = car_kinetics_row(
        _results({**EXPANSION, "M2": (60, "not_measured", None), "M3": (90, "not_measured", None)}),
        NO_FLOW, 28,
    )  # fmt: skip
    assert row["persistence_status"] == "persisting" and row["persistence_lost_day"] is None
    assert row["last_detected_day"] == 28
    later = json.loads(row["persistence_json"])
    assert later == [
        {"timepoint": "M2", "study_day": 60, "status": "not_measured", "copies_per_ug": None,
         "reason": "why M2"},
        {"timepoint": "M3", "study_day": 90, "status": "not_measured", "copies_per_ug": None,
         "reason": "why M3"},
    ]  # fmt: skip


def test_detected_below_the_loq_at_the_last_sample_is_persisting():
    row = car_kinetics_row(
        _results({**EXPANSION, "M2": (60, "not_detected", None), "M3": (90, "below_loq", 20.0)}),
        NO_FLOW, 28,
    )  # fmt: skip
    assert (row["persistence_status"], row["last_detected_day"]) == ("persisting", 90)
    assert row["tlast_day"] == 28  # Tlast stays the last quantifiable day


def test_not_detected_after_the_last_detection_dates_the_loss():
    row = car_kinetics_row(
        _results({**EXPANSION, "M2": (60, "not_detected", None), "M3": (90, "not_detected", None)}),
        NO_FLOW, 28,
    )  # fmt: skip
    assert (row["persistence_status"], row["persistence_lost_day"]) == ("lost", 60)
    assert row["last_detected_day"] == 28


def test_a_day_measured_twice_takes_the_strongest_finding_and_ignores_not_measured():
    frame = _results({**EXPANSION, "M2": (60, "not_detected", None)})
    rerun = _results({"M2": (60, "not_measured", None)})
    quantified = _results({"M2": (60, "quantified", 70.0)})
    row = car_kinetics_row(pd.concat([frame, rerun, quantified]), NO_FLOW, 28)
    assert (row["tlast_day"], row["clast_copies_per_ug"]) == (60, 70.0)
    assert row["persistence_status"] == "persisting"
    later = json.loads(row["persistence_json"])
    assert later == [
        {"timepoint": "M2", "study_day": 60, "status": "quantified", "copies_per_ug": 70.0}
    ]


def test_only_not_measured_samples_are_no_data():
    row = car_kinetics_row(_results({"D7": (7, "not_measured", None)}), NO_FLOW, 28)
    assert row["persistence_status"] == "no_data" and row["n_qpcr_samples"] == 0
    assert row["cmax_copies_per_ug"] is None and row["auc_0_28"] is None


_NCA_COLUMNS = (
    "cmax_copies_per_ug", "tmax_day", "auc_0_28", "auc_0_28_end_day", "tlast_day",
    "clast_copies_per_ug", "n_qpcr_samples", "n_qpcr_below_loq", "last_detected_day",
    "persistence_status", "persistence_lost_day",
)  # fmt: skip
_DAYS = [1, 4, 7, 10, 14, 21, 28, 60, 90, 180]
_MEASURED = st.one_of(
    st.tuples(st.just("quantified"), st.floats(min_value=60.0, max_value=1e6)),
    st.tuples(st.just("below_loq"), st.floats(min_value=1.0, max_value=49.0)),
    st.tuples(st.just("not_detected"), st.none()),
)


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    measured=st.dictionaries(st.sampled_from(_DAYS), _MEASURED, min_size=1),
    not_measured=st.sets(st.sampled_from(_DAYS)),
)
def test_not_measured_samples_never_change_the_kinetics(measured, not_measured):
    """Adding samples that could not be measured, on any day, changes no kinetic value."""
    values = {f"D{d}": (d, result, copies) for d, (result, copies) in measured.items()}
    with_missing = _results(values)
    extra = _results({f"X{d}": (d, "not_measured", None) for d in not_measured})
    plain = car_kinetics_row(_results(values), NO_FLOW, 28)
    row = car_kinetics_row(pd.concat([with_missing, extra]), NO_FLOW, 28)
    assert {c: row[c] for c in _NCA_COLUMNS} == {c: plain[c] for c in _NCA_COLUMNS}
    assert len(json.loads(row["qpcr_not_measured_json"])) == len(not_measured)
