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
    E[Y(t) | history] = P(alive) sum_{n>=1} P(Y(t) >= n | alive).

The phases combine: w_j has Gamma(r+kx+j) (alpha+T)^-(r+kx+j) g^j / j!, so the first term is
B(a, b+x+z)/B(a, b) Gamma(R) (alpha+T)^-R Z with R = r+kx and Z = sum_{j<k} (R)_j (g/(alpha+T))^j / j!
(at k = 1, Z = 1), which gives P(alive) and the likelihood in closed form; and w_j times the negative
binomial pmf of m future phases is Gamma(R+s) g^j t^m / (j! m! (alpha+T+t)^(R+s)) over the first term's
sum, s = j+m, so the expectation is one sum over s, the phases since the last purchase
(:func:`expected_given_alive`),
summed until the terms left are below 1e-12 of it (a rigorous bound). At k = 1 every formula is the
BG/NBD's (MBG/NBD's), which the tests hold to 1e-10.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, logsumexp

from ..errors import DataError
from ._base import SummaryModel, as_float_array, bad_rows, fit_time_unit
from ._mle import fingerprint, fit_mle, subsample, weighted_median
from .rows import compress
from .covariate_effects import group_pairs
from .weighted_sums import group_sums, total
from .persistence import OPTION_CHECKS
from .purchase import CDF_CELLS, PurchasePredictions

__all__ = ["BetaGeoCNBD", "CNBDFit", "CNBDPredictions", "loglik_terms", "loglik_and_grad", "group_loglik_and_grad",
           "p_alive",
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


def _phase_sum(R, gamma, k: int, derivatives: bool = False):
    """Z = sum_{j<k} (R)_j gamma^j / j!: the elapsed phases' weights, relative to j = 0 (gamma = g/(alpha+T));
    with ``derivatives`` also dZ/dR and sum_j j (R)_j gamma^j / j! (= gamma dZ/dgamma)."""
    term, Z, d_term, Z_R, Z_j = 1.0, 1.0, 0.0, 0.0, 0.0
    for j in range(1, k):
        if derivatives:
            d_term = d_term * (R + j - 1) * gamma / j + term * gamma / j
        term = term * (R + j - 1) * gamma / j
        Z = Z + term
        if derivatives:
            Z_R, Z_j = Z_R + d_term, Z_j + j * term
    return (Z, Z_R, Z_j) if derivatives else Z


def p_alive(r, alpha, a, b, x, t_x, T, *, k: int, dropout_at_zero: bool = False) -> np.ndarray:
    """P(alive | x, t_x, T): the first term's share of the likelihood (module docstring). Its sum over
    phases is Gamma(r+kx) (alpha+T)^-(r+kx) Z with Z = sum_{j<k} (r+kx)_j (g/(alpha+T))^j / j!, g = T - t_x,
    so P(alive) = 1 / (1 + [x+z > 0] a/(b+x+z-1) ((alpha+T)/(alpha+t_x))^(r+kx) / Z)."""
    r, alpha, a, b, x, t_x, T = _arrays(r, alpha, a, b, x, t_x, T)
    z = float(dropout_at_zero)
    R, g = r + k * x, T - t_x
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (np.log(a) - np.log(np.maximum(b + x + z - 1, 1e-300)) + R * np.log1p(g / (alpha + t_x))
                - np.log(_phase_sum(R, g / (alpha + T), k)))
        return np.where(x + z > 0, expit(-odds), 1.0)


class CNBDData:
    """Distinct (x, t_x, T) rows with their weights, for repeated likelihood evaluation at one k; the
    timing density's share, which no parameter changes, is the constant ``timing``. ``group`` gives each
    row's parameter group (covariate pattern; default: one group). The distinct (group, x) pairs (``xs``,
    ``pair_group``), each row's pair (``xi``) and the pairs' total weights (``wx``): what depends on the
    parameters and x alone is evaluated once per pair."""

    def __init__(self, x, t_x, T, w, k: int, dropout_at_zero: bool, timing: float = 0.0, group=None) -> None:
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T, w))
        self.k, self.z, self.timing = int(k), float(dropout_at_zero), float(timing)
        self.g = self.T - self.t_x
        self.group, self.n_groups, self.pair_group, self.xs, self.xi = group_pairs(group, self.x)
        self.wx = np.bincount(self.xi, weights=self.w, minlength=len(self.xs))
        self.wg = np.bincount(self.group, weights=self.w, minlength=self.n_groups)

    def by_group(self, values: np.ndarray, index: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The sums of w * values by group (``index``: each value's group), (groups,)."""
        return group_sums(w, [values], index, self.n_groups)[:, 0]


#: Rows of a likelihood evaluation computed together.
_LL_ROWS = 65536


def loglik_and_grad(theta: np.ndarray, data: CNBDData) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (plus ``data.timing``) and its gradient in (r, alpha, a, b) (one set
    of parameters for every customer: :func:`group_loglik_and_grad` with one group)."""
    ll, grad = group_loglik_and_grad(np.asarray(theta, dtype=np.float64).reshape(1, 4), data)
    return ll, grad[0]


def group_loglik_and_grad(theta: np.ndarray, data: CNBDData) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (plus ``data.timing``) with parameters per group (``theta`` (groups,
    4): r, alpha, a, b), and its gradient in each group's parameters (groups, 4).

    The first term's phases sum to Gamma(R) (alpha+T)^-R Z (R = r+kx, Z of :func:`p_alive`), so each
    customer's log-likelihood is r ln alpha - ln Gamma(r) + ln B(a, b+x+z)/B(a, b) + ln Gamma(R)
    - R ln(alpha+T) + ln Z + ln(1 + e^d), with d = ln(a/(b+x+z-1)) + R ln(1 + g/(alpha+t_x)) - ln Z the log
    odds of "gone" (d = -inf if x+z = 0). With p = 1/(1 + e^d) (P(alive)), the derivatives are
    psi(R) - ln(alpha+T) + p Z_R/Z + (1-p) ln(1 + g/(alpha+t_x)) in r, -p (R + Z_j/Z)/(alpha+T)
    - (1-p) R/(alpha+t_x) in alpha (Z_R = dZ/dR, Z_j = gamma dZ/dgamma, gamma = g/(alpha+T)), and in a and b
    those of the beta functions, plus (1-p)/a and -(1-p)/(b+x+z-1); what depends on the parameters and x
    alone is summed once per (group, x) pair.
    """
    k, z, xs, wx, pg = data.k, data.z, data.xs, data.wx, data.pair_group
    r_g, alpha_g, a_g, b_g = theta.T
    one = data.n_groups == 1
    r_x, a_x, b_x = (v[0] for v in (r_g, a_g, b_g)) if one else (v[pg] for v in (r_g, a_g, b_g))
    R_x, q_x = r_x + k * xs, b_x + xs + z
    gone_x = xs + z > 0
    with np.errstate(divide="ignore"):
        odds_x = np.where(gone_x, np.log(a_x) - np.log(np.maximum(np.where(gone_x, q_x - 1, 1.0), 1e-300)), -np.inf)
    W = data.wg
    ll = float(total(wx, betaln(a_x, q_x) + gammaln(R_x))) + float(
        total(W, r_g * np.log(alpha_g) - gammaln(r_g) - betaln(a_g, b_g)))
    d_ab = digamma(a_x + b_x) - digamma(a_x + q_x)
    g_r = data.by_group(digamma(R_x), pg, wx) + W * (np.log(alpha_g) - digamma(r_g))
    g_alpha = W * r_g / alpha_g
    g_a = data.by_group(d_ab, pg, wx)
    g_b = data.by_group(d_ab + digamma(q_x) - digamma(b_x), pg, wx)
    gone_w = np.zeros(len(xs))
    for s in range(0, len(data.w), _LL_ROWS):
        rows = slice(s, s + _LL_ROWS)
        xi, w, g, grp = data.xi[rows], data.w[rows], data.g[rows], data.group[rows]
        R = R_x[xi]
        alpha = alpha_g[0] if one else alpha_g[grp]
        A, lead = alpha + data.T[rows], alpha + data.t_x[rows]
        Z, Z_R, Z_j = _phase_sum(R, g / A, k, derivatives=True)
        log_A, log_Z, lg = np.log(A), np.log(Z), np.log1p(g / lead)
        d = odds_x[xi] + R * lg - log_Z
        e = np.exp(-np.abs(d))
        p_gone = np.where(d > 0, 1.0, e) / (1.0 + e)
        p = 1.0 - p_gone
        ll += float(total(w, log_Z - R * log_A + np.maximum(d, 0.0) + np.log1p(e)))
        g_r = g_r + data.by_group(p * (Z_R / Z) - log_A + p_gone * lg, grp, w)
        g_alpha = g_alpha - data.by_group(p * (R + Z_j / Z) / A + p_gone * R / lead, grp, w)
        gone_w += np.bincount(xi, weights=w * p_gone, minlength=len(xs))
    g_a = g_a + data.by_group(np.ones(len(xs)), pg, gone_w) / a_g
    g_b = g_b - data.by_group(np.where(gone_x, 1.0 / np.maximum(np.where(gone_x, q_x - 1, 1.0), 1e-300), 0.0),
                              pg, gone_w)
    return ll + data.timing, np.stack([g_r, g_alpha, g_a, g_b], axis=1)


# --- predictions -----------------------------------------------------------------------------------

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


#: The neglected tail of the sum over future phases is at most this share of the sum (a rigorous bound).
TAIL = 1e-12
#: Rows summed together over future phases.
_ROWS = 16384
#: Future phases in a row group's first step; later steps add half as many as were summed, up to _MAX_BLOCK.
_BLOCK = 64
_MAX_BLOCK = 4096
#: Rows x phases of a block up to which its polynomial in u is a matrix product (u^s as a matrix) rather
#: than Horner's rule: fewer Python steps where rows are few (a group per parameter draw).
_POWERS = 1 << 18


def _group_ids(size: int, *keys) -> np.ndarray:
    """Integer codes (< 2^40), equal where every key is equal: numbers are one value for all rows."""
    code = np.zeros(size, dtype=np.int64)
    for key in keys:
        if np.ndim(key) == 0 or np.all(key == key[0]):
            continue
        if np.all(key == np.round(key)) and key.min() >= 0 and key.max() < 2 ** 20:
            values, n = key.astype(np.int64), int(key.max()) + 1
        else:
            uniq, values = np.unique(key, return_inverse=True)
            values, n = values.ravel(), len(uniq)
        code = code * n + values
        if code.max() >= 2 ** 20:
            code = np.unique(code, return_inverse=True)[1].ravel()
    return code


def _take(value, rows):
    """``value`` at ``rows``: a number stands for every row."""
    return value if isinstance(value, float) else value[rows]


class _Sequences:
    """The sequences in s (the phases since the last purchase) that rows with the same R = r + kx,
    q = b + x + z and a share (:func:`expected_given_alive`): V_j(s) = (R)_s / (s-j)! relative to V_0 at
    a block's first s, and C(n) = S(1) + ... + S(n), S(n) = B(a, q+n-1)/B(a, q)."""

    def __init__(self, R: float, q: float, a: float, k: int) -> None:
        self.R, self.q, self.a, self.k = R, q, a, k
        self.S, self.C = np.zeros(1), np.zeros(1)

    def log_v0(self) -> float:
        """log V_0(k) = log (R)_k / k!."""
        return float(np.sum(np.log((self.R + np.arange(self.k)) / np.arange(1, self.k + 1))))

    def _beta_sums(self, n: int) -> None:
        """S(i) and C(i) for i <= n at least (S(i+1) / S(i) = (q+i-1) / (a+q+i-1))."""
        have = len(self.S) - 1
        if have >= n:
            return
        i = np.arange(have + 1, max(n, 2 * have, 64) + 1, dtype=np.float64)
        steps = (self.q + i - 2) / (self.a + self.q + i - 2)
        if have == 0:
            steps[0] = 1.0
        else:
            steps[0] *= self.S[-1]
        S = np.cumprod(steps)
        self.S = np.concatenate([self.S, S])
        self.C = np.concatenate([self.C, self.C[-1] + np.cumsum(S)])

    def block(self, start: int, length: int) -> tuple:
        """For s = start..start+length-1: the weights W_j(s) = V_j(s) / V_0(start) C(floor(s/k)) (length, k);
        W_j at the last s / C there (k,); the bound on the term ratio past the block over u; the tail
        bound's factors of C; and log V_0(start + length) - log V_0(start)."""
        k, R = self.k, self.R
        s = start + np.arange(length, dtype=np.float64)
        v0 = np.empty(length)
        v0[0] = 1.0
        np.cumprod((R + s[:-1]) / (s[:-1] + 1), out=v0[1:])
        falling = np.empty((length, k))  # (s)_j falling factorials: V_j(s) = V_0(s) (s)_j
        falling[:, 0] = 1.0
        for j in range(1, k):
            falling[:, j] = falling[:, j - 1] * (s - (j - 1))
        end = start + length - 1
        n_end = end // k
        self._beta_sums(n_end + 1)
        weights = (v0 * self.C[(s // k).astype(np.int64)])[:, None] * falling
        # past s_e = end, each phase's term ratio (R+s)u/(s+1-j) is at most u max(1, (R+s_e)/(s_e+2-k))
        growth = max(1.0, (R + end) / (end + 2 - k))
        s_next = self.S[n_end + 1]
        step = math.log(v0[-1] * (R + end) / (end + 1))
        if not (np.isfinite(weights).all() and math.isfinite(step)):
            raise ArithmeticError(f"the BG/CNBD-k expectation's weights overflowed (r + kx = {R:g})")
        return weights, v0[-1] * falling[-1], growth, self.C[n_end] + s_next * (k - 1) / k, s_next / k, step

    def length(self, start: int, done: int) -> int:
        """A block's length: half the phases summed (at least _BLOCK), short enough that V_0 grows by less
        than 1e170 over it (the ratio (R+s)/(s+1) falls with s)."""
        rise = math.log(max((self.R + start) / (start + 1), 1.0))
        return max(8, min(max(_BLOCK, done // 2), _MAX_BLOCK, int(400 / rise) if rise > 0 else _MAX_BLOCK))


def _expected_rows(seq: _Sequences, u, log_u, base) -> np.ndarray:
    """sum_{s>=k} term(s) C(floor(s/k)) for rows sharing ``seq`` (those needing fewest phases first), each
    until the rest is below TAIL of its sum (``base``: (k, rows), log (1-u)^R (g/t)^j / (j! Z);
    :func:`expected_given_alive`). Each block's sum over s is a polynomial in u with the shared weights as
    coefficients (Horner's rule)."""
    m, k = len(u), seq.k
    total = np.zeros(m)
    first, start, log_v0 = 0, k, seq.log_v0()
    while first < m:
        rows = slice(first, m)
        length = seq.length(start, start - k)
        weights, last, growth, c_flat, c_slope, step = seq.block(start, length)
        uu = u[rows]
        if (m - first) * length <= _POWERS:  # few rows: the powers of u as a matrix, one product
            powers = np.empty((m - first, length))  # u^0 .. u^(length-1), by products
            powers[:, 0] = 1.0
            powers[:, 1:] = uu[:, None]
            with np.errstate(under="ignore"):
                np.cumprod(powers, axis=1, out=powers)
            poly = (powers @ weights).T
        else:
            poly = np.repeat(weights[-1][:, None], m - first, axis=1)  # (k, rows)
            for w in weights[-2::-1]:
                poly *= uu
                poly += w[:, None]
        scale = np.exp(base[:, rows] + start * log_u[rows] + log_v0)
        total[rows] += np.einsum("ji,ji->i", scale, poly)
        # the rest: terms fall by a factor rho a phase at least, C grows by at most S_next a purchase
        rho = uu * growth
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            bound = ((last @ scale) * np.exp((length - 1) * log_u[rows])  # the block's last term
                     * rho / (1 - rho) * (c_flat + c_slope / (1 - rho)))
        pending = np.flatnonzero(~((rho < 1) & (bound <= TAIL * total[rows])))
        if not pending.size:
            break
        first += int(pending[0])  # (rows after it that are done take more terms: exact ones)
        start += length
        log_v0 += step
    return total


def expected_given_alive(r, alpha, a, b, x, t_x, T, t, *, k: int, dropout_at_zero: bool = False) -> np.ndarray:
    """E[Y(t) | active at T, x, t_x, T] = sum_n P(Y(t) >= n | alive) (module docstring), summed over the
    phases s elapsed since the last purchase by T + t, of which the first k floor(s/k) complete purchases.

    Given lambda, the phases in (t_x, T+t] are Poisson, those in (t_x, T] fewer than k; so
    P(s | alive) = sum_{j<k} w_j NB(s - j; r+kx+j, u), which is (the weights' and pmf's gammas combining)

        term(s) = (1-u)^R u^s (R)_s / Z sum_{j<k} (g/t)^j / (j! (s-j)!),  Z = sum_{j<k} (R)_j (g/(alpha+T))^j / j!,

    R = r+kx, g = T-t_x, u = t/(alpha+T+t); and E = sum_{s>=k} term(s) C(floor(s/k)) with
    C(n) = sum_{i<=n} B(a, b+x+z+i-1)/B(a, b+x+z). Only u and the (g/t)^j differ between rows with the
    same r+kx, b+x+z and a: those rows share the sequences (R)_s / (s-j)! C(floor(s/k)), and their sums
    are products of the powers u^s with them. Every term is positive. The sum stops when the rest is
    below ``TAIL`` of it, bounded by the term ratio past s (at most u max(1, (R+s)/(s+2-k))) and C's
    growth (at most S(n+1) a purchase).
    """
    values = (r, alpha, a, b, x, t_x, T, t)
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    size = math.prod(shape)
    # numbers stay numbers; arrays are raveled to the broadcast shape
    r, alpha, a, b, x, t_x, T, t = (float(v) if np.ndim(v) == 0 else
                                     np.broadcast_to(np.asarray(v, dtype=np.float64), shape).ravel() for v in values)
    out = np.zeros(size)
    if not size:
        return out.reshape(shape)
    z = float(dropout_at_zero)
    # rows by group (same r+kx, b+x+z and a), then by log(1/(1-u)) in steps of 1/16 (rows needing about as
    # many phases together, to within 6%); rows with t <= 0 expect no purchase
    group = _group_ids(size, r, a, b, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.broadcast_to(np.log1p(t / (alpha + T)), (size,))
    key = group * 257 + np.where(level > 0, np.minimum(level * 16, 255), 256).astype(np.int64)
    order = np.argsort(key.astype(np.uint16) if key.max() < 65536 else key, kind="stable")
    key = key[order]
    valid = order[(key % 257) != 256]
    grouped = group[valid]
    edges = np.flatnonzero(np.diff(grouped)) + 1
    for lo, hi in zip([0, *edges], [*edges, len(valid)]):
        i = valid[lo]
        R0, q0, a0 = _take(r, i) + k * _take(x, i), _take(b, i) + _take(x, i) + z, _take(a, i)
        seq = _Sequences(float(R0), float(q0), float(a0), k)
        for c in range(lo, hi, _ROWS):
            idx = valid[c:min(c + _ROWS, hi)]
            R, A = _take(r, idx) + k * _take(x, idx), _take(alpha, idx) + _take(T, idx)
            g, tt = _take(T, idx) - _take(t_x, idx), _take(t, idx)
            R, A, g, tt = (np.broadcast_to(np.asarray(v, dtype=np.float64), idx.shape) for v in (R, A, g, tt))
            with np.errstate(divide="ignore"):
                # (log1p: s log u for s in the millions keeps its accuracy when u is near 1)
                log_u, log_1mu, log_rho = -np.log1p(A / tt), -np.log1p(tt / A), np.log(g / tt)
            # each phase's log factor (1-u)^R (g/t)^j / (j! Z)
            base = np.empty((k, len(idx)))
            base[0] = R * log_1mu - np.log(_phase_sum(R, g / A, k))
            for j in range(1, k):
                base[j] = base[0] + j * log_rho - math.lgamma(j + 1)
            out[idx] = _expected_rows(seq, tt / (A + tt), log_u, base)
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
        """E[Y(t) | history] at every draw and each t in ``times``: one sum for all times (rows with the same
        r+kx, b+x+z and a share its sequences whatever t is)."""
        k, z = int(self.k_), self.dropout_at_zero
        pa = p_alive(*theta, x, t_x, T, k=k, dropout_at_zero=z)
        row = [np.expand_dims(v, -1) for v in (*theta, x, t_x, T)]
        return pa[..., None] * expected_given_alive(*row, np.asarray(times, dtype=np.float64), k=k, dropout_at_zero=z)

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
    maxiter, start, covariates
        As for :class:`clvmodels.BetaGeo` (covariates act on alpha, a and b alike; k is the one the fit
        without covariates chooses).

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

    #: As the BG/NBD's (Fader & Hardie 2007): alpha_i = alpha exp(-c'z) scales the Erlang phases' rate
    #: (a positive coefficient raises the purchase rate), a_i = a exp(c'z) and b_i = b exp(c'z).
    covariate_signs = {"alpha": -1, "a": 1, "b": 1}

    def __init__(self, k: int | None = None, max_k: int = MAX_K, maxiter: int = 2000,
                 start: dict[str, float] | None = None, covariates: list[str] | None = None) -> None:
        super().__init__(maxiter=maxiter, start=start)
        self.k = k
        self.max_k = max_k
        self.covariates = covariates

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
        if self.has_covariates:  # k: the fit without covariates' choice
            self._fit_covariates(summary, (x, t_x, T, litt), w, weights, time_unit)
            self.k_ = int(self.result_.extra["k"])
            return self
        unit = fit_time_unit(summary, time_unit)
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        sub = subsample(uw)
        fits: dict[int, Any] = {}
        for k in ([int(self.k)] if self.k is not None else range(1, int(self.max_k) + 1)):
            fits[k] = self._fit_k(k, ux, ut, uT, uw, sub, float(total(w, (k - 1) * litt - x * gammaln(k))),
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
        self._set_result(result, fingerprint((ux, ut, uT, np.array([float(k_best), float(total(w, litt))])), uw))
        return self

    def _group_objective(self, arrays, w, codes, plain):
        """The likelihood at the k of the fit without covariates, with parameters per covariate pattern
        (:func:`group_loglik_and_grad`)."""
        x, t_x, T, litt = arrays
        k = plain.k_
        timing = float(total(w, (k - 1) * litt - x * gammaln(k)))
        (ux, ut, uT, ug), uw = compress(x, t_x, T, codes, weights=w)
        data = CNBDData(ux, ut, uT, uw, k, self.dropout_at_zero, timing, group=ug)
        return ((lambda theta: group_loglik_and_grad(theta, data)), float(uw.sum()), len(uw),
                fingerprint((ux, ut, uT, ug, np.array([float(k), float(total(w, litt))])), uw))

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
