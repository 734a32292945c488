"""Forecast metrics: the interval of a total calibrated on earlier origins' errors."""

import numpy as np
import pytest
from scipy import stats

from clvmodels.metrics import total_interval


def test_the_total_interval_is_students_t_on_the_origins_log_errors():
    predicted, actual = np.array([100.0, 200.0, 50.0]), np.array([110.0, 180.0, 50.0])
    s = np.sqrt(np.mean(np.log(actual / predicted) ** 2))
    half = stats.t.ppf(0.95, 3) * s
    assert total_interval(1000.0, predicted, actual, 0.9) == pytest.approx((1000 * np.exp(-half), 1000 * np.exp(half)),
                                                                           rel=1e-12)
    # origins without both totals positive (a model that could not be fitted: NaN) are left out
    lo, hi = total_interval(1000.0, np.r_[predicted, np.nan, 5.0], np.r_[actual, 3.0, 0.0], 0.9)
    assert (lo, hi) == pytest.approx((1000 * np.exp(-half), 1000 * np.exp(half)), rel=1e-12)
    assert np.isnan(total_interval(1000.0, [np.nan], [3.0], 0.9)).all()


@pytest.mark.parametrize("n", [1, 3, 8])
def test_the_total_interval_covers_at_its_level_when_errors_are_lognormal(n):
    # errors of the log total independent N(0, 0.15^2) at n origins and at the next total: the interval
    # covers the next total at its level (a normal quantile instead of Student's t covers 84% at n = 3, 72%
    # at n = 1)
    rng = np.random.default_rng(n)
    reps = 5_000
    predicted = np.full((reps, n), 1000.0)
    actual = predicted * np.exp(rng.normal(0, 0.15, (reps, n)))
    truth = 5000.0 * np.exp(rng.normal(0, 0.15, reps))
    covered = [lo <= y <= hi for y, (lo, hi) in
               zip(truth, (total_interval(5000.0, p, a, 0.9) for p, a in zip(predicted, actual)))]
    assert np.mean(covered) == pytest.approx(0.9, abs=0.015)  # (3.6 standard errors of 5,000 replications)
