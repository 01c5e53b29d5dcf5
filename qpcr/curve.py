"""The plasmid standard curve: Cq = slope * log10(copies) + intercept."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class StandardCurve:
    slope: float
    intercept: float
    r_squared: float
    n_wells: int
    n_levels: int
    lowest_standard: float
    highest_standard: float

    @property
    def efficiency_pct(self) -> float:
        """Amplification efficiency: 100 % when each cycle doubles the product (slope -3.32)."""
        return (10.0 ** (-1.0 / self.slope) - 1.0) * 100.0

    def copies(self, cq: np.ndarray | float) -> np.ndarray | float:
        """Copies per reaction for a Cq (NaN stays NaN)."""
        return 10.0 ** ((np.asarray(cq, dtype=float) - self.intercept) / self.slope)


class CurveError(ValueError):
    """Too few usable standards to fit a curve."""


def fit_standard_curve(quantities: np.ndarray, cqs: np.ndarray, min_levels: int) -> StandardCurve:
    """Least-squares fit of Cq against log10 copies over every amplified standard well.

    Wells without a Cq or with a non-positive quantity are left out; at least `min_levels`
    distinct quantities must remain.
    """
    quantities = np.asarray(quantities, dtype=float)
    cqs = np.asarray(cqs, dtype=float)
    usable = np.isfinite(cqs) & np.isfinite(quantities) & (quantities > 0)
    levels = np.unique(quantities[usable])
    if levels.size < max(min_levels, 2):
        raise CurveError(
            f"{levels.size} standard level(s) with a Cq; at least {max(min_levels, 2)} are needed"
        )
    fit = stats.linregress(np.log10(quantities[usable]), cqs[usable])
    r_squared = float(fit.rvalue**2) if math.isfinite(fit.rvalue) else 1.0
    return StandardCurve(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r_squared=r_squared,
        n_wells=int(usable.sum()),
        n_levels=int(levels.size),
        lowest_standard=float(levels.min()),
        highest_standard=float(levels.max()),
    )
