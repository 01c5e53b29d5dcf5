"""Four- and five-parameter logistic standard curves: fitting, inverting, choosing by AICc.

    MFI = d + (a - d) / (1 + (x / c) ** b) ** g

a is the response at zero concentration, d at infinite concentration, c the inflection
concentration, b the slope and g the asymmetry (g = 1 is the 4PL). Fits run on
`scipy.optimize.least_squares` with c, b, g on a log scale (they must stay positive) and weighted
residuals; the 5PL starts from the 4PL solution, which makes it converge reliably.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True)
class Curve:
    """A fitted standard curve."""

    model: str  # "4PL" or "5PL"
    a: float
    b: float
    c: float
    d: float
    g: float
    weighted_rss: float
    n_points: int
    r_squared: float

    @property
    def n_params(self) -> int:
        return 4 if self.model == "4PL" else 5

    @property
    def aicc(self) -> float:
        """Akaike's criterion corrected for small samples, on the weighted residuals."""
        n, k = self.n_points, self.n_params
        if n <= k + 1:
            return math.inf
        rss = max(self.weighted_rss, 1e-300)
        return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)

    def mfi(self, concentration: np.ndarray | float) -> np.ndarray:
        return logistic(
            np.asarray(concentration, dtype=float), self.a, self.b, self.c, self.d, self.g
        )

    def concentration(self, mfi: np.ndarray | float) -> np.ndarray:
        """Back-calculated concentration; NaN where the MFI lies outside the asymptotes."""
        y = np.asarray(mfi, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (self.a - self.d) / (y - self.d)
            inner = ratio ** (1.0 / self.g) - 1.0
            x = self.c * inner ** (1.0 / self.b)
        inside = (y - self.a) * (self.d - self.a) > 0
        inside &= (self.d - y) * (self.d - self.a) > 0
        return np.where(inside & np.isfinite(x), x, np.nan)


def logistic(x: np.ndarray, a: float, b: float, c: float, d: float, g: float = 1.0) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = np.where(x > 0, x / c, 0.0)
        return d + (a - d) / (1.0 + ratio**b) ** g


def _weights(mfi: np.ndarray, weighting: str) -> np.ndarray:
    """Residual divisors: 1/y^2 weighting divides each residual by y, 1/y by sqrt(y)."""
    floor = max(1e-3 * float(np.nanmax(np.abs(mfi))), 1e-9)
    scale = np.maximum(np.abs(mfi), floor)
    if weighting == "1/y^2":
        return scale
    if weighting == "1/y":
        return np.sqrt(scale)
    return np.ones_like(mfi)


def _initial_guess(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """a, b, c, d from the data: bottom and top from the extremes, c where MFI is half-way."""
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    a, d = float(np.min(ys)), float(np.max(ys))
    if ys[-1] < ys[0]:
        a, d = d, a
    positive = xs[xs > 0]
    halfway = (a + d) / 2
    near = positive[np.argmin(np.abs(ys[xs > 0] - halfway))] if positive.size else 1.0
    return a, 1.0, float(near), d


def _r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    total = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - float(np.sum((y - fitted) ** 2)) / total if total > 0 else float("nan")


def fit_curve(
    concentration: np.ndarray, mfi: np.ndarray, model: str, weighting: str = "1/y^2"
) -> Curve:
    """Fit a 4PL or 5PL to standards (concentration pg/mL, MFI); zero standards anchor `a`."""
    x = np.asarray(concentration, dtype=float)
    y = np.asarray(mfi, dtype=float)
    sigma = _weights(y, weighting)
    a0, b0, c0, d0 = _initial_guess(x, y)
    span = max(abs(d0 - a0), 1e-9)
    positive = x[x > 0]
    log_c_bounds = (math.log(positive.min() / 1e3), math.log(positive.max() * 1e3))

    def residuals_4pl(p: np.ndarray) -> np.ndarray:
        return (y - logistic(x, p[0], math.exp(p[1]), math.exp(p[2]), p[3])) / sigma

    four = least_squares(
        residuals_4pl,
        [a0, math.log(b0), math.log(c0), d0 + 0.05 * (d0 - a0)],
        bounds=(
            [a0 - span, math.log(0.05), log_c_bounds[0], min(a0, d0) - span],
            [a0 + span, math.log(20.0), log_c_bounds[1], max(a0, d0) + 10 * span],
        ),
        x_scale="jac",
        max_nfev=5000,
    )
    a, log_b, log_c, d = four.x
    if model == "4PL":
        return _curve("4PL", x, y, sigma, a, math.exp(log_b), math.exp(log_c), d, 1.0)

    def residuals_5pl(p: np.ndarray) -> np.ndarray:
        return (y - logistic(x, p[0], math.exp(p[1]), math.exp(p[2]), p[3], math.exp(p[4]))) / sigma

    five = least_squares(
        residuals_5pl,
        [a, log_b, log_c, d, 0.0],
        bounds=(
            [a0 - span, math.log(0.05), log_c_bounds[0], min(a0, d0) - span, math.log(0.05)],
            [a0 + span, math.log(20.0), log_c_bounds[1], max(a0, d0) + 10 * span, math.log(20.0)],
        ),
        x_scale="jac",
        max_nfev=10000,
    )
    a5, log_b5, log_c5, d5, log_g5 = five.x
    return _curve("5PL", x, y, sigma, a5, math.exp(log_b5), math.exp(log_c5), d5, math.exp(log_g5))


def _curve(
    model: str, x: np.ndarray, y: np.ndarray, sigma: np.ndarray,
    a: float, b: float, c: float, d: float, g: float,
) -> Curve:  # fmt: skip
    fitted = logistic(x, a, b, c, d, g)
    rss = float(np.sum(((y - fitted) / sigma) ** 2))
    return Curve(
        model, float(a), float(b), float(c), float(d), float(g), rss, int(x.size),
        _r_squared(y, fitted),
    )  # fmt: skip


def choose_curve(concentration: np.ndarray, mfi: np.ndarray, model: str, weighting: str) -> Curve:
    """The curve the settings ask for; with model "auto", the 4PL or 5PL with the lower AICc."""
    if model != "auto":
        return fit_curve(concentration, mfi, model, weighting)
    candidates = [fit_curve(concentration, mfi, m, weighting) for m in ("4PL", "5PL")]
    return min(candidates, key=lambda curve: curve.aicc)
