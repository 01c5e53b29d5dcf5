"""B-cell aplasia, the pharmacodynamic mark of functional CD19 CAR-T cells.

Per timepoint: CD19+ B cells per uL (counting beads) and as % of lymphocytes, from the B-cell
tube's populations; the population names come from the gating template and are matched by the
`b_cell_populations` / `lymphocyte_populations` settings. A timepoint is aplastic when B cells are
below `aplasia_threshold_cells_per_ul`, or, for a tube without counting beads, below
`aplasia_threshold_pct_of_lymphocytes`. Tubes without a study day (the infused product) are no
blood draw and are left out.

The course is described by its first post-infusion episode: onset is the first aplastic timepoint
after infusion (a patient already B-cell depleted at baseline, e.g. after blinatumomab, still has
onset at the first post-infusion sample), recovery the first later timepoint that is no longer
aplastic. `aplasia_days_so_far` counts from onset to the row's day while aplasia lasts, and holds
the episode's length from recovery on. Aplasia after a recovery shows in the `aplasia` column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import pandas as pd

MEASUREMENT_COLUMNS = [
    "timepoint", "study_day", "b_cells_per_ul", "b_cells_pct_of_lymphocytes", "source_sha256",
]  # fmt: skip


def first_present(names: pd.Series, wanted: Sequence[str]) -> str | None:
    """The first of the wanted population names that occurs (settings list them by preference)."""
    present = set(names)
    return next((name for name in wanted if name in present), None)


def b_cell_measurements(
    populations: pd.DataFrame, b_cell_names: Sequence[str], lymphocyte_names: Sequence[str]
) -> pd.DataFrame:
    """One row per tube holding a B-cell population: cells/uL and % of the tube's lymphocytes."""
    b_name = first_present(populations["population"], b_cell_names)
    if b_name is None:
        return pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    lymph_name = first_present(populations["population"], lymphocyte_names)
    tube = ["source_sha256", "dataset"]
    b_cells = populations[populations["population"] == b_name]
    lymphocytes = populations[populations["population"] == lymph_name][[*tube, "count"]]
    merged = b_cells.merge(lymphocytes, on=tube, how="left", suffixes=("", "_lymphocytes"))
    denominator = merged["count_lymphocytes"].where(merged["count_lymphocytes"] > 0)
    return pd.DataFrame(
        {
            "timepoint": merged["timepoint"],
            "study_day": merged["study_day"],
            "b_cells_per_ul": merged["cells_per_ul"],
            "b_cells_pct_of_lymphocytes": 100.0 * merged["count"] / denominator,
            "source_sha256": merged["source_sha256"],
        }
    )


def aplasia_course(
    measurements: pd.DataFrame,
    threshold_cells_per_ul: float,
    threshold_pct: float,
    collection_dates: Mapping[str, date],
) -> pd.DataFrame:
    """The `b_cell_aplasia` assay columns, one row per timepoint (tubes of one day averaged)."""
    per_timepoint = (
        measurements.groupby(["timepoint", "study_day"], as_index=False, dropna=False)
        .agg(
            b_cells_per_ul=("b_cells_per_ul", "mean"),
            b_cells_pct_of_lymphocytes=("b_cells_pct_of_lymphocytes", "mean"),
            derived_from=("source_sha256", lambda s: ",".join(sorted(set(s)))),
        )
        .sort_values("study_day", kind="stable")
        .reset_index(drop=True)
    )
    has_count = per_timepoint["b_cells_per_ul"].notna()
    measured = has_count | per_timepoint["b_cells_pct_of_lymphocytes"].notna()
    # without a study day a tube is no blood draw (the infused product): it says nothing of aplasia
    per_timepoint = per_timepoint[measured & per_timepoint["study_day"].notna()]
    has_count = per_timepoint["b_cells_per_ul"].notna()
    aplastic = (per_timepoint["b_cells_per_ul"] < threshold_cells_per_ul).where(
        has_count, per_timepoint["b_cells_pct_of_lymphocytes"] < threshold_pct
    )
    course = per_timepoint.assign(
        aplasia=aplastic.astype(bool),
        aplasia_basis=has_count.map({True: "cells_per_ul", False: "pct_of_lymphocytes"}),
        threshold_cells_per_ul=threshold_cells_per_ul,
        threshold_pct_of_lymphocytes=threshold_pct,
        collection_date=per_timepoint["timepoint"].map(collection_dates),
    )
    return _with_episode(course, collection_dates)


def _with_episode(course: pd.DataFrame, collection_dates: Mapping[str, date]) -> pd.DataFrame:
    post = course[(course["study_day"] > 0) & course["aplasia"]]
    onset = post.iloc[0] if not post.empty else None
    recovery = None
    if onset is not None:
        after = course[(course["study_day"] > onset["study_day"]) & ~course["aplasia"]]
        recovery = after.iloc[0] if not after.empty else None
    onset_day = int(onset["study_day"]) if onset is not None else None
    recovery_day = int(recovery["study_day"]) if recovery is not None else None

    def days_so_far(day: float) -> int | None:
        if onset_day is None or day < onset_day:
            return None
        return int((recovery_day if recovery_day is not None and day >= recovery_day else day)
                   - onset_day)  # fmt: skip

    return course.assign(
        aplasia_onset_day=onset_day,
        aplasia_onset_timepoint=onset["timepoint"] if onset is not None else None,
        aplasia_onset_date=collection_dates.get(onset["timepoint"]) if onset is not None else None,
        aplasia_days_so_far=pd.array([days_so_far(d) for d in course["study_day"]], dtype="Int64"),
        recovery_day=recovery_day,
        recovery_timepoint=recovery["timepoint"] if recovery is not None else None,
        recovery_date=collection_dates.get(recovery["timepoint"]) if recovery is not None else None,
    )
