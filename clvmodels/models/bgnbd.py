"""The BG/NBD model of purchasing and dropout (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

While active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase
they drop out with probability p ~ Beta(a, b). Functions here take numpy arrays (x = frequency,
t_x = recency, T = age) and the four parameters; :class:`BetaGeo` is the estimator around them.
Equation numbers refer to the paper.

Numerics. Everything is computed in log space with ``gammaln``/``betaln``/``logaddexp``. The expected
number of future purchases (eqs. 7 and 10) needs the Gauss hypergeometric function at arguments where
its textbook form overflows for large x; we use the Euler transformation

    ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)
        = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),      z = t / (alpha+T+t),

whose first two parameters do not grow with x, so scipy's series is short and well conditioned
(checked against 30-digit mpmath in the tests). At a = 1 the formula is 0/0; there the function is
taken as the mean of its values at a = 1 +- 1e-4 (error O(1e-8)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from ..errors import DataError
from ..timeunits import Horizon
from ._base import SummaryModel, as_float_array
from ._mle import compress, fingerprint, fit_mle

__all__ = [
    "BetaGeo",
    "loglik_terms",
    "loglik_and_grad",
    "p_alive",
    "expected_purchases_new",
    "conditional_expected_purchases",
    "pmf_new",
    "conditional_pmf",
    "expected_cumulative_purchases",
]

PARAMS = ("r", "alpha", "a", "b")
_A_EPS = 1e-4


# --- likelihood ------------------------------------------------------------------------------------

def _loglik_parts(r, alpha, a, b, x, t_x, T):
    """Common pieces of eq. (6): the shared term and the two log-terms combined by logaddexp."""
    shared = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    term1 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                         -np.inf)
    return shared, term1, term2


def loglik_terms(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood, FHL (2005) eq. (6).

    L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)),
    using B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1).
    """
    shared, term1, term2 = _loglik_parts(r, alpha, a, b, x, t_x, T)
    return shared + np.logaddexp(term1, term2)


def loglik_and_grad(theta: np.ndarray, x, t_x, T, w, x_groups=None) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood of eq. (6) and its analytic gradient in (r, alpha, a, b).

    The special functions depend on x only, so they are evaluated once per distinct x
    (``x_groups = np.unique(x, return_inverse=True)``, computed here if not given) and gathered.
    """
    r, alpha, a, b = theta
    xu, inv = x_groups if x_groups is not None else np.unique(x, return_inverse=True)
    log_alpha = np.log(alpha)
    shared = (gammaln(r + xu) - gammaln(r) + r * log_alpha + betaln(a, b + xu) - betaln(a, b))[inv]
    with np.errstate(divide="ignore"):
        log_ratio = np.where(xu > 0, np.log(a) - np.log(np.maximum(b + xu - 1, 1e-300)), -np.inf)[inv]
    k = r + x
    log_aT, log_atx = np.log(alpha + T), np.log(alpha + t_x)
    term1 = -k * log_aT
    term2 = log_ratio - k * log_atx
    lse = np.logaddexp(term1, term2)
    ll = float(np.dot(w, shared + lse))
    w2 = np.exp(term2 - lse)  # weight of the second term (0 when x = 0)
    w1 = 1.0 - w2
    d_r = (digamma(r + xu) - digamma(r) + log_alpha)[inv] - w1 * log_aT - w2 * log_atx
    d_alpha = r / alpha - k * (w1 / (alpha + T) + w2 / (alpha + t_x))
    dab = digamma(a + b) - digamma(a + b + xu)
    d_a = dab[inv] + w2 / a
    with np.errstate(divide="ignore"):
        inv_b = np.where(xu > 0, 1.0 / np.maximum(b + xu - 1, 1e-300), 0.0)
    d_b = (digamma(b + xu) - digamma(b) + dab)[inv] - w2 * inv_b[inv]
    grad = np.array([np.dot(w, d_r), np.dot(w, d_alpha), np.dot(w, d_a), np.dot(w, d_b)])
    return ll, grad


# --- predictions -----------------------------------------------------------------------------------

def p_alive(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T), FHL (2005) eq. (12), as a logistic of the log-odds of having dropped out."""
    x, t_x, T = np.broadcast_arrays(*map(np.asarray, (x, t_x, T)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def expected_purchases_new(r, alpha, a, b, t) -> np.ndarray:
    """E[X(t)] for a customer just acquired, FHL (2005) eq. (9)."""
    return _expected(r, alpha, a, b, 0.0, 0.0, t)


def _expected(r, alpha, a, b, x, T, t) -> np.ndarray:
    """E[purchases in (T, T+t] | active at T] for customers with x repeat purchases and age T.

    The future of an active customer is a BG/NBD process with posterior parameters (r+x, alpha+T, a, b+x);
    its expectation (eq. 9 with those parameters) in the Euler-transformed form of the module docstring.
    """
    if abs(a - 1.0) < _A_EPS:
        return 0.5 * (_expected_euler(r, alpha, 1.0 - _A_EPS, b, x, T, t)
                      + _expected_euler(r, alpha, 1.0 + _A_EPS, b, x, T, t))
    return _expected_euler(r, alpha, a, b, x, T, t)


def _expected_euler(r, alpha, a, b, x, T, t) -> np.ndarray:
    x, T, t = np.broadcast_arrays(*map(lambda v: np.asarray(v, dtype=np.float64), (x, T, t)))
    A = alpha + T
    z = t / (A + t)
    c = a + b + x - 1.0
    with np.errstate(under="ignore"):
        F = np.exp((a - 1.0) * (np.log(A) - np.log(A + t))) * _hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    return c / (a - 1.0) * (1.0 - F)


def _hyp2f1(d: float, e: float, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """scipy's 2F1 with a guard: for some integer parameter sets (e.g. 2F1(1, 1; 101; z > 0.9)) it
    returns inf for a finite value. There we average it at d -+ 1e-8 relative (error O(1e-16))."""
    out = np.asarray(hyp2f1(d, e, c, z), dtype=np.float64)
    bad = ~np.isfinite(out)
    if np.any(bad):
        eps = 1e-8 * max(abs(d), 1.0)
        cb, zb = np.broadcast_to(c, out.shape)[bad], np.broadcast_to(z, out.shape)[bad]
        out = out.copy()
        out[bad] = 0.5 * (hyp2f1(d - eps, e, cb, zb) + hyp2f1(d + eps, e, cb, zb))
    return out


def conditional_expected_purchases(r, alpha, a, b, x, t_x, T, t) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t units, FHL (2005) eq. (10)."""
    return p_alive(r, alpha, a, b, x, t_x, T) * _expected(r, alpha, a, b, x, T, t)


def pmf_new(r, alpha, a, b, t, n_max: int) -> np.ndarray:
    """P(X(t) = n), n = 0..n_max, for a new customer, FHL (2005) eq. (8). Shape (..., n_max + 1).

    The second term's bracket, 1 - (alpha/(alpha+t))^r sum_{j<n} Gamma(r+j)/(Gamma(r) j!) (t/(alpha+t))^j,
    is the upper tail of a negative binomial, computed as the regularised incomplete beta I_z(n, r).
    """
    r, alpha, t = np.broadcast_arrays(*map(lambda v: np.asarray(v, dtype=np.float64), (r, alpha, t)))
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), r.shape)
    n = np.arange(n_max + 1, dtype=np.float64)
    r_, alpha_, t_, b_ = (v[..., None] for v in (r, alpha, t, b))
    log_q = np.log(alpha_) - np.log(alpha_ + t_)
    log_z = np.log(t_) - np.log(alpha_ + t_)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = (betaln(a, b_ + n) - betaln(a, b_) + gammaln(r_ + n) - gammaln(r_) - gammaln(n + 1)
                 + r_ * log_q + np.where(n > 0, n * log_z, 0.0))
        tail = betainc(np.maximum(n, 1.0), r_, np.exp(log_z))
        second = np.where(n > 0, betaln(a + 1, np.maximum(b_ + n - 1, 1e-300)) - betaln(a, b_) + np.log(tail), -np.inf)
    return np.exp(np.logaddexp(first, second))


def conditional_pmf(r, alpha, a, b, x, t_x, T, t, n_max: int) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T), n = 0..n_max: dead with probability 1 - P(alive) (no purchase), else a
    BG/NBD new customer with posterior parameters (r+x, alpha+T, a, b+x) (Fader & Hardie 2007 note on
    P(X(t)=x) for the BG/NBD; the same reasoning as eq. 10)."""
    x, t_x, T = np.broadcast_arrays(*map(lambda v: np.asarray(v, dtype=np.float64), (x, t_x, T)))
    pa = p_alive(r, alpha, a, b, x, t_x, T)[..., None]
    probs = pa * pmf_new(r + x, alpha + T, a, b + x, t, n_max)
    probs[..., 0] += 1.0 - pa[..., 0]
    return probs


def expected_cumulative_purchases(r, alpha, a, b, first_purchase, times) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort at each calendar time in ``times``.

    ``first_purchase`` are the customers' acquisition times on the same clock; each contributes
    E[X(time - first_purchase)] (eq. 9) once acquired. This is the tracking curve of FHL (2005) fig. 3.
    """
    birth = np.asarray(first_purchase, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    uniq, counts = np.unique(birth, return_counts=True)
    age = times[:, None] - uniq[None, :]
    out = np.zeros_like(age)
    alive = age > 0
    out[alive] = expected_purchases_new(r, alpha, a, b, age[alive])
    return out @ counts


# --- estimator -------------------------------------------------------------------------------------

class BetaGeo(SummaryModel):
    """BG/NBD purchase and dropout model fitted by maximum likelihood.

    Parameters
    ----------
    maxiter
        Maximum L-BFGS-B iterations.
    start
        Optional starting values ``{"r", "alpha", "a", "b"}``; default r = a = b = 1 and alpha = the
        median age T (the internal time scale: with log-parameters, rescaling time by s only shifts
        log alpha by log s, so starting alpha at the data's own scale is the rescaling).

    Attributes
    ----------
    params_ : dict
        Fitted r, alpha (in the summary's time unit), a, b.
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details.
    loglik_ : float
        Maximised log-likelihood.
    time_unit_ : str or None
        The summary's time unit, used to convert horizons such as "1y".
    """

    model_name = "BetaGeo"
    param_names = PARAMS
    required_columns = ("frequency", "recency", "T")

    def __init__(self, maxiter: int = 2000, start: dict[str, float] | None = None) -> None:
        self.maxiter = maxiter
        self.start = start

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "BetaGeo":
        """Fit to a customer summary (frequency, recency, T); identical rows are compressed into weights.

        ``weights`` (array or column name) counts how many customers each row stands for.
        """
        x, t_x, T, w = self._prepare(summary, weights)
        if not np.any(x > 0):
            raise DataError("no customer has a repeat purchase: BG/NBD cannot separate purchasing from dropout",
                            columns=["frequency"])
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        groups = np.unique(ux, return_inverse=True)
        start = np.array([self.start[p] for p in PARAMS]) if self.start else np.array(
            [1.0, max(float(np.median(T)), 1e-3), 1.0, 1.0])
        result = fit_mle(
            "BG/NBD", PARAMS, lambda th: loglik_and_grad(th, ux, ut, uT, uw, groups), start,
            n_obs=float(uw.sum()), n_unique=len(uw), time_unit=self._time_unit(summary, time_unit),
            maxiter=self.maxiter,
            advice="Try another time unit, check for customers with implausible histories, or pass start=.")
        self._set_result(result, fingerprint((ux, ut, uT), uw))
        return self

    # predictions --------------------------------------------------------------------------------
    def _arrays(self, summary):
        self._check_fitted()
        x, t_x, T = (as_float_array(summary, c) for c in self.required_columns)
        self._check_values(x, t_x, T)
        return x, t_x, T

    def p_alive(self, summary: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at the end of their summary (eq. 12)."""
        x, t_x, T = self._arrays(summary)
        return pd.Series(p_alive(*self._p(), x, t_x, T), index=summary.index, name="p_alive")

    def expected_purchases(self, summary: pd.DataFrame, t: Horizon) -> pd.Series:
        """Expected purchases of each customer in the next ``t`` (a number of units or a horizon such as
        "1y"), conditional on their history (eq. 10)."""
        x, t_x, T = self._arrays(summary)
        tt = self._units(t)
        return pd.Series(conditional_expected_purchases(*self._p(), x, t_x, T, tt), index=summary.index,
                         name=f"expected_purchases_{self._label(t)}")

    def expected_purchases_new(self, t: Any) -> np.ndarray | float:
        """E[X(t)] for a newly acquired customer (eq. 9); ``t`` may be an array of numbers of units."""
        self._check_fitted()
        out = expected_purchases_new(*self._p(), self._units_array(t))
        return float(out) if np.ndim(out) == 0 else out

    def purchase_probabilities(self, summary: pd.DataFrame, t: Horizon, n_max: int = 10) -> pd.DataFrame:
        """P(Y(t) = n | history) for n = 0..n_max (columns); the rest of the mass is above n_max."""
        x, t_x, T = self._arrays(summary)
        probs = conditional_pmf(*self._p(), x, t_x, T, self._units(t), n_max)
        return pd.DataFrame(probs, index=summary.index, columns=pd.RangeIndex(n_max + 1, name="n"))

    def purchase_probabilities_new(self, t: Horizon, n_max: int = 10) -> pd.Series:
        """P(X(t) = n) for a newly acquired customer, n = 0..n_max (eq. 8)."""
        self._check_fitted()
        return pd.Series(pmf_new(*self._p(), self._units(t), n_max), index=pd.RangeIndex(n_max + 1, name="n"))

    def expected_cumulative_purchases(self, first_purchase: Any, times: Any) -> np.ndarray:
        """Tracking curve: expected cumulative repeat purchases of a cohort at each time in ``times``,
        each customer counted from its own ``first_purchase`` (same clock and unit)."""
        self._check_fitted()
        return expected_cumulative_purchases(*self._p(), first_purchase, times)
