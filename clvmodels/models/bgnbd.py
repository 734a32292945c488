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
interpolated linearly between a = 1 - 1e-4 and a = 1 + 1e-4 when |a - 1| < 5e-5 (error O(1e-8)), and
likewise in b around a + b = 1 for x = 0.

The MBG/NBD (Batislam, Denizel & Filiztekin 2007; Hoppe & Wagner 2007) lets a customer drop out at time
zero too, after the first purchase: the functions here take ``dropout_at_zero`` (z = 0 or 1), which adds
one dropout opportunity, so that the beta terms count x + z purchases. Given the history, an active
customer's future is a BG/NBD new customer with parameters (r + x, alpha + T, a, b + x + z) either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from ..timeunits import Horizon
from ._base import SummaryModel, fit_time_unit
from .purchase import PurchasePredictions, cohort_cumulative
from ._mle import fingerprint, fit_mle, subsample, weighted_median
from .rows import compress, distinct_rows, repeats
from .covariate_effects import group_pairs
from .weighted_sums import group_sums

__all__ = [
    "BetaGeo",
    "BetaGeoFit",
    "loglik_terms",
    "loglik_and_grad",
    "group_loglik_and_grad",
    "p_alive",
    "expected_purchases_new",
    "conditional_expected_purchases",
    "pmf_new",
    "conditional_pmf",
    "expected_cumulative_purchases",
    "mixture_cdf",
    "expected_kernel",
    "expected_given_alive",
    "BetaGeoPredictions",
]

PARAMS = ("r", "alpha", "a", "b")
_A_EPS = 1e-4


# --- likelihood ------------------------------------------------------------------------------------

def _loglik_parts(r, alpha, a, b, x, t_x, T, z):
    """Common pieces of eq. (6): the shared term and the two log-terms combined by logaddexp."""
    shared = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + z) - betaln(a, b)
    term1 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.where(x + z > 0,
                         np.log(a) - np.log(np.maximum(b + x + z - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                         -np.inf)
    return shared, term1, term2


def loglik_terms(r, alpha, a, b, x, t_x, T, *, dropout_at_zero: bool = False) -> np.ndarray:
    """Per-customer log-likelihood, FHL (2005) eq. (6); with ``dropout_at_zero``, the MBG/NBD's
    (Batislam et al. 2007).

    L = B(a, b+x+z)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + [x+z > 0] B(a+1, b+x+z-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)),
    using B(a+1, b+x+z-1) / B(a, b+x+z) = a / (b+x+z-1); z = 1 with dropout at zero, else 0.
    """
    shared, term1, term2 = _loglik_parts(r, alpha, a, b, x, t_x, T, float(dropout_at_zero))
    return shared + np.logaddexp(term1, term2)


class Prepared:
    """Data arranged for fast repeated likelihood evaluation: distinct (group, frequency) pairs (the special
    functions depend on the group's parameters and x only) with their total weights, and the customers
    with a second term of eq. (6) apart (the repeat buyers; with dropout at zero, everyone). ``group``
    gives each row's parameter group (covariate pattern; default: one group)."""

    def __init__(self, x, t_x, T, w, dropout_at_zero: bool = False, group=None) -> None:
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T, w))
        self.z = float(dropout_at_zero)
        self.group, self.n_groups, self.pair_group, self.xu, self.inv = group_pairs(group, self.x)
        self.wu = np.bincount(self.inv, weights=self.w, minlength=len(self.xu))
        self.wg = np.bincount(self.pair_group, weights=self.wu, minlength=self.n_groups)
        self.wx = self.w * self.x
        self.pos = np.flatnonzero(self.x + self.z > 0)
        self.x_p, self.t_x_p, self.w_p = self.x[self.pos], self.t_x[self.pos], self.w[self.pos]
        self.inv_p, self.group_p = self.inv[self.pos], self.group[self.pos]

    def at(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray | float:
        """A per-group parameter at the given rows' groups (a number when there is one group)."""
        return values[0] if self.n_groups == 1 else values[rows]

    def totals(self, w: np.ndarray, columns: list, rows: np.ndarray) -> np.ndarray:
        """Weighted sums of per-row ``columns`` by group: (groups, len(columns))."""
        return group_sums(w, columns, rows, self.n_groups)


def loglik_and_grad(theta: np.ndarray, x, t_x, T, w, prepared: Prepared | None = None) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood of eq. (6) and its analytic gradient in (r, alpha, a, b) (one set of
    parameters for every customer: :func:`group_loglik_and_grad` with one group)."""
    d = prepared if prepared is not None else Prepared(x, t_x, T, w)
    ll, grad = group_loglik_and_grad(np.asarray(theta, dtype=np.float64)[None, :], d)
    return ll, grad[0]


def group_loglik_and_grad(theta: np.ndarray, d: Prepared) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood of eq. (6) with parameters per group (``theta`` (groups, 4): r, alpha,
    a, b; each row's group from ``d``), and its gradient in each group's parameters (groups, 4).

    Eq. (6) is shared(x) - (r+x) ln(alpha+T) + softplus(delta) with, for x + z > 0,
    delta = ln(a / (b+x+z-1)) + (r+x) ln((alpha+T) / (alpha+t_x)) (the second term over the first; z = 1
    with dropout at zero, from ``d``). With w2 = sigmoid(delta), the second term's share,
    d/dr = psi(r+x) - psi(r) + ln(alpha) - ln(alpha+T) + w2 ln((alpha+T)/(alpha+t_x)),
    d/dalpha = r/alpha - (r+x)/(alpha+T) + w2 (r+x) [1/(alpha+T) - 1/(alpha+t_x)],
    d/da = psi(a+b) - psi(a+b+x+z) + w2/a,
    d/db = psi(b+x+z) - psi(b) + psi(a+b) - psi(a+b+x+z) - w2/(b+x+z-1).
    Terms of x alone are summed once per distinct (group, x) with its total weight; the rest costs one
    logarithm and one reciprocal per customer, and per repeat buyer one more of each and one exponential.
    """
    r_g, alpha_g, a_g, b_g = theta.T
    pg = d.pair_group
    r, alpha, a, b = (d.at(v, pg) for v in (r_g, alpha_g, a_g, b_g))
    xu, xzu = d.xu, d.xu + d.z
    shared_u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xzu) - betaln(a, b)
    dab_u = digamma(a + b) - digamma(a + b + xzu)
    d_r_u = digamma(r + xu) - digamma(r) + np.log(alpha)
    d_b_u = digamma(b + xzu) - digamma(b) + dab_u

    def by_pair(columns: list) -> np.ndarray:  # sums over the (group, x) pairs of wu x column, by group
        return group_sums(d.wu, columns, pg, d.n_groups)

    # every customer: the first term alone
    alpha_row = d.at(alpha_g, d.group)
    log_aT = np.log(alpha_row + d.T)
    inv_aT = 1.0 / (alpha_row + d.T)
    rows = d.totals(d.w, [log_aT, inv_aT], d.group)
    rows_x = d.totals(d.wx, [log_aT, inv_aT], d.group)
    pairs = by_pair([shared_u, d_r_u, dab_u, d_b_u])
    ll = float(np.sum(pairs[:, 0] - r_g * rows[:, 0] - rows_x[:, 0]))
    grad = np.stack([pairs[:, 1] - rows[:, 0],
                     r_g / alpha_g * d.wg - r_g * rows[:, 1] - rows_x[:, 1],
                     pairs[:, 2], pairs[:, 3]], axis=1)
    if d.pos.size:
        # repeat buyers: softplus(delta) and the second term's share w2 = sigmoid(delta)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(a) - np.log(np.maximum(b + xzu - 1, 1e-300))
        alpha_p = d.at(alpha_g, d.group_p)
        k_p = d.at(r_g, d.group_p) + d.x_p
        inv_atx = 1.0 / (alpha_p + d.t_x_p)
        gap = log_aT[d.pos] - np.log(alpha_p + d.t_x_p)  # ln((alpha+T)/(alpha+t_x))
        delta = log_ratio[d.inv_p] + k_p * gap
        e = np.exp(-np.abs(delta))
        w2 = np.where(delta >= 0, 1.0, e) / (1.0 + e)
        second = d.totals(d.w_p, [np.maximum(delta, 0.0) + np.log1p(e), w2 * gap,
                                  w2 * k_p * (inv_aT[d.pos] - inv_atx)], d.group_p)
        share_u = np.bincount(d.inv_p, weights=d.w_p * w2, minlength=len(xu))  # sum of w x w2 per pair
        share = group_sums(share_u, [1.0 / a, 1.0 / np.maximum(b + xzu - 1, 1e-300)], pg, d.n_groups)
        ll += float(second[:, 0].sum())
        grad[:, 0] += second[:, 1]
        grad[:, 1] += second[:, 2]
        grad[:, 2] += share[:, 0]
        grad[:, 3] -= share[:, 1]
    return ll, grad


# --- predictions -----------------------------------------------------------------------------------

def p_alive(r, alpha, a, b, x, t_x, T, *, dropout_at_zero: bool = False) -> np.ndarray:
    """P(alive | x, t_x, T), FHL (2005) eq. (12), as a logistic of the log-odds of having dropped out:
    the second term of eq. (6) over the first. With ``dropout_at_zero`` (MBG/NBD, Batislam et al. 2007
    IJRM 24(3)) a customer without repeat purchases may have dropped out too."""
    x, t_x, T = np.broadcast_arrays(*map(np.asarray, (x, t_x, T)))
    z = float(dropout_at_zero)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (np.log(a) - np.log(np.maximum(b + x + z - 1, 1e-300))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(x + z > 0, expit(-log_odds_dead), 1.0)


def expected_purchases_new(r, alpha, a, b, t, *, dropout_at_zero: bool = False) -> np.ndarray:
    """E[X(t)] for a customer just acquired, FHL (2005) eq. (9). With ``dropout_at_zero`` the customer
    first survives the dropout at time zero (probability b / (a + b)), after which p ~ Beta(a, b + 1)."""
    if dropout_at_zero:
        return b / (a + b) * expected_given_alive(r, alpha, a, b + 1.0, 0.0, 0.0, t)
    return expected_given_alive(r, alpha, a, b, 0.0, 0.0, t)


def expected_given_alive(r, alpha, a, b, x, T, t) -> np.ndarray:
    """E[purchases in (T, T+t] | active at T] for customers with x repeat purchases and age T.

    The future of an active customer is a BG/NBD process with posterior parameters (r+x, alpha+T, a, b+x);
    its expectation (eq. 9 with those parameters) in the Euler-transformed form of the module docstring.
    Parameters may be arrays (one value per customer, or posterior draws broadcast against customers).
    """
    r, alpha, a, b, x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, x, T, t)))
    # removable singularities, interpolated from points _A_EPS away: a = 1, and c = a+b+x-1 = 0 (x = 0)
    near_a1 = np.abs(a - 1.0) < _A_EPS / 2
    near_c0 = ~near_a1 & (np.abs(a + b - 1.0) < _A_EPS / 2) & (x == 0)
    regular = ~(near_a1 | near_c0)
    out = np.empty(a.shape)
    if np.all(regular):
        return _expected_euler(r, alpha, a, b, x, T, t)
    out[regular] = _expected_euler(*(v[regular] for v in (r, alpha, a, b, x, T, t)))
    if np.any(near_a1):
        r_, al_, a_, b_, x_, T_, t_ = (v[near_a1] for v in (r, alpha, a, b, x, T, t))
        lo = _expected_euler(r_, al_, 1.0 - _A_EPS, b_, x_, T_, t_)
        hi = _expected_euler(r_, al_, 1.0 + _A_EPS, b_, x_, T_, t_)
        out[near_a1] = lo + (a_ - (1.0 - _A_EPS)) / (2 * _A_EPS) * (hi - lo)
    if np.any(near_c0):
        r_, al_, a_, b_, x_, T_, t_ = (v[near_c0] for v in (r, alpha, a, b, x, T, t))
        b_lo, b_hi = 1.0 - a_ - _A_EPS, 1.0 - a_ + _A_EPS
        lo = _expected_euler(r_, al_, a_, b_lo, x_, T_, t_)
        hi = _expected_euler(r_, al_, a_, b_hi, x_, T_, t_)
        out[near_c0] = lo + (b_ - b_lo) / (b_hi - b_lo) * (hi - lo)
    return out


def _expected_euler(r, alpha, a, b, x, T, t) -> np.ndarray:
    r, alpha, a, b, x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, x, T, t)))
    A = alpha + T
    z = t / (A + t)
    c = a + b + x - 1.0
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        F = np.exp((a - 1.0) * (np.log(A) - np.log(A + t))) * _hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    bad = ~np.isfinite(F)
    if np.any(bad):
        # very large a and b (dropout nearly fixed at a/(a+b)): the Euler form is 0 x inf there, the
        # direct form of eq. (10), (A/(A+t))^(r+x) 2F1(r+x, b+x; c; z), stays finite
        rb, xb, bb, Ab, zb, cb, tb = (v[bad] for v in (r, x, b, A, z, c, t))
        F = np.array(F, dtype=np.float64)
        F[bad] = np.exp((rb + xb) * (np.log(Ab) - np.log(Ab + tb))) * hyp2f1(rb + xb, bb + xb, cb, zb)
    return c / (a - 1.0) * (1.0 - F)


def _hyp2f1(d, e, c, z) -> np.ndarray:
    """scipy's 2F1 with a guard: for some integer parameter sets (e.g. 2F1(1, 1; 101; z > 0.9)) it
    returns inf for a finite value. There we average it at d -+ 1e-8 relative (error O(1e-16))."""
    d, e, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (d, e, c, z)))
    out = np.asarray(hyp2f1(d, e, c, z), dtype=np.float64)
    bad = ~np.isfinite(out)
    if np.any(bad):
        db, eb, cb, zb = (v[bad] for v in (d, e, c, z))
        eps = 1e-8 * np.maximum(np.abs(db), 1.0)
        out = np.array(out, dtype=np.float64)
        out[bad] = 0.5 * (hyp2f1(db - eps, eb, cb, zb) + hyp2f1(db + eps, eb, cb, zb))
    return out


def conditional_expected_purchases(r, alpha, a, b, x, t_x, T, t, *, dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t units, FHL (2005) eq. (10) (with
    ``dropout_at_zero``, the MBG/NBD's: b + 1 in place of b in the expectation given alive)."""
    z = float(dropout_at_zero)
    return (p_alive(r, alpha, a, b, x, t_x, T, dropout_at_zero=dropout_at_zero)
            * expected_given_alive(r, alpha, a, b + z, x, T, t))


def expected_over_draws(theta: tuple[np.ndarray, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
                        times, seg: np.ndarray, *, dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (FHL 2005 eq. 10) for draws x customers at each t in ``times``: shape
    (draws, customers, len(times)).

    ``theta`` holds (r, alpha, a, b) as (draws, customers) arrays, the same within a segment (``seg``,
    one code per customer); the data are (1, customers) arrays. Eq. (10) is P(alive | x, t_x, T) times a
    factor of the parameters, x and T only; that factor, the costly 2F1, is evaluated once per distinct
    (segment, x, T), unless there is one draw and the ages hardly repeat (:func:`~.rows.repeats`), where
    finding the distinct rows would cost more than it saves."""
    pa = p_alive(*theta, x, t_x, T, dropout_at_zero=dropout_at_zero)  # (once for every horizon)
    z = float(dropout_at_zero)
    if theta[0].shape[0] == 1 and not repeats(T):  # (one draw, ages all different: nothing to share)
        return np.stack([pa * expected_given_alive(*theta[:3], theta[3] + z, x, T, t) for t in times], axis=-1)
    codes = np.zeros(x.shape[-1]) if seg is None else np.broadcast_to(seg, x.shape[-1:])
    first, inv = distinct_rows(codes, x[0], T[0])
    r, alpha, a, b = (th if th.shape[-1] == 1 else th[:, first] for th in theta)
    return np.stack([pa * expected_given_alive(r, alpha, a, b + z, x[:, first], T[:, first], t)[:, inv] for t in times],
                    axis=-1)


def pmf_new(r, alpha, a, b, t, n_max: int, *, dropout_at_zero: bool = False) -> np.ndarray:
    """P(X(t) = n), n = 0..n_max, for a new customer, FHL (2005) eq. (8). Shape (..., n_max + 1).

    The second term's bracket, 1 - (alpha/(alpha+t))^r sum_{j<n} Gamma(r+j)/(Gamma(r) j!) (t/(alpha+t))^j,
    is the upper tail of a negative binomial, P(N >= n) = I_z(n, r): the regularised incomplete beta at
    n_max, then downwards P(N >= n) = P(N >= n+1) + P(N = n), a sum of positive terms.
    With ``dropout_at_zero`` the customer drops out at once with probability a / (a + b) (no purchase),
    and otherwise buys as a BG/NBD customer with p ~ Beta(a, b + 1).
    """
    if dropout_at_zero:
        stay = np.asarray(b / (a + b), dtype=np.float64)[..., None]
        probs = stay * pmf_new(r, alpha, a, b + 1.0, t, n_max)
        probs[..., 0] += 1.0 - stay[..., 0]
        return probs
    r, alpha, a, b, t = np.broadcast_arrays(*map(lambda v: np.asarray(v, dtype=np.float64), (r, alpha, a, b, t)))
    n = np.arange(n_max + 1, dtype=np.float64)
    r_, alpha_, a_, b_, t_ = (v[..., None] for v in (r, alpha, a, b, t))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log(alpha_) - np.log(alpha_ + t_)
        log_z = np.log(t_) - np.log(alpha_ + t_)
        # log Gamma(r+n) / (Gamma(r) n!) and log B(a, b+n) / B(a, b), as sums of their ratios over n
        j = n[:-1]
        log_gammas, log_betas = np.zeros((2, *r.shape, n_max + 1))
        np.cumsum(np.log((r_ + j) / (j + 1)), axis=-1, out=log_gammas[..., 1:])
        np.cumsum(np.log((b_ + j) / (a_ + b_ + j)), axis=-1, out=log_betas[..., 1:])
        log_nb = log_gammas + r_ * log_q + np.where(n > 0, n * log_z, 0.0)
        first = log_betas + log_nb
        tail = np.empty(log_nb.shape)
        tail[..., n_max] = betainc(max(n_max, 1), r, np.exp(log_z[..., 0]))
        if n_max:
            tail[..., :n_max] = tail[..., n_max:] + np.cumsum(np.exp(log_nb[..., n_max - 1::-1]), axis=-1)[..., ::-1]
        # B(a+1, b+n-1) = B(a, b+n) a / (b+n-1)
        second = np.where(n > 0, log_betas + np.log(a_ / (b_ + n - 1)) + np.log(tail), -np.inf)
    return np.exp(np.logaddexp(first, second))


def conditional_pmf(r, alpha, a, b, x, t_x, T, t, n_max: int, *, dropout_at_zero: bool = False) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T), n = 0..n_max: dead with probability 1 - P(alive) (no purchase), else a
    BG/NBD new customer with posterior parameters (r+x, alpha+T, a, b+x+z) (Fader & Hardie 2007 note on
    P(X(t)=x) for the BG/NBD; the same reasoning as eq. 10; z = 1 with dropout at zero)."""
    x, t_x, T = np.broadcast_arrays(*map(lambda v: np.asarray(v, dtype=np.float64), (x, t_x, T)))
    pa = p_alive(r, alpha, a, b, x, t_x, T, dropout_at_zero=dropout_at_zero)[..., None]
    probs = pa * pmf_new(r + x, alpha + T, a, b + x + float(dropout_at_zero), t, n_max)
    probs[..., 0] += 1.0 - pa[..., 0]
    return probs


def expected_cumulative_purchases(r, alpha, a, b, first_purchase, times) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort at each calendar time in ``times``.

    ``first_purchase`` are the customers' acquisition times on the same clock; each contributes
    E[X(time - first_purchase)] (eq. 9) once acquired. This is the tracking curve of FHL (2005) fig. 3.
    """
    return cohort_cumulative(lambda age: expected_purchases_new(r, alpha, a, b, age), first_purchase, times)


def _diagnose(params: dict[str, float]) -> str:
    """What a failed fit's parameters say about the data: a and b running off together (a + b large)
    is a Beta distribution collapsing onto one dropout probability a / (a + b)."""
    a, b = params["a"], params["b"]
    if a + b > 1e4:
        return (f"every customer seems to drop out after a purchase with the same probability {a / (a + b):.3g} "
                "(a and b grow without bound): the data do not show how dropout varies between customers, "
                "typically because few customers bought more than once or twice; a longer history (an earlier "
                "start or a later end of the summary) gives the model more repeat purchases to measure it")
    return ""


def mixture_cdf(draws: np.ndarray, seg: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float,
                cap: int, *, dropout_at_zero: bool = False) -> np.ndarray:
    """P(Y(t) <= n | history), n = 0..cap, averaged over parameter draws (draw, segment, parameter); one
    row per customer.

    P(Y(t) = n | x, t_x, T) = P(alive) P_new(n; r+x, alpha+T, a, b+x+z) + [n = 0] (1 - P(alive))
    (:func:`conditional_pmf`). Over several draws the second factor, which depends on (segment, x, T)
    only, is evaluated once per distinct triple.
    """
    if draws.shape[:2] == (1, 1):
        return np.cumsum(conditional_pmf(*draws[0, 0], x, t_x, T, t, cap, dropout_at_zero=dropout_at_zero), axis=1)
    z = float(dropout_at_zero)
    first, ginv = distinct_rows(seg, x, T)
    gseg, gx, gT = np.asarray(seg)[first].astype(np.int64), x[first], T[first]
    pmf = np.zeros((len(x), cap + 1))
    for theta in draws:
        r, alpha, a, b = (theta[gseg, j] for j in range(4))
        p_new = pmf_new(r + gx, alpha + gT, a, b + gx + z, t, cap)
        pa = p_alive(*(theta[seg, j] for j in range(4)), x, t_x, T, dropout_at_zero=dropout_at_zero)
        pmf += pa[:, None] * p_new[ginv]
        pmf[:, 0] += 1.0 - pa
    return np.cumsum(pmf / len(draws), axis=1)


def expected_kernel(theta: tuple[np.ndarray, ...], x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times,
                    seg: np.ndarray, *, dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (eq. 10) for draws x customers at each t in ``times``: (draws, customers,
    len(times)), by :func:`expected_over_draws` (P(alive) once, the 2F1 once per distinct (segment, x, T)
    and horizon)."""
    return expected_over_draws(theta, x, t_x, T, times, seg, dropout_at_zero=dropout_at_zero)


class BetaGeoPredictions(PurchasePredictions):
    """BG/NBD's kernels, over which :class:`clvmodels.models.purchase.PurchasePredictions` predicts for the
    maximum-likelihood and the Bayesian fits alike; with ``dropout_at_zero`` true, the MBG/NBD's."""

    param_names = PARAMS
    #: Whether a customer may drop out at time zero, after the first purchase (MBG/NBD).
    dropout_at_zero: bool = False

    @classmethod
    def p_alive_kernel(cls, theta, x, t_x, T, seg=None) -> np.ndarray:
        """P(alive | x, t_x, T) (eq. 12) at every draw."""
        return p_alive(*theta, x, t_x, T, dropout_at_zero=cls.dropout_at_zero)

    @classmethod
    def expected_purchases_kernel(cls, theta, x, t_x, T, times, seg) -> np.ndarray:
        """E[Y(t) | history] (eq. 10) at every draw and each t in ``times`` (:func:`expected_kernel`)."""
        return expected_kernel(theta, x, t_x, T, times, seg, dropout_at_zero=cls.dropout_at_zero)

    @classmethod
    def cdf_kernel(cls, draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        """P(Y(t) <= n | history), n = 0..cap, averaged over the draws (:func:`mixture_cdf`)."""
        return mixture_cdf(draws, seg, x, t_x, T, t, cap, dropout_at_zero=cls.dropout_at_zero)

    @classmethod
    def expected_new_kernel(cls, theta, t) -> np.ndarray:
        """E[X(t)] for a newly acquired customer (eq. 9) at one draw."""
        return expected_purchases_new(*theta, t, dropout_at_zero=cls.dropout_at_zero)


# --- estimator -------------------------------------------------------------------------------------

class BetaGeoFit(BetaGeoPredictions, SummaryModel):
    """The maximum-likelihood fit of the BG/NBD and, with ``dropout_at_zero``, the MBG/NBD (not itself a
    registered model: :class:`BetaGeo` and :class:`clvmodels.models.mbgnbd.ModifiedBetaGeo` are)."""

    #: Fader & Hardie (2007) section 4: alpha_i = alpha exp(-c'z) (a positive coefficient raises the
    #: purchase rate), a_i = a exp(c'z) and b_i = b exp(c'z) (the dropout probability's Beta).
    covariate_signs = {"alpha": -1, "a": 1, "b": 1}

    def __init__(self, maxiter: int = 2000, start: dict[str, float] | None = None,
                 covariates: list[str] | None = None) -> None:
        super().__init__(maxiter, start)
        self.covariates = covariates

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "BetaGeoFit":
        """Fit to a customer summary (frequency, recency, T, and the ``covariates`` columns); identical
        rows are compressed into weights.

        ``weights`` (array or column name) counts how many customers each row stands for.
        """
        x, t_x, T, w = self._prepare(summary, weights)
        self._require_repeat_buyers(x, w)
        if self.has_covariates:
            self._fit_covariates(summary, (x, t_x, T), w, weights, time_unit)
            return self
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        data = Prepared(ux, ut, uT, uw, self.dropout_at_zero)
        sub = subsample(uw)
        pre = (Prepared(ux[sub[0]], ut[sub[0]], uT[sub[0]], sub[1], self.dropout_at_zero)
               if sub is not None else None)
        start = np.array([self.start[p] for p in PARAMS]) if self.start else np.array(
            [1.0, max(weighted_median(T, w), 1e-3), 1.0, 1.0])
        result = fit_mle(
            self.title, PARAMS, lambda th: loglik_and_grad(th, None, None, None, None, data), start,
            n_obs=float(uw.sum()), n_unique=len(uw), time_unit=fit_time_unit(summary, time_unit),
            maxiter=self.maxiter,
            advice="Try another time unit, check for customers with implausible histories, or pass start=.",
            presolve=(lambda th: loglik_and_grad(th, None, None, None, None, pre)) if pre is not None else None,
            diagnose=_diagnose)
        self._set_result(result, fingerprint((ux, ut, uT), uw))
        return self

    def _group_objective(self, arrays, w, codes, plain):
        """Eq. (6) with parameters per covariate pattern (:func:`group_loglik_and_grad`)."""
        x, t_x, T = arrays
        (ux, ut, uT, ug), uw = compress(x, t_x, T, codes, weights=w)
        data = Prepared(ux, ut, uT, uw, self.dropout_at_zero, group=ug)
        return ((lambda theta: group_loglik_and_grad(theta, data)), float(uw.sum()), len(uw),
                fingerprint((ux, ut, uT, ug), uw))

    # population-level predictions (the fitted point) -----------------------------------------------
    def purchase_probabilities_new(self, t: Horizon, n_max: int = 10) -> pd.Series:
        """P(X(t) = n) for a newly acquired customer, n = 0..n_max (eq. 8)."""
        self.check_is_fitted()
        return pd.Series(pmf_new(*self._p(), self._units(t), n_max, dropout_at_zero=self.dropout_at_zero),
                         index=pd.RangeIndex(n_max + 1, name="n"))


class BetaGeo(BetaGeoFit):
    """BG/NBD purchase and dropout model fitted by maximum likelihood.

    Parameters
    ----------
    covariates
        Summary columns of static customer attributes (channel, region, ...) that act on the purchase rate
        and the dropout probability (Fader & Hardie 2007): alpha_i = alpha exp(-c'z_i), a_i = a exp(c'z_i),
        b_i = b exp(c'z_i), z_i the customer's covariates (categorical columns dummy-coded against their
        first level in sorted order, numeric ones as given; :class:`clvmodels.data.covariates.CovariateDesign`).
        The fit then also estimates the coefficients c (``params_["alpha: channel[web]"]``) and tests them
        against the model without covariates (:meth:`likelihood_ratio_test`); r, alpha, a and b are the
        reference customers' (z = 0). Predictions need the same columns.
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
    short_name, title = "bgnbd", "BG/NBD"
