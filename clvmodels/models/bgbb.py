"""BG/BB: the beta-geometric/beta-binomial model of discrete-time purchase opportunities (Fader, Hardie
& Shang 2010, "Customer-Base Analysis in a Discrete-Time Noncontractual Setting", Marketing Science
29(6), 1086-1108; FHS below).

A customer's opportunities are the whole periods after the one of their first transaction (period 0):
t = 1, 2, ... At the start of each opportunity a living customer dies with probability theta ~ Beta(gamma,
delta) (for good); a living customer transacts at an opportunity with probability p ~ Beta(alpha, beta),
at most once. A summary by period (:func:`clvmodels.period_summary`) gives x = opportunities with a
transaction (``frequency``), t_x = the last of them (``recency``, 0 if none) and n = the opportunities
observed (``T``), all whole numbers.

Formulas (derived here from that story; equation numbers: (7) and (13) as lifetimes 0.11 cites them,
(5) for the likelihood as commonly cited; not checked against the paper's pages here). Write B for the beta function, and for a customer with history (x, t_x, n)

    A    = B(alpha + x, beta + n - x) / B(alpha, beta) * B(gamma, delta + n) / B(gamma, delta)   (alive at n)
    L    = A + sum_{i=0}^{n - t_x - 1} B(alpha + x, beta + t_x - x + i) / B(alpha, beta)
                                      * B(gamma + 1, delta + t_x + i) / B(gamma, delta)           (FHS eq. 5)

(the i-th term: died at the start of opportunity t_x + i + 1). Then P(alive at n | history) = A / L,
and a living customer's p and theta are a posteriori independent, Beta(alpha + x, beta + n - x) and
Beta(gamma, delta + n). Over the next n* opportunities a living customer stays alive J of them, with
P(J = j) = B(gamma + 1, delta' + j) / B(gamma, delta') for j < n* and B(gamma, delta' + n*) / B(gamma,
delta') for j = n* (delta' = delta + n), and transacts Y ~ BetaBinomial(J, alpha + x, beta + n - x) times:

    E[Y(n, n + n*) | history] = A / L * (alpha + x) / (alpha + beta + n) * E[J]                  (FHS eq. 13)
    E[J] = sum_{j=1}^{n*} B(gamma, delta' + j) / B(gamma, delta')
         = delta' / (gamma - 1) * [1 - G(gamma + delta') G(1 + delta' + n*) / (G(1 + delta') G(gamma + delta' + n*))]

(G the gamma function); a new customer is the case x = t_x = n = 0 (E[X(n)] and P(X(n) = x), FHS eq. 7).
DERT, the discounted expected residual transactions at a discount rate d per period, discounts the
transaction at opportunity n + k by (1 + d)^-k:

    DERT(d | history) = A / L * (alpha + x) / (alpha + beta + n) * [2F1(1, delta'; gamma + delta'; 1/(1+d)) - 1].

Numerics. The sum in L runs over n - t_x terms (few: periods are coarse), evaluated once per distinct
(x, t_x, n) and parameter draw, in log space. E[J]'s closed form is 0/0 at gamma = 1 and a difference of
nearly equal log-gamma values for large delta' (long histories); it is evaluated as delta' exprel(D)
[Q(1 + delta' + n*) - Q(1 + delta')], with Q(c) = (lnG(c + gamma - 1) - lnG(c)) / (gamma - 1) and D =
-(gamma - 1) [Q(...) - Q(...)], the difference of Q's as an integral of digamma differences (Gauss-Legendre)
wherever the log-gamma form would cancel (relative error below 1e-10 against 40-digit sums, gamma from
1e-4 to 50 and delta' up to 2e4; the tests hold it to the term-by-term sum).

Horizons are whole numbers of periods: the methods refuse others. The kernels, which
:func:`clvmodels.customer_value` also calls at the nodes of its discounting integral, take a
non-integer horizon s as the floor(s) opportunities that have passed by then (transactions at the end of
their period, as DERT discounts them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, exprel, gammaln, hyp2f1

from ..draws import DEFAULT_DRAWS
from ..errors import DataError
from ..timeunits import DAYS_PER, TIME_UNITS, Horizon, horizon_days
from ..data.periods import PERIODS, check_period
from ._base import SummaryModel, as_float_array, bad_rows, check_rfm
from ._mle import FitResult, fingerprint, fit_mle
from .rows import compress, distinct_rows
from .purchase import PurchasePredictions
from .weighted_sums import total

__all__ = ["BetaGeoBetaBinom", "BetaGeoBetaBinomPredictions", "loglik_terms", "loglik_and_grad",
           "p_alive", "expected_alive_periods", "expected_purchases_new", "conditional_expected_purchases",
           "conditional_pmf", "pmf_new", "dert"]

PARAMS = ("alpha", "beta", "gamma", "delta")
#: Gauss-Legendre nodes and weights on [0, 1], for E[J] (:func:`_q_diff`).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(12)
_GL_NODES, _GL_WEIGHTS = (_GL_NODES + 1) / 2, _GL_WEIGHTS / 2
#: Whole-number tolerance of horizons given in another unit ("1y" in months: 12).
_WHOLE = 1e-9


# --- likelihood ------------------------------------------------------------------------------------

def _loglik_parts(alpha, beta, gamma, delta, x, t_x, n, grad: bool = False):
    """log A and log L (module docstring) for broadcast parameters and data; with ``grad``, also the
    gradient of log L in (alpha, beta, gamma, delta), shape (4, ...).

    The sum over the n - t_x death times is taken in log space, in blocks of up to 64 terms at a time over
    the entries with that many terms left (sorted by their number of terms), each block's log-sum and
    term-weighted gradient combined with the running ones."""
    shape = np.broadcast_shapes(*(np.shape(v) for v in (alpha, beta, gamma, delta, x, t_x, n)))
    flat = [np.broadcast_to(np.asarray(v, dtype=np.float64), shape).ravel() for v in (alpha, beta, gamma, delta, x, t_x, n)]
    gap = flat[6] - flat[5]
    order = np.argsort(-gap, kind="stable")
    alpha, beta, gamma, delta, x, t_x, n = (v[order] for v in flat)
    gap = gap[order]
    ab, gd = betaln(alpha, beta), betaln(gamma, delta)
    log_alive = betaln(alpha + x, beta + n - x) - ab + betaln(gamma, delta + n) - gd
    log_l = log_alive.copy()
    if grad:
        dab, dgd = digamma(alpha + beta), digamma(gamma + delta)
        da, db, dg, dd = digamma(alpha), digamma(beta), digamma(gamma), digamma(delta)
        common_a = digamma(alpha + x) - da + dab
        g = np.stack([common_a - digamma(alpha + beta + n),
                      digamma(beta + n - x) - digamma(alpha + beta + n) - db + dab,
                      dgd - digamma(gamma + delta + n),
                      digamma(delta + n) - digamma(gamma + delta + n) - dd + dgd])
    steps = int(gap.max(initial=0))
    for i0 in range(0, steps, 64):
        c = int(np.searchsorted(-gap, -i0, side="left"))  # entries with more than i0 terms: a prefix
        i = i0 + np.arange(min(64, steps - i0), dtype=np.float64)
        on = i[None, :] < gap[:c, None]
        a_, b_, c_, d_, x_ = (v[:c, None] for v in (alpha, beta, gamma, delta, x))
        s = t_x[:c, None] + i[None, :]
        with np.errstate(invalid="ignore"):
            term = np.where(on, betaln(a_ + x_, b_ + s - x_) - ab[:c, None] + betaln(c_ + 1, d_ + s) - gd[:c, None],
                            -np.inf)
        top = np.maximum(term.max(axis=1), log_l[:c])
        share = np.exp(term - top[:, None])
        kept = np.exp(log_l[:c] - top)
        total = kept + share.sum(axis=1)
        log_l[:c] = top + np.log(total)
        if grad:
            dterm = np.stack([common_a[:c, None] - digamma(a_ + b_ + s),
                              digamma(b_ + s - x_) - digamma(a_ + b_ + s) - db[:c, None] + dab[:c, None],
                              digamma(c_ + 1) - digamma(c_ + d_ + s + 1) - dg[:c, None] + dgd[:c, None],
                              digamma(d_ + s) - digamma(c_ + d_ + s + 1) - dd[:c, None] + dgd[:c, None]])
            g[:, :c] = (g[:, :c] * kept + (np.where(on, dterm, 0.0) * share).sum(axis=2)) / total
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    out = (log_alive[back].reshape(shape), log_l[back].reshape(shape))
    return (*out, g[:, back].reshape((4, *shape))) if grad else out


def loglik_terms(alpha, beta, gamma, delta, x, t_x, n) -> np.ndarray:
    """Each customer's log-likelihood, log L(alpha, beta, gamma, delta | x, t_x, n) (FHS eq. 5): the
    probability of their sequence of transactions over the n opportunities."""
    return _loglik_parts(alpha, beta, gamma, delta, x, t_x, n)[1]


def loglik_and_grad(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, n: np.ndarray,
                    w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (FHS eq. 5) and its analytic gradient in (alpha, beta, gamma,
    delta): each term of L is a product of beta functions, whose log-derivatives are digamma
    differences, and d log L = sum over terms of (term / L) d log term."""
    _, log_l, g = _loglik_parts(*theta, x, t_x, n, grad=True)
    return total(w, log_l), np.einsum("ij,j->i", g, w)


# --- predictions -----------------------------------------------------------------------------------

def p_alive(alpha, beta, gamma, delta, x, t_x, n, m: int = 0) -> np.ndarray:
    """P(alive at opportunity n + m | x, t_x, n) = A / L x B(gamma, delta + n + m) / B(gamma, delta + n);
    m = 0 (alive at the end of the summary) is the contract's ``p_alive``, m = 1 FHS's P(alive in
    period n + 1)."""
    log_alive, log_l = _loglik_parts(alpha, beta, gamma, delta, x, t_x, n)
    shift = 0.0 if m == 0 else betaln(gamma, delta + n + m) - betaln(gamma, delta + n)
    return np.minimum(np.exp(log_alive - log_l + shift), 1.0)


def _q_diff(a, m, eps) -> np.ndarray:
    """Q(a + m) - Q(a), Q(c) = (lnG(c + eps) - lnG(c)) / eps, without cancellation near eps = 0 or for
    large a: as the integral over s in [0, 1] of psi(a + m + s eps) - psi(a + s eps) (Gauss-Legendre, 12
    nodes) when the arguments at most double over it (|eps| <= a and a + eps), else directly."""
    a, m, eps = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, m, eps)))
    smooth = np.abs(eps) <= np.minimum(a, a + eps)
    out = np.empty(a.shape)
    if np.any(smooth):
        a_s, m_s, e_s = (v[smooth][..., None] for v in (a, m, eps))
        s = e_s * _GL_NODES
        out[smooth] = ((digamma(a_s + m_s + s) - digamma(a_s + s)) * _GL_WEIGHTS).sum(axis=-1)
    rough = ~smooth
    if np.any(rough):
        a_r, m_r, e_r = a[rough], m[rough], eps[rough]
        out[rough] = ((gammaln(a_r + m_r + e_r) - gammaln(a_r + m_r)) - (gammaln(a_r + e_r) - gammaln(a_r))) / e_r
    return out


def expected_alive_periods(gamma, delta, m) -> np.ndarray:
    """E[J]: the expected number of the next m opportunities a customer alive now lives through, with
    theta ~ Beta(gamma, delta) (for a customer with n opportunities behind them, pass delta + n):
    sum_{j=1}^{m} B(gamma, delta + j) / B(gamma, delta), in closed form (module docstring)."""
    gamma, delta, m = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (gamma, delta, m)))
    eps = gamma - 1.0
    diff = _q_diff(1.0 + delta, m, eps)
    return delta * exprel(-eps * diff) * diff


def _horizon_periods(t) -> np.ndarray:
    """The opportunities that have passed s periods on: floor(s) (module docstring)."""
    return np.floor(np.asarray(t, dtype=np.float64) + _WHOLE)


def expected_purchases_new(alpha, beta, gamma, delta, t) -> np.ndarray:
    """E[X(n)] for a newly acquired customer over their first n = t opportunities: alpha / (alpha + beta)
    x E[J] (FHS; the case x = t_x = n = 0 of eq. 13)."""
    return alpha / (alpha + beta) * expected_alive_periods(gamma, delta, _horizon_periods(t))


def conditional_expected_purchases(alpha, beta, gamma, delta, x, t_x, n, t) -> np.ndarray:
    """E[Y(n, n + n*) | x, t_x, n], the transactions over the next n* = t opportunities (FHS eq. 13)."""
    pa = p_alive(alpha, beta, gamma, delta, x, t_x, n)
    return pa * (alpha + x) / (alpha + beta + n) * expected_alive_periods(gamma, delta + n, _horizon_periods(t))


def conditional_pmf(alpha, beta, gamma, delta, x, t_x, n, t, cap: int) -> np.ndarray:
    """P(Y(n, n + n*) = k | x, t_x, n), k = 0..cap, over the next n* = t opportunities: dead now with
    probability 1 - P(alive) (no transaction), else a mixture over J of BetaBinomial(J, alpha + x,
    beta + n - x) (module docstring). Parameters are numbers (one draw); x, t_x, n arrays. Shape
    (customers, cap + 1)."""
    x, t_x, n = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, t_x, n))
    m = int(_horizon_periods(t))
    pa = p_alive(alpha, beta, gamma, delta, x, t_x, n)
    a, b, d = alpha + x, beta + n - x, delta + n
    out = np.zeros((len(x), cap + 1))
    lbab, lgd = betaln(a, b)[:, None], betaln(gamma, d)
    for j in range(m + 1):
        k = np.arange(min(j, cap) + 1, dtype=np.float64)
        log_pj = (betaln(gamma + 1, d + j) if j < m else betaln(gamma, d + m)) - lgd
        log_bb = (gammaln(j + 1.0) - gammaln(k + 1) - gammaln(j - k + 1)
                  + betaln(a[:, None] + k, b[:, None] + j - k) - lbab)
        out[:, :len(k)] += np.exp(log_pj[:, None] + log_bb)
    out *= pa[:, None]
    out[:, 0] += 1.0 - pa
    return out


def pmf_new(alpha, beta, gamma, delta, t, cap: int) -> np.ndarray:
    """P(X(n) = k), k = 0..cap, for a newly acquired customer over their first n = t opportunities
    (FHS eq. 7): the conditional pmf at x = t_x = n = 0."""
    return conditional_pmf(alpha, beta, gamma, delta, 0.0, 0.0, 0.0, t, cap)[0]


def _discounted_alive_periods(gamma, delta, d) -> np.ndarray:
    """sum_{k>=1} (1 + d)^-k B(gamma, delta + k) / B(gamma, delta) = 2F1(1, delta; gamma + delta; z) - 1,
    z = 1 / (1 + d): scipy's 2F1, and where it fails (NaN or inf: long histories, delta in the hundreds,
    with small d) the series itself (:func:`_discounted_series`)."""
    gamma, delta, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (gamma, delta, d)))
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.asarray(hyp2f1(1.0, delta, gamma + delta, 1.0 / (1.0 + d)), dtype=np.float64) - 1.0
    bad = ~np.isfinite(out)
    if np.any(bad):
        out = np.array(out)
        out[bad] = _discounted_series(gamma[bad], delta[bad], d[bad])
    return out


def _discounted_series(gamma: np.ndarray, delta: np.ndarray, d: np.ndarray, block: int = 4096,
                       max_terms: int = 50_000_000) -> np.ndarray:
    """The series of :func:`_discounted_alive_periods` summed term by term (log-space terms, in blocks),
    until the rest, below the last term times z / (1 - z) (the terms fall at least as fast as z^k), is
    under 1e-16 of the sum: about 37 / ln(1 + d) terms."""
    out = np.zeros(gamma.shape)
    log_z = -np.log1p(d)
    todo = np.arange(gamma.size)
    start = 1
    while todo.size:
        if start > max_terms:
            raise ArithmeticError(f"DERT's series did not converge in {max_terms:,} terms (discount rate {d[todo].min():g} "
                                  "per period): use a longer period or a larger rate")
        g, b, lz = gamma[todo, None], delta[todo, None], log_z[todo, None]
        k = np.arange(start, start + block, dtype=np.float64)
        log_terms = k * lz + gammaln(b + k) - gammaln(b) - gammaln(b + g + k) + gammaln(b + g)
        out[todo] += np.exp(log_terms).sum(axis=1)
        rest = np.exp(log_terms[:, -1]) / np.expm1(-lz[:, 0])  # last term x z / (1 - z)
        todo = todo[rest > 1e-16 * out[todo]]
        start += block
        block = min(4 * block, max(4096, 4_000_000 // max(todo.size, 1)))  # (at most ~32 MB of terms)
    return out


def dert(alpha, beta, gamma, delta, x, t_x, n, d) -> np.ndarray:
    """Discounted expected residual transactions at a discount rate d > 0 per period, the transaction at
    opportunity n + k discounted by (1 + d)^-k (FHS's DERT; module docstring)."""
    pa = p_alive(alpha, beta, gamma, delta, x, t_x, n)
    return pa * (alpha + x) / (alpha + beta + n) * _discounted_alive_periods(gamma, delta + n, d)


# --- kernels over draws ----------------------------------------------------------------------------

def _distinct(x: np.ndarray, t_x: np.ndarray, n: np.ndarray, seg) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the first customer of each distinct (segment, x, t_x, n), and each customer's
    distinct row: the costly parts are evaluated once per pattern."""
    x, t_x, n = (np.ravel(v) for v in (x, t_x, n))
    seg = np.zeros(len(x), dtype=np.int64) if seg is None else np.broadcast_to(np.asarray(seg), x.shape)
    return distinct_rows(seg, x, t_x, n)


def _pattern_theta(theta, first: np.ndarray, n_customers: int) -> tuple[np.ndarray, ...]:
    """Each parameter (draws, customers) at the distinct patterns' first customers."""
    return tuple(np.broadcast_to(np.asarray(th, dtype=np.float64), (np.shape(th)[0], n_customers))[:, first]
                 for th in theta)


def _over_patterns(fn, theta, x, t_x, n, seg) -> np.ndarray:
    """``fn(params, x, t_x, n)`` evaluated once per distinct pattern, returned per customer (draws first)."""
    first, inv = _distinct(x, t_x, n, seg)
    data = [np.ravel(v)[first][None, :] for v in (x, t_x, n)]
    out = fn(_pattern_theta(theta, first, np.size(x)), *data)
    return out[:, inv]


def _summary_period(summary: pd.DataFrame) -> str | None:
    """The period a summary declares (``attrs["time_unit"]``), or None; DataError if it is no period."""
    declared = getattr(summary, "attrs", {}).get("time_unit")
    if not declared:
        return None
    try:
        return check_period(declared)
    except ValueError:
        raise DataError(f"the summary's time unit {declared!r} is not a period BG/BB counts ({', '.join(PERIODS)}): "
                        "summarise the log by period (clvmodels.period_summary)") from None


class BetaGeoBetaBinomPredictions(PurchasePredictions):
    """BG/BB's kernels (:class:`clvmodels.models.purchase.PurchasePredictions`), for any fit's draws."""

    param_names = PARAMS
    discrete_time = True

    @staticmethod
    def p_alive_kernel(theta, x, t_x, T, seg=None) -> np.ndarray:
        """P(alive at n | x, t_x, n) at every draw, once per distinct pattern."""
        return _over_patterns(lambda th, *d: p_alive(*th, *d), theta, x, t_x, T, seg)

    @staticmethod
    def expected_purchases_kernel(theta, x, t_x, T, times, seg) -> np.ndarray:
        """E[Y(n, n + t) | x, t_x, n] (FHS eq. 13) at every draw and each t in ``times`` (floor(t)
        opportunities): P(alive) once per pattern, E[J] once per (pattern, t)."""
        def fn(th, x_, t_x_, n_):
            alpha, beta, gamma, delta = th
            scale = p_alive(*th, x_, t_x_, n_) * (alpha + x_) / (alpha + beta + n_)
            return np.stack([scale * expected_alive_periods(gamma, delta + n_, _horizon_periods(t)) for t in times],
                            axis=-1)

        return _over_patterns(fn, theta, x, t_x, T, seg)

    @staticmethod
    def cdf_kernel(draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        """P(Y(n, n + t) <= k | history), k = 0..cap, averaged over the draws (:func:`conditional_pmf`),
        once per distinct pattern."""
        x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
        seg = np.zeros(len(x), dtype=np.int64) if seg is None else np.asarray(seg)
        first, inv = _distinct(x, t_x, T, seg)
        xs, ts, ns, segs = x[first], t_x[first], T[first], seg[first]
        pmf = np.zeros((len(first), cap + 1))
        for theta in draws:  # (segment, parameter): each segment's parameters are numbers
            for g in np.unique(segs):
                rows = np.flatnonzero(segs == g)
                pmf[rows] += conditional_pmf(*theta[g], xs[rows], ts[rows], ns[rows], t, cap)
        return np.cumsum(pmf / len(draws), axis=1)[inv]

    @staticmethod
    def expected_new_kernel(theta, t) -> np.ndarray:
        """E[X(n)] for a newly acquired customer at one draw (floor(t) opportunities)."""
        return expected_purchases_new(*theta, t)

    def _check_values(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *_: np.ndarray) -> None:
        check_rfm(x, t_x, T)
        hint = ("BG/BB counts whole periods: give it a summary by period (clvmodels.period_summary, or "
                "clvmodels summarize --period), not a continuous-time one")
        bad_rows(t_x != np.round(t_x), f"recency is not a whole number of periods; {hint}", ["recency"])
        bad_rows(T != np.round(T), f"T is not a whole number of periods; {hint}", ["T"])
        bad_rows(x > t_x, "frequency is larger than recency: a customer transacts at most once per period, so the "
                 f"last period with a transaction is at least the number of them; {hint}", ["frequency", "recency"])

    # periods, not continuous time ------------------------------------------------------------------
    def prediction_arrays(self, summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """The summary's frequency, recency and T: fitted model, same period, whole numbers."""
        self.check_is_fitted()
        declared = _summary_period(summary)
        if declared and self.time_unit_ and declared != self.time_unit_:
            raise DataError(f"the summary is by period {declared!r} but the model was fitted on periods "
                            f"{self.time_unit_!r}: summarise the log by {self.time_unit_!r} (clvmodels.period_summary)")
        arrays = tuple(as_float_array(summary, c) for c in self.required_columns)
        self._check_values(*arrays)
        return arrays

    def _whole(self, value: float, given: Any) -> float:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"t must be a non-negative number of periods, got {given!r}")
        if abs(value - round(value)) > _WHOLE * max(1.0, value):
            unit = f" of {self.time_unit_}" if self.time_unit_ else ""
            raise ValueError(f"BG/BB forecasts whole periods: t = {given!r} is {value:.6g} periods{unit}; give a "
                             f"whole number of periods (e.g. {math.floor(value + _WHOLE)})")
        return float(round(value))

    def _units(self, t: Horizon) -> float:
        """A horizon as a whole number of periods (a duration such as "2y" must be one; ValueError if not)."""
        if isinstance(t, str):
            if not self.time_unit_:
                raise ValueError(f"horizon {t!r} needs the summary's period: fit with time_unit=... or give t as "
                                 "a number of periods")
            return self._whole(horizon_days(t) / DAYS_PER[self.time_unit_], t)
        if isinstance(t, bool):
            raise ValueError(f"t must be a number of periods, got {t!r}")
        return self._whole(float(t), t)

    def _units_array(self, t: Any) -> np.ndarray:
        if isinstance(t, str):
            return np.asarray(self._units(t))
        arr = np.asarray(t, dtype=np.float64)
        return np.vectorize(lambda v: self._whole(float(v), float(v)), otypes=[np.float64])(arr) if arr.size else arr

    def _label(self, t: Horizon) -> str:
        return t.strip() if isinstance(t, str) else f"{t:g}{self.time_unit_ or ''}"

    # BG/BB's own predictions ------------------------------------------------------------------------
    def p_alive(self, summary: pd.DataFrame, interval: float | None = None,
                max_draws: int = DEFAULT_DRAWS) -> pd.Series | pd.DataFrame:
        """Probability that each customer is alive at their last opportunity n (A / L; FHS's P(alive in
        period n + 1) is this times B(gamma, delta + n + 1) / B(gamma, delta + n), :func:`p_alive` with m = 1)."""
        return super().p_alive(summary, interval, max_draws)

    def dert(self, summary: pd.DataFrame, discount_rate: float, interval: float | None = None,
             max_draws: int = DEFAULT_DRAWS) -> pd.Series | pd.DataFrame:
        """Discounted expected residual transactions of each customer (FHS's DERT): all future
        transactions, the one at opportunity n + k discounted by (1 + ``discount_rate``)^-k, the rate per
        period (0.1 a year is (1.1)^(1/12) - 1 a month). Times a value per transaction, the residual value."""
        d = float(discount_rate)
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"discount_rate must be a positive rate per period (undiscounted, the expected "
                             f"transactions can be infinite), got {discount_rate!r}")

        def kernel(theta, x, t_x, T, seg):
            return _over_patterns(lambda th, *data: dert(*th, *data, d), theta, x, t_x, T, seg)

        return self._predict(summary, "dert", kernel, interval, max_draws)


# --- estimator -------------------------------------------------------------------------------------

def _diagnose(params: dict[str, float]) -> str:
    """What a failed fit's parameters say about the data: a beta distribution whose two parameters run off
    together collapses onto one probability for every customer."""
    notes = []
    for (a, b), what in ((("alpha", "beta"), "transact at an opportunity"), (("gamma", "delta"), "drop out")):
        if params[a] + params[b] > 1e4:
            notes.append(f"every customer seems to {what} with the same probability "
                         f"{params[a] / (params[a] + params[b]):.3g} ({a} and {b} grow without bound)")
    return "; ".join(notes) + (": the data do not show how customers differ (too few customers, or too few "
                               "opportunities each: a finer period gives more)" if notes else "")


class BetaGeoBetaBinom(BetaGeoBetaBinomPredictions, SummaryModel):
    """BG/BB purchase and dropout model for discrete purchase opportunities (Fader, Hardie & Shang 2010),
    fitted by maximum likelihood to a summary by period (:func:`clvmodels.period_summary`).

    ``frequency`` x is the number of opportunities (whole periods after the first transaction's) with a
    transaction, ``recency`` t_x the last of them (0 if none), ``T`` the number n of opportunities
    observed; all whole numbers, x <= t_x <= n. Horizons are whole numbers of periods, or durations that
    are (``"2y"`` for a summary by month: 24).

    Parameters
    ----------
    maxiter
        Maximum optimiser iterations.
    start
        Optional starting values ``{"alpha", "beta", "gamma", "delta"}``; default all 1.

    Attributes
    ----------
    params_ : dict
        Fitted alpha, beta (transaction probability ~ Beta(alpha, beta)), gamma, delta (dropout
        probability ~ Beta(gamma, delta)); they do not depend on the time unit, only on the period.
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details; ``extra["period"]``
        the period.
    time_unit_ : str or None
        The period ("D", "W", "M" or "Y"), to convert horizons such as "1y".
    """

    model_name = "BetaGeoBetaBinom"
    short_name, title = "bgbb", "BG/BB"

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "BetaGeoBetaBinom":
        """Fit to a summary by period (frequency, recency, T); identical rows are compressed into weights,
        and ``weights`` (array or column name, such as the donations' ``"weights"``) counts how many
        customers each row stands for. ``time_unit`` names the period when the summary does not
        (``summary.attrs["time_unit"]``, which :func:`clvmodels.period_summary` sets)."""
        declared = _summary_period(summary)
        period = check_period(time_unit, "time_unit") if time_unit else declared
        if time_unit and declared and period != declared:
            raise DataError(f"the summary is by period {declared!r} but the fit was asked for time unit {period!r}")
        x, t_x, T, w = self._prepare(summary, weights)
        used = w > 0
        if not np.any(used & (T > 0)):
            raise DataError("no customer has a purchase opportunity after their first period (T = 0 for all): "
                            "BG/BB has nothing to fit", columns=["T"])
        if not np.any(used & (T > 1)):
            raise DataError("every customer has one purchase opportunity after their first period (T = 1): one "
                            "transaction or none cannot separate the chance of transacting from that of dropping "
                            "out; BG/BB needs customers observed over two or more periods (a longer log, or "
                            "shorter periods)", columns=["T"])
        if not np.any(used & (x > 0)):
            raise DataError("no customer transacted after their first period: BG/BB cannot separate transacting "
                            "from dropping out", columns=["frequency"])
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        start = np.array([self.start[p] for p in PARAMS]) if self.start else np.ones(4)
        result = fit_mle("BG/BB", PARAMS, lambda th: loglik_and_grad(th, ux, ut, uT, uw), start,
                         n_obs=float(uw.sum()), n_unique=len(uw),
                         time_unit=period if period in TIME_UNITS else None, maxiter=self.maxiter,
                         advice="Check that the summary is by period, or pass start=.",
                         extra={"period": period} if period else None, diagnose=_diagnose)
        self._set_result(result, fingerprint((ux, ut, uT), uw))
        return self

    def _set_result(self, result: FitResult, fingerprint_: str, design: Any = None) -> None:
        # the period is kept in extra["period"]: a model file's time_unit holds D, W or M only
        super()._set_result(result, fingerprint_, design)
        period = result.extra.get("period", result.time_unit)
        if period is not None and period not in PERIODS:
            raise DataError(f"a BG/BB fit's period must be one of {', '.join(PERIODS)}, got {period!r}")
        self.time_unit_ = period

    def purchase_probabilities_new(self, t: Horizon, n_max: int = 10) -> pd.Series:
        """P(X(n) = k) for a newly acquired customer over their first n = ``t`` opportunities, k = 0..n_max
        (FHS eq. 7)."""
        self.check_is_fitted()
        return pd.Series(pmf_new(*self._p(), self._units(t), n_max), index=pd.RangeIndex(n_max + 1, name="n"))
