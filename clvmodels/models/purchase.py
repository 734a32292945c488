"""What every purchase model predicts, over its parameter draws: the same calls and shapes for each
model and each fit method. A purchase model supplies four kernels of its own formulas
(``p_alive_kernel``, ``expected_purchases_kernel``, ``cdf_kernel``, ``expected_new_kernel``);
:class:`PurchasePredictions` turns them into ``p_alive``, ``expected_purchases``,
``purchase_probabilities``, ``purchase_interval``, ``purchase_cdf``, ``expected_purchases_new`` and
``expected_cumulative_purchases`` (:class:`clvmodels.models._base.Predictor`, :mod:`clvmodels.draws`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..draws import DEFAULT_DRAWS, check_interval
from ..errors import DataError
from ..timeunits import Horizon
from ._base import Predictor, check_rfm

__all__ = ["PurchasePredictions", "cohort_cumulative", "sized_cdfs", "interval_table", "cdf_table", "check_counts", "CDF_CELLS",
           "CDF_TOLERANCE"]

#: Customers x support values of a predictive cdf held at once (32 MB of float64).
CDF_CELLS = 4_000_000
#: A cdf within this of a quantile's level counts as reaching it (rounding in the cumulative sum).
CDF_TOLERANCE = 1e-12


def check_counts(counts: Any, n: int) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.shape != (n,):
        raise DataError(f"counts must have one value per customer ({n}), got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise DataError(f"counts must be numbers, got dtype {arr.dtype}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr)))
    if len(bad):
        raise DataError("counts must be whole numbers >= 0", rows=bad[:5], n_rows=len(bad))
    return arr.astype(np.int64)


def sized_cdfs(mean: np.ndarray, cdf: Callable[[np.ndarray, int], np.ndarray], tail: float | None = None,
               counts: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (customer positions, P(Y <= n), n = 0..cap) in chunks, the support sized from each customer's
    predictive distribution, given its ``mean`` and ``cdf(positions, cap)``.

    With ``counts``, the support reaches every count (the cdf at y needs the pmf up to y only). With
    ``tail``, it starts at 8 x mean + 30 and doubles until the cdf reaches 1 - tail; Markov's inequality,
    P(Y >= n) <= mean / n, puts the upper quantile at or below mean / tail, which bounds the growth (past
    it, the pmf has lost accuracy: ArithmeticError). Customers go by their support, rounded up to a power
    of two (at least 32), in chunks of at most CDF_CELLS values.
    """
    need = counts + 1 if counts is not None else np.ceil(8 * mean + 30)
    caps = (2 ** np.ceil(np.log2(np.maximum(need, 32)))).astype(np.int64)
    # (rows, cap) pieces of work, each at most CDF_CELLS values; rows whose cdf falls short come back
    # with a doubled cap, split again
    work = [(np.flatnonzero(caps == c), int(c)) for c in np.unique(caps)]
    while work:
        group, cap = work.pop(0)
        step = max(1, CDF_CELLS // (cap + 1))
        for s in range(0, len(group), step):
            rows = group[s:s + step]
            values = cdf(rows, cap)
            if tail is None:
                yield rows, values
                continue
            done = values[:, -1] >= 1.0 - tail - CDF_TOLERANCE
            yield rows[done], values[done]
            pending = rows[~done]
            if not pending.size:
                continue
            bound = int(np.ceil(mean[pending].max() / tail)) + 1
            if cap >= bound:
                raise ArithmeticError(
                    f"P(Y(t) = n | history) sums to less than {1 - tail:g} over n <= {cap} although its "
                    f"mean is {mean[pending].max():.6g}: the pmf lost accuracy (customers at positions "
                    f"{pending[:5].tolist()})")
            work.append((pending, min(2 * cap, bound)))


def interval_table(chunks, tail: float, index) -> pd.DataFrame:
    """Equal-tailed count quantiles (columns ``lower``, ``upper``) from (positions, cdf) chunks: the
    smallest n with P(Y <= n) >= tail, and with P(Y <= n) >= 1 - tail (capped at the cdf's last n)."""
    lower = np.empty(len(index), dtype=np.int64)
    upper = np.empty(len(index), dtype=np.int64)
    for idx, cdf in chunks:
        cap = cdf.shape[1] - 1
        lower[idx] = np.minimum((cdf < tail - CDF_TOLERANCE).sum(axis=1), cap)
        upper[idx] = np.minimum((cdf < 1.0 - tail - CDF_TOLERANCE).sum(axis=1), cap)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=index)


def cdf_table(chunks, counts: np.ndarray, index) -> pd.DataFrame:
    """P(Y < y) and P(Y <= y) at each customer's count y from (positions, cdf) chunks (the cdf must
    reach every y in its chunk)."""
    below = np.empty(len(index))
    at_most = np.empty(len(index))
    for idx, cdf in chunks:
        y = counts[idx]
        rows = np.arange(len(idx))
        at_most[idx] = np.minimum(cdf[rows, y], 1.0)
        below[idx] = np.where(y > 0, np.minimum(cdf[rows, np.maximum(y - 1, 0)], 1.0), 0.0)
    return pd.DataFrame({"below": below, "at_most": at_most}, index=index)


def cohort_cumulative(expected_new: Callable[[np.ndarray], np.ndarray], first_purchase: Any, times: Any) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort at each calendar time in ``times``: each customer,
    acquired at ``first_purchase`` (the same clock and unit), contributes E[X(time - first_purchase)]
    once acquired (``expected_new``, of an array of ages). The tracking curve of FHL (2005) fig. 3."""
    birth = np.asarray(first_purchase, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    uniq, counts = np.unique(birth, return_counts=True)
    age = times[:, None] - uniq[None, :]
    out = np.zeros_like(age)
    alive = age > 0
    out[alive] = expected_new(age[alive])
    return out @ counts


class PurchasePredictions(Predictor):
    """The purchase models' calls, from their kernels (module docstring).

    Kernels (``theta``: each parameter as a (draws, customers) array; data (1, customers) arrays):

    - ``p_alive_kernel(theta, x, t_x, T, seg)`` -> (draws, customers);
    - ``expected_purchases_kernel(theta, x, t_x, T, times, seg)`` -> (draws, customers, len(times));
    - ``cdf_kernel(draws, seg, x, t_x, T, t, cap)`` -> P(Y(t) <= n | history), n = 0..cap, averaged over
      ``draws`` (draw, segment, parameter), one row per customer;
    - ``expected_new_kernel(theta, t)`` -> E[X(t)] for a newly acquired customer at one draw (``theta``
      the parameters as numbers; ``t`` an array of durations).
    """

    required_columns = ("frequency", "recency", "T")
    role = "purchase"

    @staticmethod
    def p_alive_kernel(theta, x, t_x, T, seg=None) -> np.ndarray:
        raise NotImplementedError("a purchase model defines p_alive_kernel (PurchasePredictions)")

    @staticmethod
    def expected_purchases_kernel(theta, x, t_x, T, times, seg) -> np.ndarray:
        raise NotImplementedError("a purchase model defines expected_purchases_kernel (PurchasePredictions)")

    @staticmethod
    def cdf_kernel(draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        raise NotImplementedError("a purchase model defines cdf_kernel (PurchasePredictions)")

    @staticmethod
    def expected_new_kernel(theta, t) -> np.ndarray:
        raise NotImplementedError("a purchase model defines expected_new_kernel (PurchasePredictions)")

    def _check_values(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *_: np.ndarray) -> None:
        check_rfm(x, t_x, T)

    def p_alive(self, summary: pd.DataFrame, interval: float | None = None,
                max_draws: int = DEFAULT_DRAWS) -> pd.Series | pd.DataFrame:
        """Probability that each customer is still active at the end of their summary."""
        return self._predict(summary, "p_alive", self.p_alive_kernel, interval, max_draws)

    def expected_purchases(self, summary: pd.DataFrame, t: Horizon, interval: float | None = None,
                           max_draws: int = DEFAULT_DRAWS) -> pd.Series | pd.DataFrame:
        """Expected purchases of each customer in the next ``t`` (a number of units or a horizon such as
        "1y"), conditional on their history."""
        tt = self._units(t)

        def kernel(theta, x, t_x, T, seg):
            return self.expected_purchases_kernel(theta, x, t_x, T, [tt], seg)[..., 0]

        return self._predict(summary, f"expected_purchases_{self._label(t)}", kernel, interval, max_draws)

    def purchase_probabilities(self, summary: pd.DataFrame, t: Horizon, n_max: int = 10,
                               max_draws: int = DEFAULT_DRAWS) -> pd.DataFrame:
        """P(Y(t) = n | history) for n = 0..n_max (columns), averaged over the parameter draws; the rest
        of the mass is above n_max."""
        x, t_x, T = self.prediction_arrays(summary)
        cdf = self.cdf_kernel(*self.group_draws(summary, None, max_draws), x, t_x, T, self._units(t), n_max)
        return pd.DataFrame(np.diff(cdf, axis=1, prepend=0.0), index=summary.index,
                            columns=pd.RangeIndex(n_max + 1, name="n"))

    def _predictive_cdf(self, summary: pd.DataFrame, t: Horizon, tail: float | None, max_draws: int,
                        counts: np.ndarray | None = None):
        """(positions, P(Y(t) <= n | history)) chunks over the parameter draws, the support sized from each
        customer's predictive mean (:func:`sized_cdfs`)."""
        x, t_x, T = self.prediction_arrays(summary)
        draws, seg = self.group_draws(summary, None, max_draws)
        mean = self.expected_purchases(summary, t, max_draws=max_draws).to_numpy()
        tt = self._units(t)

        def cdf(pos: np.ndarray, cap: int) -> np.ndarray:
            return self.cdf_kernel(draws, seg[pos], x[pos], t_x[pos], T[pos], tt, cap)

        return sized_cdfs(mean, cdf, tail, counts)

    def purchase_interval(self, summary: pd.DataFrame, t: Horizon, level: float = 0.9,
                          max_draws: int = DEFAULT_DRAWS) -> pd.DataFrame:
        """Predictive interval for each customer's number of purchases in the next ``t``: the equal-tailed
        quantiles of P(Y(t) = n | history) averaged over the parameter draws (for a maximum-likelihood
        fit, at its estimate: a plug-in interval; for a Bayesian fit, over the posterior, so parameter
        uncertainty is included). ``level`` is the coverage of the count itself, where ``interval=``
        of the other calls bounds an expectation. Counts are discrete, so the coverage is at least
        ``level``.

        Returns columns ``lower`` and ``upper``. The support of the distribution grows with each
        customer's forecast until it holds the upper quantile, however frequent the buyer.
        """
        check_interval(level, "level")
        tail = (1.0 - level) / 2
        return interval_table(self._predictive_cdf(summary, t, tail, max_draws), tail, summary.index)

    def expected_purchases_new(self, t: Any, max_draws: int = DEFAULT_DRAWS) -> np.ndarray | float:
        """E[X(t)] for a newly acquired customer of the population (averaged over the parameter draws);
        ``t`` may be an array of numbers of units."""
        self.refuse_covariates("a newly acquired customer's purchases")
        draws = self.param_draws(None, max_draws)
        if draws.shape[1] != 1:
            raise ValueError("a newly acquired customer's purchases need one population; this model has "
                             "segments: predict per customer instead")
        return self._expected_new(draws[:, 0], self._units_array(t))

    def _expected_new(self, draws: np.ndarray, t: np.ndarray) -> np.ndarray | float:
        """E[X(t)] at one group's parameter draws (draw, parameter), averaged over the draws."""
        out = np.mean([self.expected_new_kernel(tuple(d), t) for d in draws], axis=0)
        return float(out) if np.ndim(out) == 0 else out

    def expected_cumulative_purchases(self, first_purchase: Any, times: Any, *, incremental: bool = False,
                                      summary: pd.DataFrame | None = None,
                                      max_draws: int = DEFAULT_DRAWS) -> np.ndarray:
        """Tracking curve: expected cumulative repeat purchases of a cohort at each time in ``times``,
        each customer counted from its own ``first_purchase`` (same clock and unit;
        :func:`cohort_cumulative`). With ``incremental=True``, the expected purchases between consecutive
        times (the first from time 0).

        ``summary`` (the customers of ``first_purchase``, in its order) gives each customer their own
        parameters: needed for a model with covariates or segments, whose customers differ."""
        if summary is None:
            cum = cohort_cumulative(self.expected_purchases_new, first_purchase, times)
        else:
            draws, codes = self.group_draws(summary, None, max_draws)
            birth = np.asarray(first_purchase, dtype=np.float64)
            if birth.shape != codes.shape:
                raise ValueError(f"first_purchase has {birth.size} values for the summary's {codes.size} customers")
            cum = sum(cohort_cumulative(lambda age, g=g: self._expected_new(draws[:, g], age), birth[codes == g], times)
                      for g in np.unique(codes))
        return np.diff(cum, prepend=0.0) if incremental else cum

    def purchase_cdf(self, summary: pd.DataFrame, t: Horizon, counts: Any,
                     max_draws: int = DEFAULT_DRAWS) -> pd.DataFrame:
        """The predictive distribution of each customer's purchases in the next ``t`` at the observed
        ``counts`` y: columns ``below`` = P(Y < y) and ``at_most`` = P(Y <= y). A randomised PIT value
        is uniform on [below, at_most]; with a calibrated model it is uniform on [0, 1] over customers
        (Czado, Gneiting & Held 2009), which is how the backtest scores discrete intervals."""
        counts = check_counts(counts, len(summary))
        return cdf_table(self._predictive_cdf(summary, t, None, max_draws, counts), counts, summary.index)
