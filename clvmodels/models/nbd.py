"""NBD: Poisson purchasing with gamma heterogeneity and no dropout (Ehrenberg 1959; Morrison & Schmittlein
1988), the baseline of the buy-till-you-die family (BTYDplus fits it as such).

Each customer buys at a constant rate lambda ~ Gamma(r, alpha) and never drops out. Given x repeat
purchases in (0, T], the purchase times have likelihood lambda^x exp(-lambda T), so over the gamma

    L(r, alpha | x, T) = Gamma(r + x) / Gamma(r) * alpha^r / (alpha + T)^(r + x)

(the BG/NBD's likelihood, FHL 2005 eq. 6, with no dropout). A customer's rate given the history is
Gamma(r + x, alpha + T), so P(alive) = 1,

    E[Y(t) | x, T] = (r + x) t / (alpha + T),

and Y(t) given the history is negative binomial with shape r + x and success probability
p = (alpha + T) / (alpha + T + t): P(Y(t) <= n | x, T) = I_p(r + x, n + 1), the regularised incomplete
beta function.

One module is the whole model: its kernels, its estimator, and (through the estimator's class) its
registry entry; the rest of clvmodels (customer value, the backtest, the report, the command line's
``--model nbd``, model files, Spark scoring) takes it through the model contract.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, digamma, gammaln

from ._base import SummaryModel, fit_time_unit
from ._mle import fingerprint, fit_mle, weighted_median
from .rows import compress
from .purchase import PurchasePredictions
from .weighted_sums import total

__all__ = ["NBD", "loglik_terms", "loglik_and_grad", "conditional_expected_purchases", "conditional_cdf"]

PARAMS = ("r", "alpha")


def loglik_terms(r, alpha, x, T) -> np.ndarray:
    """Each customer's log-likelihood (module docstring)."""
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)


def loglik_and_grad(theta: np.ndarray, x: np.ndarray, T: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood and its gradient in (r, alpha)."""
    r, alpha = theta
    log_aT = np.log(alpha + T)
    ll = total(w, loglik_terms(r, alpha, x, T))
    d_r = total(w, digamma(r + x) - digamma(r) + np.log(alpha) - log_aT)
    d_alpha = total(w, r / alpha - (r + x) / (alpha + T))
    return ll, np.array([d_r, d_alpha])


def conditional_expected_purchases(r, alpha, x, T, t) -> np.ndarray:
    """E[Y(t) | x, T] = (r + x) t / (alpha + T)."""
    return (r + x) * t / (alpha + T)


def conditional_cdf(r, alpha, x, T, t, cap: int) -> np.ndarray:
    """P(Y(t) <= n | x, T), n = 0..cap: the negative binomial's cdf, I_p(r + x, n + 1). Shape (..., cap + 1)."""
    shape = np.asarray(r + x, dtype=np.float64)[..., None]
    p = np.asarray((alpha + T) / (alpha + T + t), dtype=np.float64)[..., None]
    return betainc(shape, np.arange(1, cap + 2, dtype=np.float64), p)


class NBDPredictions(PurchasePredictions):
    """The NBD's kernels (:class:`clvmodels.models.purchase.PurchasePredictions`)."""

    param_names = PARAMS

    @staticmethod
    def p_alive_kernel(theta, x, t_x, T, seg=None) -> np.ndarray:
        """1: NBD customers never drop out."""
        return np.ones(np.broadcast_shapes(theta[0].shape, np.shape(x)))

    @staticmethod
    def expected_purchases_kernel(theta, x, t_x, T, times, seg) -> np.ndarray:
        """E[Y(t) | x, T] at every draw and each t in ``times``."""
        r, alpha = theta
        return np.stack([conditional_expected_purchases(r, alpha, x, T, t) for t in times], axis=-1)

    @staticmethod
    def expected_new_kernel(theta, t) -> np.ndarray:
        """E[X(t)] = r t / alpha for a newly acquired customer, at one draw."""
        r, alpha = theta
        return r * np.asarray(t, dtype=np.float64) / alpha

    @staticmethod
    def cdf_kernel(draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        """P(Y(t) <= n | x, T), n = 0..cap, averaged over the draws."""
        total = np.zeros((len(x), cap + 1))
        for theta in draws:
            total += conditional_cdf(theta[seg, 0], theta[seg, 1], x, T, t, cap)
        return total / len(draws)


class NBD(NBDPredictions, SummaryModel):
    """NBD purchase model (Poisson purchasing, gamma-distributed rates, no dropout) fitted by maximum
    likelihood: the baseline a buy-till-you-die model must beat.

    Parameters
    ----------
    maxiter
        Maximum optimiser iterations.
    start
        Optional starting values ``{"r", "alpha"}``; default r = 1 and alpha = the median age T.

    Attributes
    ----------
    params_ : dict
        Fitted r and alpha (in the summary's time unit).
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details.
    """

    model_name = "NBD"
    short_name, title = "nbd", "NBD"

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "NBD":
        """Fit to a customer summary (frequency, T; recency plays no part); identical rows are compressed
        into weights, and ``weights`` (array or column name) counts how many customers each row stands for."""
        x, _, T, w = self._prepare(summary, weights)
        (ux, uT), uw = compress(x, T, weights=w)
        start = (np.array([self.start[p] for p in PARAMS]) if self.start
                 else np.array([1.0, max(weighted_median(T, w), 1e-3)]))
        result = fit_mle("NBD", PARAMS, lambda th: loglik_and_grad(th, ux, uT, uw), start,
                         n_obs=float(uw.sum()), n_unique=len(uw), time_unit=fit_time_unit(summary, time_unit),
                         maxiter=self.maxiter, advice="Check for customers with implausible histories, or pass start=.")
        self._set_result(result, fingerprint((ux, uT), uw))
        return self
