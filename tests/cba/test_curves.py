from __future__ import annotations

import numpy as np
import pytest

from cba.curves import choose_curve, fit_curve, logistic

X = np.repeat(np.concatenate([[0.0], 5000 / 2 ** np.arange(9)]), 2)


@pytest.mark.parametrize("true", [(30, 1.2, 800, 40000, 1.0), (50, 0.9, 600, 25000, 1.0)])
def test_4pl_parameters_recovered_from_an_exact_curve(true: tuple[float, ...]) -> None:
    curve = fit_curve(X, logistic(X, *true), "4PL")
    assert [curve.a, curve.b, curve.c, curve.d] == pytest.approx(true[:4], rel=1e-4)
    assert curve.g == 1.0


@pytest.mark.parametrize("true", [(30, 1.1, 600, 30000, 0.6), (50, 0.9, 2000, 25000, 2.0)])
def test_5pl_parameters_recovered_from_an_exact_curve(true: tuple[float, ...]) -> None:
    curve = fit_curve(X, logistic(X, *true), "5PL")
    assert [curve.a, curve.b, curve.c, curve.d, curve.g] == pytest.approx(true, rel=1e-3)
    assert curve.r_squared == pytest.approx(1.0)


def test_aicc_prefers_5pl_for_an_asymmetric_curve_and_4pl_for_a_symmetric_one() -> None:
    assert choose_curve(X, logistic(X, 30, 1.1, 600, 30000, 0.6), "auto", "1/y^2").model == "5PL"
    noisy = logistic(X, 30, 1.2, 800, 40000) * np.random.default_rng(3).lognormal(0, 0.02, X.size)
    assert choose_curve(X, noisy, "auto", "1/y^2").model == "4PL"


def test_inverse_returns_concentration_and_nan_outside_the_asymptotes() -> None:
    curve = fit_curve(X, logistic(X, 30, 1.1, 600, 30000, 0.6), "5PL")
    assert curve.concentration(curve.mfi(123.0)) == pytest.approx(123.0, rel=1e-6)
    assert np.isnan(curve.concentration(10.0))
    assert np.isnan(curve.concentration(31000.0))
