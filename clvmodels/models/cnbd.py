"""The BG/CNBD-k model: BG/NBD dropout with Erlang-k inter-purchase times, which capture regular buying
(Reutterer, Platzer & Schröder 2021, "Leveraging purchase regularity for predicting customer behavior
the easy way", IJRM 38(1); Platzer & Reutterer 2016, Marketing Science 35(5)).

While active, a customer's inter-purchase times are Erlang-k with rate lambda ~ Gamma(r, alpha) (the
k-th event of a Poisson process of rate lambda: k = 1 is the BG/NBD's exponential, larger k ever more
regular); after each repeat purchase they drop out with probability p ~ Beta(a, b). With
``dropout_at_zero`` (the MBG/CNBD-k, :mod:`clvmodels.models.mbgcnbd`) the first purchase may end a life
too, z = 1 below (else z = 0).

Likelihood of x repeat purchases with gaps tau_i (sum t_x; ``litt`` = sum log tau_i) and none in
(t_x, T]. Given lambda, the gaps have density prod lambda^k tau_i^(k-1) e^(-lambda tau_i) / (k-1)!, and an
active customer's next purchase not yet by T has probability sum_{j<k} e^(-lambda g) (lambda g)^j / j!
(g = T - t_x: j Erlang phases elapsed). Over lambda and p (derived here from the paper's assumptions):

    L = exp((k-1) litt - x log (k-1)!) Gamma(r)^-1 alpha^r
        * { B(a, b+x+z)/B(a, b) sum_{j<k} g^j / j! Gamma(r+kx+j) / (alpha+T)^(r+kx+j)
            + [x+z > 0] B(a+1, b+x+z-1)/B(a, b) Gamma(r+kx) / (alpha+t_x)^(r+kx) }.

The first term is "still active", the second "dropped out after the last purchase"; P(alive) is the
first's share. Given alive, the number of elapsed phases J has weights w_j proportional to the first
term's summands, lambda | J = j ~ Gamma(r+kx+j, alpha+T) and p ~ Beta(a, b+x+z); the n-th future
purchase needs nk - j more phases, by t with probability I_u(nk-j, r+kx+j) (negative binomial tail,
u = t / (alpha+T+t)), and survival of the n-1 dropouts before it, B(a, b+x+z+n-1)/B(a, b+x+z). So

    P(Y(t) >= n | alive) = sum_j w_j B(a, b+x+z+n-1)/B(a, b+x+z) I_u(nk-j, r+kx+j),
    E[Y(t) | history] = P(alive) sum_{n>=1} P(Y(t) >= n | alive),

summed until the terms left are below 1e-12 of the mean. At k = 1 every formula is the BG/NBD's (MBG/NBD's),
which the tests hold to 1e-10.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, logsumexp

from ..errors import DataError
from ._base import SummaryModel, as_float_array, bad_rows, fit_time_unit
from ._mle import compress, fingerprint, fit_mle, subsample, weighted_median
from .persistence import OPTION_CHECKS
from .purchase import CDF_CELLS, PurchasePredictions

__all__ = ["BetaGeoCNBD", "CNBDFit", "CNBDPredictions", "loglik_terms", "loglik_and_grad", "p_alive",
           "survival_given_alive", "conditional_expected_purchases", "MAX_K"]

PARAMS = ("r", "alpha", "a", "b")
#: The largest k tried when k is chosen by likelihood.
MAX_K = 12


def _arrays(*values) -> list[np.ndarray]:
    return list(np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values)))


def _log_terms(r, alpha, a, b, x, t_x, T, k: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The logs of the module docstring's two terms, without the factors they share (alpha^r /
    Gamma(r) and the litt term): the first term's k summands (..., k), and the second term."""
    j = np.arange(k, dtype=np.float64)
    R = (r + k * x)[..., None] + j
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(T - t_x)[..., None]
        phase_gap = np.where(j == 0, 0.0, j * gap)
        beta_alive = betaln(a, b + x + z) - betaln(a, b)
        alive = beta_alive[..., None] + phase_gap - gammaln(j + 1) + gammaln(R) - R * np.log(alpha + T)[..., None]
        gone = np.where(x + z > 0, beta_alive + np.log(a) - np.log(np.maximum(b + x + z - 1, 1e-300))
                        + gammaln(r + k * x) - (r + k * x) * np.log(alpha + t_x), -np.inf)
    return alive, gone


def loglik_terms(r, alpha, a, b, x, t_x, T, litt, *, k: int, dropout_at_zero: bool = False) -> np.ndarray:
    """Each customer's log-likelihood (module docstring; Reutterer et al. 2021), the Erlang-k
    timing density's terms (``litt``) included."""
    r, alpha, a, b, x, t_x, T, litt = _arrays(r, alpha, a, b, x, t_x, T, litt)
    alive, gone = _log_terms(r, alpha, a, b, x, t_x, T, k, float(dropout_at_zero))
    return ((k - 1) * litt - x * gammaln(k) + r * np.log(alpha) - gammaln(r)
            + np.logaddexp(logsumexp(alive, axis=-1), gone))


def p_alive(r, alpha, a, b, x, t_x, T, *, k: int, dropout_at_zero: bool = False) -> np.ndarray:
    """P(alive | x, t_x, T): the first term's share of the likelihood (module docstring)."""
    r, alpha, a, b, x, t_x, T = _arrays(r, alpha, a, b, x, t_x, T)
    alive, gone = _log_terms(r, alpha, a, b, x, t_x, T, k, float(dropout_at_zero))
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(gone), 1.0, expit(logsumexp(alive, axis=-1) - gone))


class CNBDData:
    """Distinct (x, t_x, T) rows with their weights, for repeated likelihood evaluation at one k; the
    timing density's share, which no parameter changes, is the constant ``timing``."""

    def __init__(self, x, t_x, T, w, k: int, dropout_at_zero: bool, timing: float = 0.0) -> None:
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T, w))
        self.k, self.z, self.timing = int(k), float(dropout_at_zero), float(timing)


def loglik_and_grad(theta: np.ndarray, data: CNBDData) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (plus ``data.timing``) and its gradient in (r, alpha, a, b).

    With terms L_i (the k summands of "alive" and the "gone" term) combined by logsumexp, the gradient
    is the softmax-weighted mean of theirs: d/dr of a summand j is psi(r+kx+j) - ln(alpha+T), of "gone"
    psi(r+kx) - ln(alpha+t_x); d/dalpha -(r+kx+j)/(alpha+T) and -(r+kx)/(alpha+t_x); both share
    ln(alpha) - psi(r), r/alpha and the beta terms' psi(a+b) - psi(a+b+x+z) (a) and
    psi(b+x+z) - psi(b) + psi(a+b) - psi(a+b+x+z) (b); "gone" adds 1/a and -1/(b+x+z-1).
    """
    r, alpha, a, b = theta
    x, t_x, T, w, k, z = data.x, data.t_x, data.T, data.w, data.k, data.z
    alive, gone = _log_terms(r, alpha, a, b, x, t_x, T, k, z)
    terms = np.concatenate([alive, gone[:, None]], axis=1)
    total = logsumexp(terms, axis=1)
    share = np.exp(terms - total[:, None])
    j = np.arange(k, dtype=np.float64)
    R = r + k * x
    d_r = (share[:, :k] * (digamma(R[:, None] + j) - np.log(alpha + T)[:, None])).sum(axis=1)
    d_alpha = -(share[:, :k] * (R[:, None] + j)).sum(axis=1) / (alpha + T)
    gone_share = share[:, k]
    with np.errstate(invalid="ignore"):
        d_r += np.where(gone_share > 0, gone_share * (digamma(R) - np.log(alpha + t_x)), 0.0)
        d_alpha -= np.where(gone_share > 0, gone_share * R / (alpha + t_x), 0.0)
    d_ab = digamma(a + b) - digamma(a + b + x + z)
    d_a = d_ab + gone_share / a
    d_b = d_ab + digamma(b + x + z) - digamma(b) - gone_share / np.maximum(b + x + z - 1, 1e-300)
    ll = float(np.dot(w, total)) + w.sum() * (r * math.log(alpha) - gammaln(r)) + data.timing
    grad = np.array([np.dot(w, d_r) + w.sum() * (math.log(alpha) - digamma(r)),
                     np.dot(w, d_alpha) + w.sum() * r / alpha, np.dot(w, d_a), np.dot(w, d_b)])
    return ll, grad


# --- predictions -----------------------------------------------------------------------------------

def _support(r, alpha, x, T, t, k: int) -> np.ndarray:
    """How many future purchases n to sum for each row: past the negative binomial of the phases (mean
    m u/(1-u) and sd sqrt(m u)/(1-u) for shape m = r+kx+k-1) by 10 sd, and past the geometric tail
    u^n < 1e-13, so that the neglected terms are below 1e-12 of the mean."""
    m = r + k * x + k - 1
    u = t / (alpha + T + t)
    with np.errstate(divide="ignore"):
        geometric = 30.0 / -np.log(np.maximum(u, 1e-300))
    phases = m * u / (1 - u) + 10 * np.sqrt(m * u) / (1 - u) + 10 + geometric
    return np.ceil(phases / k).astype(np.int64) + 1


def survival_given_alive(r, alpha, a, b, x, t_x, T, t, n_max: int, *, k: int,
                         dropout_at_zero: bool = False) -> np.ndarray:
    """P(Y(t) >= n | active at T, x, t_x, T), n = 1..n_max (module docstring): shape (..., n_max).

    The negative binomial tails I_u(m, r+kx+j) for m = nk - j are 1 minus the cumulative sums of its pmf
    over m < k n_max (each term's log a cumulative sum of the recurrence's log-ratios, so nothing
    underflows), a twentieth of the cost of an incomplete beta per m; their absolute error is about
    1e-16 per term.
    """
    r, alpha, a, b, x, t_x, T, t = _arrays(r, alpha, a, b, x, t_x, T, t)
    z = float(dropout_at_zero)
    alive, _ = _log_terms(r, alpha, a, b, x, t_x, T, k, z)
    weights = np.exp(alive - logsumexp(alive, axis=-1, keepdims=True))  # (..., k): elapsed phases j
    n = np.arange(1, n_max + 1, dtype=np.float64)
    q = (b + x + z)[..., None]
    # B(a, q+n-1) / B(a, q): the ratio of consecutive terms is (q+n-2) / (a+q+n-2)
    steps = (q + n[:-1] - 1) / (a[..., None] + q + n[:-1] - 1)
    survive = np.concatenate([np.ones(steps.shape[:-1] + (1,)), np.cumprod(steps, axis=-1)], axis=-1)
    u = (t / (alpha + T + t))[..., None, None]
    R = (r + k * x)[..., None, None] + np.arange(k, dtype=np.float64)[:, None]  # (..., k, 1)
    m = np.arange(1, k * n_max, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        # log pmf(m) = R log(1-u) + sum_{i<m} log((R+i) u / (i+1)): one log per term
        steps = np.log((R + m - 1) * (u / m))
        log_pmf = np.concatenate([np.broadcast_to(R * np.log1p(-u), steps.shape[:-1] + (1,)),
                                  R * np.log1p(-u) + np.cumsum(steps, axis=-1)], axis=-1)
        log_pmf = np.where(u > 0, log_pmf, np.where(np.arange(k * n_max) == 0, 0.0, -np.inf))
    # P(NB >= m) for m = 1..k n_max, then the m = nk - j of each phase j
    tail = np.clip(1.0 - np.cumsum(np.exp(log_pmf), axis=-1), 0.0, 1.0)  # (..., k, k n_max)
    idx = (n[None, :] * k - np.arange(k)[:, None] - 1).astype(np.int64)  # (k, n_max)
    tail = np.take_along_axis(tail, np.broadcast_to(idx, tail.shape[:-1] + (n_max,)), axis=-1)
    return survive * np.einsum("...j,...jn->...n", weights, tail)


def expected_given_alive(r, alpha, a, b, x, t_x, T, t, *, k: int, dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | active at T, x, t_x, T] = sum_n P(Y(t) >= n | alive), over each row's own support
    (:func:`_support`), rows grouped by support (a multiple of 16) within the cdf cell budget."""
    full = _arrays(r, alpha, a, b, x, t_x, T, t)
    shape = full[0].shape
    values = [v.ravel() for v in full]
    r, alpha, a, b, x, t_x, T, t = values
    out = np.zeros(r.shape)
    need = _support(r, alpha, x, T, t, k)
    caps = 16 * np.ceil(need / 16).astype(np.int64)  # (rows grouped by support, to 16 terms)
    positive = t > 0
    for cap in np.unique(caps[positive]):
        rows = np.flatnonzero(positive & (caps == cap))
        step = max(1, CDF_CELLS // (int(cap) * k * k))
        for s in range(0, len(rows), step):
            pos = rows[s:s + step]
            out[pos] = survival_given_alive(*(v[pos] for v in values), int(cap), k=k,
                                            dropout_at_zero=dropout_at_zero).sum(axis=-1)
    return out.reshape(shape)


def conditional_expected_purchases(r, alpha, a, b, x, t_x, T, t, *, k: int,
                                   dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | x, t_x, T] = P(alive) E[Y(t) | alive] (module docstring)."""
    return (p_alive(r, alpha, a, b, x, t_x, T, k=k, dropout_at_zero=dropout_at_zero)
            * expected_given_alive(r, alpha, a, b, x, t_x, T, t, k=k, dropout_at_zero=dropout_at_zero))


class CNBDPredictions(PurchasePredictions):
    """The (M)BG/CNBD-k's kernels at the fitted k (``k_``), over which
    :class:`clvmodels.models.purchase.PurchasePredictions` predicts."""

    param_names = PARAMS
    #: Whether a customer may drop out at time zero, after the first purchase (MBG/CNBD-k).
    dropout_at_zero: bool = False
    k_: int

    def p_alive_kernel(self, theta, x, t_x, T, seg=None) -> np.ndarray:
        """P(alive | x, t_x, T) at every draw."""
        return p_alive(*theta, x, t_x, T, k=int(self.k_), dropout_at_zero=self.dropout_at_zero)

    def expected_purchases_kernel(self, theta, x, t_x, T, times, seg) -> np.ndarray:
        """E[Y(t) | history] at every draw and each t in ``times``; the sum over future purchases once per
        distinct (segment, x, t_x, T)."""
        _, first, inv = np.unique(np.stack([seg, x[0], t_x[0], T[0]]), axis=1, return_index=True,
                                  return_inverse=True)
        inv = inv.ravel()
        th = [np.broadcast_to(v, (v.shape[0], x.shape[1]))[:, first] for v in theta]
        data = (x[:, first], t_x[:, first], T[:, first])
        pa = p_alive(*th, *data, k=int(self.k_), dropout_at_zero=self.dropout_at_zero)
        return np.stack([(pa * expected_given_alive(*th, *data, t, k=int(self.k_),
                                                    dropout_at_zero=self.dropout_at_zero))[:, inv]
                         for t in times], axis=-1)

    def cdf_kernel(self, draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        """P(Y(t) <= n | history) = 1 - P(alive) P(Y(t) >= n + 1 | alive), n = 0..cap, averaged over the
        draws."""
        total = np.zeros((len(x), cap + 1))
        k, z = int(self.k_), self.dropout_at_zero
        step = max(1, CDF_CELLS // (k * k * (cap + 1)))  # (the phases' arrays hold k x k (cap + 1) per row)
        for theta in draws:
            for s in range(0, len(x), step):
                rows = slice(s, s + step)
                th = [theta[seg[rows], i] for i in range(4)]
                data = (x[rows], t_x[rows], T[rows])
                pa = p_alive(*th, *data, k=k, dropout_at_zero=z)
                total[rows] += 1.0 - pa[:, None] * survival_given_alive(*th, *data, t, cap + 1, k=k, dropout_at_zero=z)
        return total / len(draws)

    def expected_new_kernel(self, theta, t) -> np.ndarray:
        """E[X(t)] for a newly acquired customer: the conditional expectation at x = t_x = T = 0."""
        tt = np.asarray(t, dtype=np.float64)
        return conditional_expected_purchases(*theta, 0.0, 0.0, 0.0, tt, k=int(self.k_),
                                              dropout_at_zero=self.dropout_at_zero)


def _check_k(value: Any, field: str, check, cls: type) -> Any:
    return check.integer(value, field, low=1, none=True)


class CNBDFit(CNBDPredictions, SummaryModel):
    """The maximum-likelihood fit of the (M)BG/CNBD-k (not itself a registered model: :class:`BetaGeoCNBD`
    and :class:`clvmodels.models.mbgcnbd.ModifiedBetaGeoCNBD` are).

    Parameters
    ----------
    k
        The Erlang shape of the inter-purchase times; None (default) chooses it by likelihood: k = 1, 2,
        ... is fitted until the log-likelihood has fallen twice in a row, or ``max_k``.
    max_k
        The largest k tried when ``k`` is None.
    maxiter, start
        As for :class:`clvmodels.BetaGeo`.

    Attributes
    ----------
    k_ : int
        The k fitted.
    params_, result_
        Fitted r, alpha (the rate of the Erlang phases, in the summary's time unit), a, b, and the fit
        (its ``extra`` lists the log-likelihood at each k tried).
    """

    option_checks = {**OPTION_CHECKS, "k": _check_k,
                     "max_k": lambda v, f, c, cls: c.integer(v, f, low=1)}
    saved_attributes = {"k_": (1.0, 1000.0)}

    def __init__(self, k: int | None = None, max_k: int = MAX_K, maxiter: int = 2000,
                 start: dict[str, float] | None = None) -> None:
        super().__init__(maxiter=maxiter, start=start)
        self.k = k
        self.max_k = max_k

    def input_columns(self) -> list[str]:
        """frequency, recency, T and litt (the timing statistic the likelihood reads)."""
        return [*super().input_columns(), "litt"]

    def validate(self, summary: pd.DataFrame, *, weights: Any = None) -> None:
        """Check a summary's columns and values as ``fit`` does (litt too, unless k = 1), without fitting."""
        x, t_x, _, _ = self._prepare(summary, weights)
        if self.k != 1:
            self._litt(summary, x, t_x)

    def _litt(self, summary: pd.DataFrame, x: np.ndarray, t_x: np.ndarray) -> np.ndarray:
        if "litt" not in summary.columns:
            raise DataError(f"{self.title} needs the summary's litt column (the sum of the logs of the "
                            "inter-purchase times), which continuous-time summaries made by clvmodels (rfm_summary, "
                            "calibration_holdout, clvmodels summarize without --period) carry; summaries by period "
                            "do not: summarise the log again", columns=["litt"])
        litt = as_float_array(summary, "litt")
        bad_rows(~np.isfinite(litt), "litt is missing, NaN or infinite", ["litt"])
        bad_rows((x == 0) & (litt != 0), "litt is not 0 for a customer without repeat purchases", ["litt", "frequency"])
        # x gaps summing to t_x: sum log gap <= x log(t_x / x) (the arithmetic-geometric mean inequality)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(x > 0, x * np.log(t_x / np.maximum(x, 1)), 0.0)
        bad_rows((x > 0) & (litt > bound + 1e-9 * (1 + np.abs(bound))),
                 "litt is larger than frequency x log(recency / frequency): no gaps summing to recency give it",
                 ["litt", "recency", "frequency"])
        return litt

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "CNBDFit":
        """Fit to a customer summary (frequency, recency, T, litt); with ``k`` None, also choose k."""
        x, t_x, T, w = self._prepare(summary, weights)
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1):
            raise ValueError(f"k must be a whole number >= 1 or None, got {self.k!r}")
        if isinstance(self.max_k, bool) or not isinstance(self.max_k, (int, np.integer)) or self.max_k < 1:
            raise ValueError(f"max_k must be a whole number >= 1, got {self.max_k!r}")
        self._require_repeat_buyers(x, w)
        litt = self._litt(summary, x, t_x) if self.k != 1 else np.zeros_like(x)
        unit = fit_time_unit(summary, time_unit)
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        sub = subsample(uw)
        fits: dict[int, Any] = {}
        for k in ([int(self.k)] if self.k is not None else range(1, int(self.max_k) + 1)):
            fits[k] = self._fit_k(k, ux, ut, uT, uw, sub, float(np.dot(w, (k - 1) * litt - x * gammaln(k))),
                                  float(weighted_median(T, w)), unit)
            lls = [f.loglik for f in fits.values()]
            if len(lls) >= 3 and lls[-1] < lls[-2] < lls[-3]:
                break
        k_best = max(fits, key=lambda k: fits[k].loglik)
        result = fits[k_best]
        profile = ", ".join(f"k = {k}: {f.loglik:.4f}" for k, f in fits.items())
        extra = {**result.extra, "k": k_best,
                 "k chosen": f"by likelihood ({profile})" if self.k is None else "given"}
        result = type(result)(**{**{f: getattr(result, f) for f in result.__dataclass_fields__}, "extra": extra})
        self.k_ = k_best
        # the data: the distinct rows, and the timing statistic (which enters the likelihood through its sum)
        self._set_result(result, fingerprint((ux, ut, uT, np.array([float(k_best), float(np.dot(w, litt))])), uw))
        return self

    def _fit_k(self, k, ux, ut, uT, uw, sub, timing, median_T, unit):
        data = CNBDData(ux, ut, uT, uw, k, self.dropout_at_zero, timing)
        pre = (CNBDData(ux[sub[0]], ut[sub[0]], uT[sub[0]], sub[1], k, self.dropout_at_zero)
               if sub is not None else None)
        # the phases' rate is k times the purchase rate: alpha starts at the median age over k
        start = np.array([self.start[p] for p in PARAMS]) if self.start else np.array(
            [1.0, max(median_T, 1e-3) / k, 1.0, 1.0])
        return fit_mle(
            f"{self.title} (k = {k})", PARAMS, lambda th: loglik_and_grad(th, data), start,
            n_obs=float(uw.sum()), n_unique=len(uw), time_unit=unit, maxiter=self.maxiter,
            advice="Try another time unit, a fixed k, or pass start=.",
            presolve=(lambda th: loglik_and_grad(th, pre)) if pre is not None else None)


class BetaGeoCNBD(CNBDFit):
    """BG/CNBD-k purchase and dropout model (Erlang-k inter-purchase times) fitted by maximum likelihood;
    k chosen by likelihood unless given (:class:`CNBDFit` for the options)."""

    model_name = "BetaGeoCNBD"
    short_name, title = "bgcnbd", "BG/CNBD-k"
