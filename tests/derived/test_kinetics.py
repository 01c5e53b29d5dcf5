"""Non-compartmental CAR-T kinetics on small profiles with hand-computed answers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pipelines.derived.kinetics import (
    auc_linear_up_log_down,
    auc_profile,
    car_kinetics_row,
    interval_auc,
    nca,
    post_infusion_profile,
)


def _qpcr(values: dict[str, tuple[int, float | None]], lod_blq: set[str] = frozenset()):
    """{timepoint: (day, copies/ug or None for BLQ)}"""
    rows = []
    for timepoint, (day, copies) in values.items():
        rows.append({
            "timepoint": timepoint, "study_day": day, "copies_per_ug": copies or 0.0,
            "below_loq": copies is None, "below_lod": copies is None and timepoint in lod_blq,
            "loq_copies_per_ug": 50.0,
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
    frame = frame.assign(quantifiable=~frame["below_loq"])
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
    assert row["persistence_lost_day"] == 60
    later = json.loads(row["persistence_json"])
    assert [p["status"] for p in later] == ["below_loq", "not_detected"]
    assert row["cmax_car_cells_per_ul"] is None


def test_row_without_any_quantifiable_sample():
    row = car_kinetics_row(_qpcr({"BL": (-7, None), "D7": (7, None)}), NO_FLOW, 28)
    assert row["persistence_status"] == "not_expanded"
    assert row["cmax_copies_per_ug"] is None and row["n_qpcr_below_loq"] == 1
