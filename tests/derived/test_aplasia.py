"""B-cell aplasia on synthetic population frames shaped like flow_populations."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.derived.aplasia import aplasia_course, b_cell_measurements

NAMES = ("CD19+ B cells",)
LYMPHOCYTES = ("Lymphocytes",)


def _tubes(b_cells_per_ul: dict[str, tuple[int, float | None]]) -> pd.DataFrame:
    rows = []
    for i, (timepoint, (day, per_ul)) in enumerate(b_cells_per_ul.items()):
        count = round((per_ul or 1.0) * 20)
        tube = {"source_sha256": f"{i:064x}", "dataset": 1, "timepoint": timepoint,
                "study_day": day}  # fmt: skip
        rows.append({**tube, "population": "Lymphocytes", "count": 10_000, "cells_per_ul": 500.0})
        rows.append({**tube, "population": "CD19+ B cells", "count": count,
                     "cells_per_ul": per_ul})  # fmt: skip
    return pd.DataFrame(rows)


def _days(course: pd.DataFrame) -> list[int | None]:
    return [None if pd.isna(d) else int(d) for d in course["aplasia_days_so_far"]]


def test_onset_duration_and_recovery():
    tubes = _tubes({"BL": (-7, 150.0), "D7": (7, 2.0), "D14": (14, 0.3), "M2": (60, 40.0),
                    "M3": (90, 120.0)})  # fmt: skip
    dates = {"M2": date(2026, 5, 15)}
    course = aplasia_course(b_cell_measurements(tubes, NAMES, LYMPHOCYTES), 10.0, 1.0, dates)
    assert list(course["aplasia"]) == [False, True, True, False, False]
    assert set(course["aplasia_onset_day"]) == {7}
    assert set(course["recovery_timepoint"]) == {"M2"}
    assert set(course["recovery_date"]) == {date(2026, 5, 15)}
    assert _days(course) == [None, 0, 7, 53, 53]
    assert course["b_cells_pct_of_lymphocytes"].iloc[0] == 100.0 * 3000 / 10_000


def test_ongoing_aplasia_has_no_recovery():
    tubes = _tubes({"BL": (-7, 90.0), "D10": (10, 0.5), "D28": (28, 0.2)})
    course = aplasia_course(b_cell_measurements(tubes, NAMES, LYMPHOCYTES), 10.0, 1.0, {})
    assert course["recovery_day"].isna().all()
    assert _days(course) == [None, 0, 18]


def test_percent_of_lymphocytes_when_no_beads():
    tubes = _tubes({"BL": (-7, None), "D14": (14, None)})
    tubes.loc[tubes["population"] == "CD19+ B cells", "count"] = [900, 20]
    course = aplasia_course(b_cell_measurements(tubes, NAMES, LYMPHOCYTES), 10.0, 1.0, {})
    assert list(course["aplasia_basis"]) == ["pct_of_lymphocytes"] * 2
    assert list(course["aplasia"]) == [False, True]


def test_no_b_cell_population_gives_no_rows():
    tubes = _tubes({"BL": (-7, 100.0)})
    assert b_cell_measurements(tubes, ("B cells",), LYMPHOCYTES).empty


def test_a_tube_without_study_day_is_no_blood_draw():
    """The infused product's B-cell tube has no study day: once aplasia has begun it used to
    stop the recompute (a day count of a missing day); it says nothing of aplasia."""
    tubes = _tubes({"BL": (-7, 150.0), "PRODUCT": (None, 0.0), "D7": (7, 2.0), "D14": (14, 0.3)})
    course = aplasia_course(b_cell_measurements(tubes, NAMES, LYMPHOCYTES), 10.0, 1.0, {})
    assert list(course["timepoint"]) == ["BL", "D7", "D14"]
    assert _days(course) == [None, 0, 7]
