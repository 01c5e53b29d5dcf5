"""The trial's timepoint vocabulary: the one definition of the visit labels, in study-day order.

`SCREEN` (screening), `BL` (pre-lymphodepletion baseline), `PRODUCT` (the infused cells, collected
on the day of infusion, before D0's draw), `D0` (infusion) to `D28`, then the month visits `M2`
to `M24`. It lives in `validation` because both the suites (which check every table's `timepoint`)
and the pipeline (which normalises spellings, orders the query ENUM and derives tables) need it,
and `validation` may not import `pipelines`.
"""

from __future__ import annotations

SCREENING = "SCREEN"
BASELINE = "BL"
PRODUCT = "PRODUCT"
INFUSION_DAY = "D0"
LAST_DAILY_DAY = 28
"""Visits are labelled by day (`D0` ... `D28`) up to this day, by month after it."""

MONTH_DAYS: dict[int, int] = {2: 60, 3: 90, 6: 180, 9: 270, 12: 365, 18: 545, 24: 730}
"""Nominal study day of each month visit in the trial's schedule."""

NOMINAL_STUDY_DAY: dict[str, int | None] = {
    SCREENING: -28,
    BASELINE: -7,
    PRODUCT: None,
    **{f"D{day}": day for day in range(LAST_DAILY_DAY + 1)},
    **{f"M{month}": day for month, day in MONTH_DAYS.items()},
}
"""Study day (days after infusion) of each label, used when no collection date is known; the
product has none of its own. Written in study-day order, which `TIMEPOINTS` keeps."""

TIMEPOINTS: tuple[str, ...] = tuple(NOMINAL_STUDY_DAY)
"""Every canonical label in study-day order: SCREEN, BL, PRODUCT, D0 ... D28, M2 ... M24."""

PRE_INFUSION: frozenset[str] = frozenset(TIMEPOINTS[: TIMEPOINTS.index(INFUSION_DAY)])
"""Samples taken before the infusion (screening, baseline, the product itself)."""

TIMEPOINT_PATTERN = "^(?:" + "|".join(TIMEPOINTS) + ")$"
"""A value in the vocabulary, as a regular expression (what the suites check `timepoint` with)."""

SCHEDULE = f"{SCREENING}, {PRODUCT}, {BASELINE}, {INFUSION_DAY}-D{LAST_DAILY_DAY}, " + ", ".join(
    f"M{month}" for month in MONTH_DAYS
)
"""The schedule as an error message names it: SCREEN, PRODUCT, BL, D0-D28, M2, ..., M24."""
