"""The Pareto/NBD model of purchasing and dropout (Schmittlein, Morrison & Colombo 1987, "Counting your
customers: who are they and what will they do next?", Management Science 33(1); hereafter SMC).

While active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); they drop out at an exponential
time with rate mu ~ Gamma(s, beta), independent of lambda. Functions here take numpy arrays (x =
frequency, t_x = recency, T = age) and the four parameters; :class:`ParetoNBD` is the estimator. The
likelihood, P(alive) and the conditional expectation follow Fader, Hardie & Lee (2005), "A Note on
Deriving the Pareto/NBD Model and Related Expressions" (hereafter FHL note; sections 3, 5 and 6).

Numerics. Given lambda and mu, the likelihood of (x, t_x, T) is lambda^x e^{-(lambda+mu)T} (alive at T)
plus the integral over a dropout time tau in (t_x, T] of lambda^x mu e^{-(lambda+mu)tau}. Integrating
lambda and mu over their gammas (FHL note, section 3, before the 2F1 is introduced):

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s I ],
    I = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau.

The textbook 2F1 form writes I as a difference of two hypergeometric terms, which cancel when t_x is
near T and whose series converge slowly when alpha and beta are far apart (the known failures of other
packages). Here I, a positive integral, is computed directly: with P = min(alpha, beta), Q the other,
d = Q - P and l = log(P + tau), the integrand becomes exp(psi(l)),

    psi(l) = -a l - q log1p(d e^-l),   a = r + s + x,   q = the exponent of the (Q + tau) factor,

which is concave in l (so unimodal, with its mode in closed form). The range is cut where psi falls
40 below its maximum (Newton steps from the far end, which stay on the safe side on a concave
function), and the rest is split into panels of at most 2.5 units of l and 12 units of fall in psi,
each integrated by 12-point Gauss-Legendre (8 points for a single panel of at most half that
width and a third of that fall). Everything is in log space; the derivatives with respect
to the parameters are integrals of the same integrand (log(alpha + tau), 1 / (alpha + tau), ...), so the
gradient comes from the same nodes, and so does the Hessian (their covariances under the integrand:
:func:`loglik_grad_hess`). Tests hold I, P(alive) and E[Y(t)] to 30-digit mpmath on extreme
inputs (x in the thousands, T of decades, alpha / beta from 1e-6 to 1e6).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, exprel, gammaln, hyperu, polygamma, xlogy

from ._base import SummaryModel, fit_time_unit
from ._mle import fingerprint, fit_mle, subsample, weighted_median
from .rows import compress, distinct_rows
from .covariate_effects import group_pairs
from .weighted_sums import group_sums, total
from .purchase import PurchasePredictions, cohort_cumulative

__all__ = [
    "ParetoNBD",
    "ParetoNBDPredictions",
    "loglik_terms",
    "loglik_and_grad",
    "group_loglik_and_grad",
    "loglik_grad_hess",
    "log_integral",
    "p_alive",
    "conditional_expected_purchases",
    "expected_purchases_new",
    "conditional_pmf",
    "dert",
    "expected_cumulative_purchases",
]

PARAMS = ("r", "alpha", "s", "beta")

def _gauss(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0   # on [0, 1], summing to 1


_NODES, _WEIGHTS = _gauss(12)
_FEW_NODES, _FEW_WEIGHTS = _gauss(8)   # a panel of at most half the width and a third of the fall
_CUT = 40.0          # the integrand is dropped where it is below e^-40 of its maximum
_PANEL_WIDTH = 2.5   # largest panel, in units of log(P + tau)
_PANEL_FALL = 12.0   # largest fall of psi within a panel
_CHUNK = 16_384      # rows per block of nodes (keeps the node arrays in cache)


def _ellipse(centre, half):
    """rho of the Bernstein ellipse (foci at the ends of a panel) through the point centre + i pi, in units
    of the panel's half-width: alpha + sqrt(alpha^2 - 1), alpha the mean distance to the foci."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):   # (a tiny panel: rho = inf)
        zr, zi = centre / half, np.pi / half
        zi2 = zi * zi
        alpha = (np.sqrt((zr - 1.0) ** 2 + zi2) + np.sqrt((zr + 1.0) ** 2 + zi2)) / 2
        return np.nan_to_num(alpha + np.sqrt(alpha * alpha - 1.0), nan=np.inf)


_RHO_12 = _ellipse(0.0, _PANEL_WIDTH / 2)      # the worst case of a 12-node panel of the widest width
_RHO_8 = _ellipse(0.0, _PANEL_WIDTH / 4)       # and of an 8-node panel of half that width


# --- the integral -----------------------------------------------------------------------------------

def _psi(a, q, d, l):
    return -a * l - q * np.log1p(d * np.exp(-l))


def _dpsi(a, q, d, l):
    e = d * np.exp(-l)
    return -a + q * e / (1.0 + e)


def log_integral(a, q, P, d, lo, hi, moments: bool = False, covariance: bool = False):
    """log of int_lo^hi (P + tau)^-(a + 1 - q) (P + d + tau)^-q dtau, elementwise (module docstring).

    Parameters
    ----------
    a, q, P, d, lo, hi
        1-D arrays of one length: a > 0, q > 0, P > 0, d >= 0, 0 <= lo <= hi.
    moments
        Also return the integrand-weighted means of v = (log(P + tau), 1/(P + tau), log(P + d + tau),
        1/(P + d + tau)) (the derivatives of the log-integral).
    covariance
        Also return (implies ``moments``) the covariances of v under the normalised integrand,
        <(v_i - <v_i>) (v_j - <v_j>)>, from the same nodes (the second derivatives of the log-integral).

    Returns
    -------
    log_i : ndarray
        -inf where lo == hi (or where hi - lo underflows against P + lo).
    means : tuple of four ndarrays, only with ``moments`` (zeros where log_i is -inf).
    cov : ndarray of shape (4, 4, n), only with ``covariance`` (symmetric; zeros where log_i is -inf).
    """
    a, q, P, d, lo, hi = (np.ravel(v) for v in np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                                                      for v in (a, q, P, d, lo, hi))))
    n = len(a)
    moments = moments or covariance
    log_i = np.full(n, -np.inf)
    means = tuple(np.zeros(n) for _ in range(4)) if moments else None
    cov = np.zeros((4, 4, n)) if covariance else None

    def result():
        return (log_i, means, cov) if covariance else (log_i, means) if moments else log_i

    # the range in l = log(P + tau), l1 - l0 without cancellation; where it underflows to 0 the integral,
    # below 1e-300 of the integrand's scale, is left at 0
    span_all = np.log1p((hi - lo) / (P + lo))
    rows = np.flatnonzero(span_all > 0)
    if rows.size == 0:
        return result()
    a_, q_, P_, d_ = a[rows], q[rows], P[rows], d[rows]
    base = P_ + lo[rows]
    l0 = np.log(base)
    span = span_all[rows]
    l1 = l0 + span
    # psi at the two ends, log1p(d e^-l) from d / (P + tau) (no exp)
    psi0 = -a_ * l0 - q_ * np.log1p(d_ / base)
    psi1 = -a_ * l1 - q_ * np.log1p(d_ / (P_ + hi[rows]))
    # the mode of psi: psi' = 0 at e^l = d (q - a) / a, inside the range only if q > a and d > 0; else psi
    # falls from l0
    mode, top = l0.copy(), psi0.copy()
    inner = np.flatnonzero((q_ > a_) & (d_ > 0))
    if inner.size:
        mode[inner] = np.clip(np.log(d_[inner] * (q_[inner] - a_[inner]) / a_[inner]), l0[inner], l1[inner])
        top[inner] = _psi(a_[inner], q_[inner], d_[inner], mode[inner])
    target = top - _CUT
    la, lb = l0.copy(), l1.copy()
    psi_a, psi_b = psi0.copy(), psi1.copy()
    # Newton steps from each end towards psi = top - _CUT: on a concave function they stay outside the
    # root, so the cut never removes more than e^-_CUT of the maximum
    cut = []
    for end, psi_end, toward in ((lb, psi_b, np.maximum), (la, psi_a, np.minimum)):
        far = np.flatnonzero(psi_end < target)
        cut.append(far)
        for _ in range(8):
            if far.size == 0:
                break
            step = ((target[far] - _psi(a_[far], q_[far], d_[far], end[far]))
                    / _dpsi(a_[far], q_[far], d_[far], end[far]))
            end[far] = toward(end[far] + step, mode[far])
            far = far[np.abs(step) > 1e-3 * np.maximum(1.0, span[far])]
    width = span.copy()
    moved = np.union1d(*cut)
    if moved.size:
        width[moved] = lb[moved] - la[moved]
        psi_a[moved] = _psi(a_[moved], q_[moved], d_[moved], la[moved])
        psi_b[moved] = _psi(a_[moved], q_[moved], d_[moved], lb[moved])
    drop = top - psi_a                      # >= 0: the integrand's rise from la to its maximum
    fall = drop + (top - psi_b)
    ya = d_ * np.exp(-la)                   # d e^-l at la
    log1p_a = np.log1p(ya)
    panels = np.maximum(np.ceil(np.maximum(width / _PANEL_WIDTH, fall / _PANEL_FALL)), 1.0).astype(np.int64)
    # a single panel where the (Q + tau) factor's singularity, at l = log d + i pi, is as far from the range
    # (in units of its half-width: the Bernstein ellipse rho through it) as in a panel of the widths above
    # (the error of n-point Gauss-Legendre falls as rho^-2n): 12 nodes, or 8 (marked as panel count 0)
    with np.errstate(divide="ignore"):
        rho = _ellipse(np.log(d_) - (la + width / 2), width / 2)
    panels[(panels > 1) & (rho >= _RHO_12) & (fall <= _PANEL_FALL)] = 1
    panels[(rho >= _RHO_8) & (fall <= _PANEL_FALL / 3)] = 0
    for npan in np.flatnonzero(np.bincount(panels)):
        grp = np.flatnonzero(panels == npan) if npan != panels[0] or not np.all(panels == npan) else None
        if npan == 0:
            u, w = _FEW_NODES, _FEW_WEIGHTS
        else:
            u = ((np.arange(npan)[:, None] + _NODES[None, :]) / npan).ravel()
            w = np.tile(_WEIGHTS, npan) / npan
        m = len(u)
        half = m // 2                       # the nodes are symmetric: u[m-1-j] = 1 - u[j]
        size = max(1, _CHUNK // m * 8)
        count = len(panels) if grp is None else grp.size
        for s0 in range(0, count, size):
            g = slice(s0, min(s0 + size, count)) if grp is None else grp[s0:s0 + size]
            h, ag, qg = width[g][:, None], a_[g][:, None], q_[g][:, None]
            # e^-(l - la) at the nodes: half of them by exp, the other half as e^-h / (their mirror)
            E = np.empty((h.shape[0], m))
            np.exp(-h * u[None, :half], out=E[:, :half])
            np.divide(np.exp(-h), E[:, half - 1::-1] if half else E[:, :0], out=E[:, m - half:])
            if m % 2:
                E[:, half] = np.exp(-h[:, 0] * u[half])
            y = ya[g][:, None] * E          # d e^-l at the nodes
            one_y = 1.0 + y
            inv = 1.0 / one_y
            # log1p(y), from log(1 + y) and the rounding of 1 + y (exact to first order)
            L = np.log(one_y)
            L -= ((one_y - 1.0) - y) * inv
            # psi(l) - top, from differences (psi itself may be large)
            expo = (-ag * h) * u[None, :]
            expo -= qg * (L - log1p_a[g][:, None])
            expo -= drop[g][:, None]
            with np.errstate(under="ignore"):
                e = np.exp(expo, out=expo)
            e *= w
            total = e.sum(axis=1)
            out = rows[g]
            log_i[out] = top[g] + np.log(width[g] * total)
            if covariance:
                # raw integrand-weighted sums in the panel's own variables w = (u, E, L, E / (1 + y)), each
                # bounded (u and E in [0, 1], ...), their covariances <w_i w_j> - <w_i><w_j>, then mapped to
                # v = (la + h u, e^-la E, la + h u + L, e^-la E / (1 + y)), which is linear in w
                inv_total = 1.0 / total
                em_a = np.exp(-la[g])
                hg = width[g]
                EI = E * inv
                eE, eL, eI = e * E, e * L, e * EI
                mu = (e @ u) * inv_total
                me, ml, mi = (eE.sum(axis=1) * inv_total, eL.sum(axis=1) * inv_total,
                              eI.sum(axis=1) * inv_total)
                means[0][out] = la[g] + hg * mu
                means[1][out] = me * em_a
                means[2][out] = means[0][out] + ml
                means[3][out] = mi * em_a

                def cv(raw, m1, m2):
                    return raw * inv_total - m1 * m2

                c_uu, c_ue = cv(e @ (u * u), mu, mu), cv(eE @ u, mu, me)
                c_ul, c_ui = cv(eL @ u, mu, ml), cv(eI @ u, mu, mi)
                c_ee, c_el = cv(np.einsum("ij,ij->i", eE, E), me, me), cv(np.einsum("ij,ij->i", eE, L), me, ml)
                c_ei, c_ll = cv(np.einsum("ij,ij->i", eE, EI), me, mi), cv(np.einsum("ij,ij->i", eL, L), ml, ml)
                c_li, c_ii = cv(np.einsum("ij,ij->i", eL, EI), ml, mi), cv(np.einsum("ij,ij->i", eI, EI), mi, mi)
                c_pq = hg * c_uu + c_ul                   # cov(h u, h u + L) / h
                for (i, j), v in (((0, 0), hg * hg * c_uu), ((0, 1), hg * em_a * c_ue), ((0, 2), hg * c_pq),
                                  ((0, 3), hg * em_a * c_ui), ((1, 1), em_a * em_a * c_ee),
                                  ((1, 2), em_a * (hg * c_ue + c_el)), ((1, 3), em_a * em_a * c_ei),
                                  ((2, 2), hg * (c_pq + c_ul) + c_ll), ((2, 3), em_a * (hg * c_ui + c_li)),
                                  ((3, 3), em_a * em_a * c_ii)):
                    cov[i, j, out] = cov[j, i, out] = v
            elif moments:
                inv_total = 1.0 / total
                em_a = np.exp(-la[g])
                mean_u = (e @ u) * inv_total
                means[0][out] = la[g] + width[g] * mean_u
                means[1][out] = np.einsum("ij,ij->i", e, E) * inv_total * em_a
                means[2][out] = means[0][out] + np.einsum("ij,ij->i", e, L) * inv_total
                means[3][out] = np.einsum("ij,ij->i", e, E * inv) * inv_total * em_a
    return result()


def _sides(r, alpha, s, beta, x):
    """The integral of the likelihood, I = int (alpha+tau)^-(r+x) (beta+tau)^-(s+1), as log_integral's
    arguments: P = min(alpha, beta), the other exponent q, and whether alpha is the P side."""
    alpha_low = alpha <= beta
    P = np.where(alpha_low, alpha, beta)
    d = np.abs(alpha - beta)
    q = np.where(alpha_low, s + 1.0, r + x)
    return r + s + x, q, P, d, alpha_low


def _flat(*arrays):
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in arrays))
    return arrays[0].shape, [v.ravel() for v in arrays]


def _log_terms(r, alpha, s, beta, x, t_x, T, moments=False, covariance=False):
    """(log of the alive term, log of s I, the means, the covariances, whether alpha is the P side) of the
    likelihood's bracket (module docstring); means and covariances None unless asked for."""
    a, q, P, d, alpha_low = _sides(r, alpha, s, beta, x)
    log_f0 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    means = cov = None
    if covariance:
        log_i, means, cov = log_integral(a, q, P, d, t_x, T, covariance=True)
    elif moments:
        log_i, means = log_integral(a, q, P, d, t_x, T, moments=True)
    else:
        log_i = log_integral(a, q, P, d, t_x, T)
    return log_f0, np.log(s) + log_i, means, cov, alpha_low


# --- likelihood ------------------------------------------------------------------------------------

def loglik_terms(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood.

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I] (FHL note, section 3;
    SMC 1987), I the integral over the dropout time of the module docstring.

    Parameters
    ----------
    r, alpha, s, beta : float or ndarray
    x, t_x, T : ndarray
        Frequency, recency and age.

    Returns
    -------
    ndarray
    """
    shape, (r, alpha, s, beta, x, t_x, T) = _flat(r, alpha, s, beta, x, t_x, T)
    log_f0, log_si, _, _, _ = _log_terms(r, alpha, s, beta, x, t_x, T)
    out = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(log_f0, log_si)
    return out.reshape(shape)


class Prepared:
    """Data arranged for repeated likelihood evaluation: the distinct (group, frequency) pairs and their
    total weights (the gamma functions depend on r and x only). ``group`` gives each row's parameter
    group (covariate pattern; default: one group)."""

    def __init__(self, x, t_x, T, w, group=None) -> None:
        self.x, self.t_x, self.T, self.w = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T, w))
        self.group, self.n_groups, self.pair_group, self.xu, self.inv = group_pairs(group, self.x)
        self.wu = np.bincount(self.inv, weights=self.w, minlength=len(self.xu))
        self.wg = np.bincount(self.group, weights=self.w, minlength=self.n_groups)

    def totals(self, columns: list) -> np.ndarray:
        """Weighted sums of per-row ``columns`` by group: (groups, len(columns))."""
        return group_sums(self.w, columns, self.group, self.n_groups)


def loglik_and_grad(theta, x, t_x, T, w, prepared: Prepared | None = None) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (FHL note, section 3) and its analytic gradient in (r, alpha, s, beta)
    (one set of parameters for every customer: :func:`group_loglik_and_grad` with one group)."""
    d = prepared if prepared is not None else Prepared(x, t_x, T, w)
    if len(d.x) == 0:
        return 0.0, np.zeros(4)
    ll, grad = group_loglik_and_grad(np.asarray(theta, dtype=np.float64).reshape(1, 4), d)
    return ll, grad[0]


def group_loglik_and_grad(theta: np.ndarray, d: Prepared) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood (FHL note, section 3) with parameters per group (``theta`` (groups,
    4): r, alpha, s, beta; each row's group from ``d``), and its gradient in each group's parameters.

    With p = P(alive) (the alive term's share of the bracket) and <.> the mean over the dropout-time
    integrand,
    d/dr = psi(r+x) - psi(r) + ln alpha - p ln(alpha+T) - (1-p) <ln(alpha+tau)>,
    d/dalpha = r/alpha - (r+x) [p/(alpha+T) + (1-p) <1/(alpha+tau)>],
    d/ds = ln beta - p ln(beta+T) + (1-p) (1/s - <ln(beta+tau)>),
    d/dbeta = s/beta - p s/(beta+T) - (1-p) (s+1) <1/(beta+tau)>.
    """
    one = d.n_groups == 1
    r_g, alpha_g, s_g, beta_g = theta.T
    r, alpha, s, beta = ((v[0] for v in (r_g, alpha_g, s_g, beta_g)) if one
                         else (v[d.group] for v in (r_g, alpha_g, s_g, beta_g)))
    log_f0, log_si, means, _, alpha_low = _log_terms(r, alpha, s, beta, d.x, d.t_x, d.T, moments=True)
    lse = np.logaddexp(log_f0, log_si)
    p = np.exp(log_f0 - lse)
    dead = np.exp(log_si - lse)   # 1 - p, to full relative precision where it is tiny
    m_lp, m_ip, m_lq, m_iq = means
    if np.ndim(alpha_low) == 0:
        l_a, i_a, l_b, i_b = (m_lp, m_ip, m_lq, m_iq) if alpha_low else (m_lq, m_iq, m_lp, m_ip)
    else:
        l_a, i_a = np.where(alpha_low, m_lp, m_lq), np.where(alpha_low, m_ip, m_iq)
        l_b, i_b = np.where(alpha_low, m_lq, m_lp), np.where(alpha_low, m_iq, m_ip)
    r_u = r_g[d.pair_group]
    ll_u = gammaln(r_u + d.xu) - gammaln(r_u)
    dr_u = digamma(r_u + d.xu) - digamma(r_u)
    outside = r_g * np.log(alpha_g) + s_g * np.log(beta_g)   # per group, times its customers
    ll = total(d.wu, ll_u) + total(d.w, lse) + total(d.wg, outside)
    k = r + d.x
    g_r = -p * np.log(alpha + d.T) - dead * l_a   # (+ psi(r+x) - psi(r) + ln alpha, summed by pair below)
    g_alpha = r / alpha - k * (p / (alpha + d.T) + dead * i_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_s = np.log(beta) - p * np.log(beta + d.T) + dead * (1.0 / s - l_b)
    g_beta = s / beta - p * s / (beta + d.T) - dead * (s + 1.0) * i_b
    grad = d.totals([g_r, g_alpha, g_s, g_beta])
    grad[:, 0] += np.bincount(d.pair_group, weights=d.wu * dr_u, minlength=d.n_groups) + d.wg * np.log(alpha_g)
    return ll, grad


def loglik_grad_hess(theta, x, t_x, T, w, prepared: Prepared | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted total log-likelihood, its gradient (as :func:`loglik_and_grad`) and its analytic Hessian in
    (r, alpha, s, beta).

    Each customer's log-likelihood is lnGamma(r+x) - lnGamma(r) + r ln alpha + s ln beta + ln B, with the
    bracket B = int e^phi over a mixture: the alive term, phi_0 = -k ln(alpha+T) - s ln(beta+T) (k = r+x),
    and the dropout times tau in (t_x, T], phi_1 = ln s - k ln(alpha+tau) - (s+1) ln(beta+tau). Under the
    normalised mixture (weight p = P(alive) on the first, 1-p on the second; <.> the mean over the
    dropout-time integrand)

        d2 ln B = E[d2 phi] + Cov[d phi]
                = E[d2 phi] + (1-p) D C D' + p (1-p) (<d phi_1> - d phi_0) (<d phi_1> - d phi_0)',

    C the covariance of v = (ln(alpha+tau), 1/(alpha+tau), ln(beta+tau), 1/(beta+tau)) under the
    integrand (:func:`log_integral` with ``covariance``), D = diag(-1, -k, -1, -(s+1)), and the nonzero
    second derivatives of phi: d2/dr dalpha = -1/(alpha+tau), d2/dalpha2 = k/(alpha+tau)^2,
    d2/ds dbeta = -1/(beta+tau), d2/dbeta2 = (s+1)/(beta+tau)^2 and d2/ds2 = -1/s^2 (tau = T and s+1 -> s,
    no 1/s^2, for phi_0; <1/(alpha+tau)^2> = C_22 + <1/(alpha+tau)>^2). The terms outside the bracket add
    psi'(r+x) - psi'(r) to d2/dr2, 1/alpha to d2/dr dalpha, -r/alpha^2 to d2/dalpha2, 1/beta to
    d2/ds dbeta and -s/beta^2 to d2/dbeta2.

    Returns
    -------
    ll : float
    grad : ndarray of shape (4,)
    hess : ndarray of shape (4, 4)
    """
    d = prepared if prepared is not None else Prepared(x, t_x, T, w)
    r, alpha, s, beta = (float(v) for v in theta)
    if len(d.x) == 0:
        return 0.0, np.zeros(4), np.zeros((4, 4))
    log_f0, log_si, means, cov, alpha_low = _log_terms(r, alpha, s, beta, d.x, d.t_x, d.T, covariance=True)
    lse = np.logaddexp(log_f0, log_si)
    p = np.exp(log_f0 - lse)
    dead = np.exp(log_si - lse)   # 1 - p, to full relative precision where it is tiny
    order = [0, 1, 2, 3] if alpha_low else [2, 3, 0, 1]   # (alpha side, beta side) from (P side, Q side)
    l_a, i_a, l_b, i_b = (means[j] for j in order)
    C = cov[np.ix_(order, order)]
    W = float(d.w.sum())
    xu = d.xu
    ll = total(d.wu, gammaln(r + xu) - gammaln(r)) + total(d.w, lse) + W * (r * np.log(alpha) + s * np.log(beta))
    k = r + d.x
    log_at, log_bt = np.log(alpha + d.T), np.log(beta + d.T)
    inv_at, inv_bt = 1.0 / (alpha + d.T), 1.0 / (beta + d.T)
    # <d phi_1> and d phi_0
    g1 = (-l_a, -k * i_a, 1.0 / s - l_b, -(s + 1.0) * i_b)
    g0 = (-log_at, -k * inv_at, -log_bt, -s * inv_bt)
    grad = np.array([total(d.wu, digamma(r + xu) - digamma(r)) + W * np.log(alpha),
                     W * r / alpha, W * np.log(beta), W * s / beta])
    grad += [total(d.w, p * a0 + dead * a1) for a0, a1 in zip(g0, g1)]
    diff = [a1 - a0 for a0, a1 in zip(g0, g1)]
    scale = (-1.0, -k, -1.0, -(s + 1.0))
    mix = p * dead
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(i, 4):
            if (i, j) != (2, 2):
                term = dead * (scale[i] * scale[j]) * C[i, j] + mix * diff[i] * diff[j]
                hess[i, j] = hess[j, i] = total(d.w, term)
    # d2/ds2 = (1-p) [C_33 - 1/s^2 + p (1/s + delta)^2], delta = ln(beta+T) - <ln(beta+tau)>, written as
    # (1-p) [C_33 + p delta (2/s + delta) - (1-p)/s^2]: no cancellation where p is near 1
    delta = log_bt - l_b
    hess[2, 2] = total(d.w, dead * (C[2, 2] + p * delta * (2.0 / s + delta) - dead / s ** 2))
    hess[0, 0] += total(d.wu, polygamma(1, r + xu) - polygamma(1, r))
    hess[0, 1] += W / alpha - total(d.w, p * inv_at + dead * i_a)
    hess[1, 1] += total(d.w, k * (p * inv_at ** 2 + dead * (C[1, 1] + i_a ** 2))) - W * r / alpha ** 2
    hess[2, 3] += W / beta - total(d.w, p * inv_bt + dead * i_b)
    hess[3, 3] += total(d.w, p * s * inv_bt ** 2 + dead * (s + 1.0) * (C[3, 3] + i_b ** 2)) - W * s / beta ** 2
    hess[1, 0], hess[3, 2] = hess[0, 1], hess[2, 3]
    return ll, grad, hess


# --- predictions -----------------------------------------------------------------------------------

def p_alive(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    """P(alive at T | x, t_x, T) = (alpha+T)^-(r+x) (beta+T)^-s / [(alpha+T)^-(r+x) (beta+T)^-s + s I]
    (FHL note, section 5; SMC 1987), as a logistic of the log-ratio of the bracket's two terms.

    Returns
    -------
    ndarray
        In [0, 1]; 1 where t_x = T (then no dropout time in (t_x, T] is possible).
    """
    shape, (r, alpha, s, beta, x, t_x, T) = _flat(r, alpha, s, beta, x, t_x, T)
    log_f0, log_si, _, _, _ = _log_terms(r, alpha, s, beta, x, t_x, T)
    with np.errstate(invalid="ignore"):
        return expit(log_f0 - log_si).reshape(shape)


def _log1p_ratio_integral(eps, L):
    """int_0^L e^{-eps u} du = (1 - e^{-eps L}) / eps, L at eps = 0 (stable through eps = 0)."""
    return L * exprel(-eps * L)


def _expected_alive(k, A, s, B, t):
    """E[purchases in the next t | alive now] for posterior rate Gamma(k, A) and dropout Gamma(s, B):
    k/A * E[min(dropout time, t)] = k/A * B/(s-1) [1 - (B/(B+t))^(s-1)] (B log(1 + t/B) at s = 1)."""
    return k / A * B * _log1p_ratio_integral(s - 1.0, np.log1p(t / B))


def expected_purchases_new(r, alpha, s, beta, t) -> np.ndarray:
    """E[X(t)] for a newly acquired customer, r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]
    (FHL note, section 4; SMC 1987), stable at s = 1.

    Returns
    -------
    ndarray
    """
    return _expected_alive(r, alpha, s, beta, np.asarray(t, dtype=np.float64))


def conditional_expected_purchases(r, alpha, s, beta, x, t_x, T, t) -> np.ndarray:
    """E[Y(t) | x, t_x, T] = P(alive) (r+x) (beta+T) / ((alpha+T) (s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
    (FHL note, section 6; SMC 1987).

    Returns
    -------
    ndarray
    """
    x, T = np.asarray(x, dtype=np.float64), np.asarray(T, dtype=np.float64)
    return p_alive(r, alpha, s, beta, x, t_x, T) * _expected_alive(r + x, alpha + T, s, beta + T, t)


def dert(r, alpha, s, beta, x, t_x, T, delta) -> np.ndarray:
    """Discounted expected residual transactions at continuous discount rate ``delta`` per time unit.

    DERT = alpha^r beta^s delta^(s-1) Gamma(r+x+1) U(s, s; delta (beta+T))
           / (Gamma(r) (alpha+T)^(r+x+1) L(r, alpha, s, beta | x, t_x, T))
    (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR
    42(4), the Pareto/NBD's DERT), U the confluent hypergeometric function of the second kind; computed as
    P(alive) (r+x)/(alpha+T) E[1/(delta + mu)], mu ~ Gamma(s, beta+T), E[1/(delta + mu)] = B^s
    delta^(s-1) U(s, s; delta B), B = beta + T.

    Returns
    -------
    ndarray
    """
    shape, (r, alpha, s, beta, x, t_x, T, delta) = _flat(r, alpha, s, beta, x, t_x, T, delta)
    B = beta + T
    # U once per distinct (s, B, delta)
    first, inv = distinct_rows(s, B, delta)
    us, uB, ud = s[first], B[first], delta[first]
    z = ud * uB
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        mean_inv = np.exp(us * np.log(uB) + (us - 1.0) * np.log(ud) + np.log(hyperu(us, us, z)))
    bad = ~np.isfinite(mean_inv)
    if np.any(bad):  # scipy's U fails for s of about 20 and more
        mean_inv[bad] = _mean_inverse_concentrated(us[bad], uB[bad], ud[bad])
    out = p_alive(r, alpha, s, beta, x, t_x, T) * (r + x) / (alpha + T) * mean_inv[inv.ravel()]
    return out.reshape(shape)


def _mean_inverse_concentrated(s, B, delta, nodes: int = 96) -> np.ndarray:
    """E[1/(delta + mu)], mu ~ Gamma(s, B), by Gauss-Legendre quadrature over mean +- 12 standard deviations
    (cut at 0), the density's normalising constant cancelling in the ratio: accurate to about 1e-13 for
    s >= 10, where the gamma density is concentrated away from 0 (the cases scipy's U cannot evaluate)."""
    mean, sd = s / B, np.sqrt(s) / B
    lo, hi = np.maximum(mean - 12 * sd, 0.0), mean + 12 * sd
    u, w = np.polynomial.legendre.leggauss(nodes)
    mu = lo[:, None] + (hi - lo)[:, None] * (u + 1) / 2
    with np.errstate(divide="ignore"):
        log_density = (s - 1)[:, None] * np.log(mu) - B[:, None] * mu
    weight = np.exp(log_density - log_density.max(axis=1, keepdims=True)) * w
    return (weight / (delta[:, None] + mu)).sum(axis=1) / weight.sum(axis=1)


def conditional_pmf(r, alpha, s, beta, x, t_x, T, t, n_max: int) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T), n = 0..n_max. Shape (..., n_max + 1).

    Dead at T (probability 1 - P(alive)): no purchase. Alive: the posterior rate is Gamma(r+x, A), the
    remaining lifetime Pareto-II with survival (B/(B+u))^s (A = alpha+T, B = beta+T, the FHL note's
    posterior), and the purchases over min(lifetime, t) negative binomial, so

        P(Y(t) = n | alive) = (B/(B+t))^s NB(n; r+x, A/(A+t))
                              + int_0^t s B^s (B+u)^-(s+1) NB(n; r+x, A/(A+u)) du,

    the integral by Gauss-Legendre in log(B + u), its weights scaled to sum to the exact dropout
    probability 1 - (B/(B+t))^s (so that the probabilities sum to 1 with all the mass inside n_max).
    """
    shape, (r, alpha, s, beta, x, t_x, T, t) = _flat(r, alpha, s, beta, x, t_x, T, t)
    pa = p_alive(r, alpha, s, beta, x, t_x, T)
    probs = _pmf_alive(r + x, alpha + T, s, beta + T, t, n_max)
    probs *= pa[:, None]
    probs[:, 0] += 1.0 - pa
    return probs.reshape(shape + (n_max + 1,))


def _pmf_alive(k, A, s, B, t, n_max: int) -> np.ndarray:
    """P(Y(t) = n | alive) of :func:`conditional_pmf`, rows of 1-D arrays."""
    n = np.arange(n_max + 1, dtype=np.float64)
    h = np.log1p(t / B)                                       # range of log(B + u)
    # enough panels of 16 nodes for the negative binomial's shape in log u (curvature <= (k + n) / 4)
    npan = int(np.clip(np.ceil(np.max(h * np.sqrt(k + n_max), initial=0.0) / 3.0), 1, 48))
    gx, gw = np.polynomial.legendre.leggauss(16)
    u01 = ((np.arange(npan)[:, None] + (gx[None, :] + 1) / 2) / npan).ravel()
    w01 = np.tile(gw / 2, npan) / npan
    survive = np.exp(-s * h)                                  # (B/(B+t))^s
    dens = w01[None, :] * (s * h)[:, None] * np.exp(-(s * h)[:, None] * u01[None, :])
    dens *= (-np.expm1(-s * h) / np.maximum(dens.sum(axis=1), 1e-300))[:, None]
    log_c = gammaln(k[:, None] + n[None, :]) - gammaln(k)[:, None] - gammaln(n + 1)[None, :]

    def nb(u):
        # log NB(n; k, A/(A+u)) = log C + k log(A/(A+u)) + n log(u/(A+u))
        with np.errstate(divide="ignore"):
            return np.exp(log_c - (k * np.log1p(u / A))[:, None] + xlogy(n[None, :], (u / (A + u))[:, None]))

    out = survive[:, None] * nb(t + 0.0 * k)
    for j in range(len(u01)):
        u = B * np.expm1(h * u01[j])
        out += dens[:, j:j + 1] * nb(u)
    return out


def expected_cumulative_purchases(r, alpha, s, beta, first_purchase, times) -> np.ndarray:
    """Expected cumulative repeat purchases of a cohort at each calendar time in ``times``, each customer
    contributing E[X(time - first_purchase)] once acquired (the tracking curve)."""
    return cohort_cumulative(lambda age: expected_purchases_new(r, alpha, s, beta, age), first_purchase, times)


# --- kernels over draws ----------------------------------------------------------------------------

def _distinct(theta, seg, cols):
    """Positions of the distinct (segment, data) columns and the inverse map, when the parameters are the
    same within a segment (else every customer apart)."""
    n = cols[0].shape[-1]
    if theta[0].shape[0] == 1:   # one draw: sorting would cost more than it saves
        return np.arange(n), np.arange(n)
    if seg is None:
        if not all(np.all(th == th[:, :1]) for th in theta):
            return np.arange(n), np.arange(n)
        seg = np.zeros(n)
    return distinct_rows(np.broadcast_to(np.asarray(seg, dtype=np.float64), (n,)), *(c.reshape(-1) for c in cols))


def _p_alive_draws(theta, x, t_x, T, seg):
    first, inv = _distinct(theta, seg, (x, t_x, T))
    th = [np.broadcast_to(v, (v.shape[0], x.shape[-1]))[:, first] for v in theta]
    return p_alive(*th, x[..., first], t_x[..., first], T[..., first])[:, inv]


class ParetoNBDPredictions(PurchasePredictions):
    """The Pareto/NBD's kernels (:class:`clvmodels.models.purchase.PurchasePredictions`), for the
    maximum-likelihood fit and any fit that gives parameter draws."""

    param_names = PARAMS

    @staticmethod
    def p_alive_kernel(theta, x, t_x, T, seg=None) -> np.ndarray:
        """P(alive | x, t_x, T) at every draw, the integral once per distinct (segment, x, t_x, T)."""
        return _p_alive_draws(theta, x, t_x, T, seg)

    @staticmethod
    def expected_purchases_kernel(theta, x, t_x, T, times, seg) -> np.ndarray:
        """E[Y(t) | history] at every draw and each t in ``times``: P(alive) once, times the closed-form
        expectation given alive at each t."""
        r, alpha, s, beta = theta
        pa = _p_alive_draws(theta, x, t_x, T, seg)
        return np.stack([pa * _expected_alive(r + x, alpha + T, s, beta + T, t) for t in times], axis=-1)

    @staticmethod
    def cdf_kernel(draws, seg, x, t_x, T, t, cap) -> np.ndarray:
        """P(Y(t) <= n | history), n = 0..cap, averaged over the draws (:func:`conditional_pmf`); the
        part given alive once per distinct (segment, x, T) and draw."""
        first, ginv = distinct_rows(seg, x, T)
        gseg, gx, gT = np.asarray(seg)[first].astype(np.int64), x[first], T[first]
        pmf = np.zeros((len(x), cap + 1))
        for theta in draws:
            r, alpha, s, beta = (theta[gseg, j] for j in range(4))
            alive = _pmf_alive(r + gx, alpha + gT, s, beta + gT, np.full(len(gx), float(t)), cap)
            pa = p_alive(*(theta[seg, j] for j in range(4)), x, t_x, T)
            pmf += pa[:, None] * alive[ginv]
            pmf[:, 0] += 1.0 - pa
        return np.cumsum(pmf / len(draws), axis=1)

    @staticmethod
    def expected_new_kernel(theta, t) -> np.ndarray:
        """E[X(t)] for a newly acquired customer at one draw."""
        return expected_purchases_new(*theta, t)


# --- estimator -------------------------------------------------------------------------------------

def _diagnose(params: dict[str, float]) -> str:
    s, beta = params["s"], params["beta"]
    if s > 1e4 and beta > 1e4:
        return (f"every customer seems to drop out at the same rate {s / beta:.3g} per unit (s and beta grow "
                "without bound): the data do not show how dropout varies between customers")
    if beta > 1e8:
        return "hardly any customer seems to drop out (beta grows without bound): an NBD may describe the data"
    return ""


class ParetoNBD(ParetoNBDPredictions, SummaryModel):
    """Pareto/NBD purchase and dropout model fitted by maximum likelihood.

    Parameters
    ----------
    covariates
        Summary columns of static customer attributes acting on the purchase and dropout rates (Fader &
        Hardie 2007): alpha_i = alpha exp(-c'z_i), beta_i = beta exp(-c'z_i) (categorical columns
        dummy-coded against their first level in sorted order, numeric ones as given); r, alpha, s and
        beta are then the reference customers' (z = 0), and the fit also tests the coefficients
        (:meth:`likelihood_ratio_test`).
    maxiter
        Maximum optimiser iterations.
    start
        Optional starting values ``{"r", "alpha", "s", "beta"}``; default r = s = 1 and alpha = beta =
        the median age T (the data's own time scale).

    Attributes
    ----------
    params_ : dict
        Fitted r, alpha, s, beta (alpha and beta in the summary's time unit).
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details.
    loglik_ : float
        Maximised log-likelihood.
    time_unit_ : str or None
        The summary's time unit, used to convert horizons such as "1y".
    """

    model_name = "ParetoNBD"
    short_name, title = "pnbd", "Pareto/NBD"
    #: Fader & Hardie (2007) section 2: alpha_i = alpha exp(-c'z) and beta_i = beta exp(-c'z), so that a
    #: positive coefficient raises the purchase rate lambda ~ Gamma(r, alpha_i) or the dropout rate
    #: mu ~ Gamma(s, beta_i).
    covariate_signs = {"alpha": -1, "beta": -1}

    def __init__(self, maxiter: int = 2000, start: dict[str, float] | None = None,
                 covariates: list[str] | None = None) -> None:
        super().__init__(maxiter, start)
        self.covariates = covariates

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "ParetoNBD":
        """Fit to a customer summary (frequency, recency, T); identical rows are compressed into weights
        and large data start from a fit on a subsample.

        ``weights`` (array or column name) counts how many customers each row stands for.
        """
        x, t_x, T, w = self._prepare(summary, weights)
        self._require_repeat_buyers(x, w)
        if self.has_covariates:
            self._fit_covariates(summary, (x, t_x, T), w, weights, time_unit)
            return self
        (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
        data = Prepared(ux, ut, uT, uw)
        sub = subsample(uw)
        pre = Prepared(ux[sub[0]], ut[sub[0]], uT[sub[0]], sub[1]) if sub is not None else None
        scale = max(weighted_median(T, w), 1e-3)
        start = (np.array([self.start[p] for p in PARAMS]) if self.start
                 else np.array([1.0, scale, 1.0, scale]))
        result = fit_mle(
            "Pareto/NBD", PARAMS, lambda theta: loglik_and_grad(theta, None, None, None, None, data), start,
            n_obs=float(uw.sum()), n_unique=len(uw), time_unit=fit_time_unit(summary, time_unit),
            maxiter=self.maxiter,
            advice="Try another time unit, check for customers with implausible histories, or pass start=.",
            presolve=(lambda theta: loglik_and_grad(theta, None, None, None, None, pre)) if pre is not None else None,
            diagnose=_diagnose,
            hessian=lambda theta: loglik_grad_hess(theta, None, None, None, None, data))
        self._set_result(result, fingerprint((ux, ut, uT), uw))
        return self

    def _group_objective(self, arrays, w, codes, plain):
        """The likelihood with parameters per covariate pattern (:func:`group_loglik_and_grad`)."""
        x, t_x, T = arrays
        (ux, ut, uT, ug), uw = compress(x, t_x, T, codes, weights=w)
        data = Prepared(ux, ut, uT, uw, group=ug)
        return ((lambda theta: group_loglik_and_grad(theta, data)), float(uw.sum()), len(uw),
                fingerprint((ux, ut, uT, ug), uw))

    def discounted_expected_transactions(self, summary: pd.DataFrame, delta: float) -> pd.Series:
        """DERT of each customer (:func:`dert`) at continuous discount rate ``delta`` per time unit of the
        fit (an annual rate d is delta = ln(1 + d) per year, scaled to the unit)."""
        x, t_x, T = self.prediction_arrays(summary)
        delta = float(delta)
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a positive discount rate per time unit, got {delta!r}")
        return pd.Series(dert(*self._p(), x, t_x, T, delta), index=summary.index, name="dert")
