"""Forecast metrics (numpy only): the point-forecast scores of the backtests, the coverage of discrete
predictive intervals, and the log predictive score of counts.

``score`` gives, for one (model, horizon, target):

- ``aggregate_error_pct``: 100 (sum predicted - sum actual) / sum actual;
- ``mae``, ``rmse``: per customer;
- ``wape``: sum |predicted - actual| / sum actual;
- ``spearman``: rank correlation of predicted and actual (NaN when either is the same for everyone);
- ``top_decile_share``: share of the actual total captured by the 10% of customers predicted highest.

``total_interval`` turns the errors of a model's totals at earlier origins into an interval for its next
total (the errors a model makes because its assumptions fail, such as purchase rates that drift, are
measured, not assumed away).
"""

from __future__ import annotations

import numpy as np

__all__ = ["score", "interval_coverage", "pit_coverage", "log_score", "total_interval", "tie_key", "PROBABILITY_FLOOR"]

#: A customer's predictive probability of their count is floored here before its log (a model that gives
#: an observed count probability 0 scores log(1e-300), about -690, not minus infinity).
PROBABILITY_FLOOR = 1e-300


def log_score(below: np.ndarray, at_most: np.ndarray) -> float:
    """The mean log predictive score of counts y, from P(Y < y) and P(Y <= y): mean log P(Y = y), a strictly
    proper scoring rule (Gneiting & Raftery 2007, JASA 102(477)); higher is better."""
    p = np.asarray(at_most, dtype=np.float64) - np.asarray(below, dtype=np.float64)
    return float(np.mean(np.log(np.maximum(p, PROBABILITY_FLOOR))))


def interval_coverage(below: np.ndarray, at_most: np.ndarray, level: float) -> float:
    """Share of counts y inside the equal-tailed ``level`` interval [lower, upper] of their predictive
    distribution, from P(Y < y) and P(Y <= y): y >= lower iff P(Y <= y) >= (1 - level)/2, and
    y <= upper iff P(Y < y) < (1 + level)/2 (the rule of ``purchase_interval``, held equal by a test)."""
    tail = (1 - level) / 2
    inside = (np.asarray(at_most) >= tail - 1e-12) & (np.asarray(below) < 1 - tail - 1e-12)
    return float(inside.mean())


def pit_coverage(below: np.ndarray, at_most: np.ndarray, level: float) -> float:
    """Expected share of randomised PIT values U ~ Uniform[below, at_most] inside the central ``level``
    interval [(1 - level)/2, (1 + level)/2] (Czado, Gneiting & Held 2009): equal to ``level`` for a
    calibrated discrete forecast, with no randomness in the score itself."""
    lo, hi = (1 - level) / 2, (1 + level) / 2
    below, at_most = np.asarray(below, dtype=np.float64), np.asarray(at_most, dtype=np.float64)
    width = at_most - below
    overlap = np.clip(np.minimum(at_most, hi) - np.maximum(below, lo), 0.0, None)
    point = (below >= lo) & (below <= hi)  # a zero-width range: U = below
    share = np.where(width > 0, overlap / np.where(width > 0, width, 1.0), point.astype(float))
    return float(share.mean())


def score(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """The point-forecast metrics of the module docstring for one (model, horizon, target)."""
    from scipy import stats

    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    total = actual.sum()
    err = predicted - actual
    n_top = max(1, int(np.ceil(0.1 * len(actual))))
    # customers tied at the decile's edge share the remaining places equally (the expectation under a
    # random order), so that the share does not depend on row order (e.g. a constant forecast gets 10%)
    edge = np.sort(predicted)[::-1][n_top - 1]
    above, tied = predicted > edge, predicted == edge
    captured = actual[above].sum() + actual[tied].sum() * (n_top - above.sum()) / tied.sum()
    spearman = (float(stats.spearmanr(predicted, actual).statistic)
                if np.ptp(predicted) > 0 and np.ptp(actual) > 0 else float("nan"))
    return {
        "aggregate_error_pct": float(100 * err.sum() / total) if total else float("nan"),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err ** 2).mean())),
        "wape": float(np.abs(err).sum() / total) if total else float("nan"),
        "spearman": spearman,
        "top_decile_share": float(captured / total) if total else float("nan"),
    }


def total_interval(expected: float, predicted: np.ndarray, actual: np.ndarray, level: float,
                   scale: float = 1.0) -> tuple[float, float]:
    """The ``level`` interval of a total forecast ``expected`` from the same model's totals at earlier origins.

    The log errors l_k = log(actual_k / predicted_k) of the n origins are taken as independent draws of
    Normal(0, sigma^2), and the next total's error as one more from Normal(0, (scale sigma)^2): with
    s^2 = mean(l_k^2) (n degrees of freedom: no mean is estimated), log(actual / expected) / (scale s)
    follows Student's t with n degrees of freedom, so the interval is expected x exp(-+ t_n((1 + level) / 2)
    scale s). It holds what the origins measured: the parameters' uncertainty, the customers' own noise and
    the model's misfit, such as drifting purchase rates; it is as wide as that misfit varies between origins,
    and as reliable as n is large. ``scale`` carries the errors to a longer forecast than the origins'.

    Returns
    -------
    (lower, upper); (nan, nan) without an origin whose totals are both positive.
    """
    from scipy import stats

    predicted, actual = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    ok = (predicted > 0) & (actual > 0)
    n = int(ok.sum())
    if n == 0 or not expected > 0:
        return float("nan"), float("nan")
    s = float(np.sqrt(np.mean(np.log(actual[ok] / predicted[ok]) ** 2)))
    half = float(stats.t.ppf((1 + level) / 2, n)) * s * scale
    return float(expected * np.exp(-half)), float(expected * np.exp(half))


def tie_key(value: float) -> float:
    """A score rounded to 9 significant digits, the key that ranks candidates: scores that agree that far
    tie. Two fits of one model (a CNBD-k at k = 1 and the BG/NBD) agree only to the optimiser's tolerance,
    about 1e-7 in the parameters, so their scores differ in the last digits."""
    return float(f"{value:.9g}")
