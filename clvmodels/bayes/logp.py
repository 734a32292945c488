"""PyTensor twins of the numpy log-likelihoods in :mod:`clvmodels.models` (tests hold them equal, gradients
included).

BG/NBD: Fader, Hardie & Lee (2005), eq. (6), in the same form as
:func:`clvmodels.models.bgnbd.loglik_terms`: shared(x) + logaddexp(term1, term2), with term2 only for
customers with repeat purchases; with ``dropout_at_zero``, the MBG/NBD's (Batislam et al. 2007), where
every customer has both terms. Gamma-Gamma: FHL (2005, JMR) eq. (3), as
:func:`clvmodels.models.gamma_gamma.loglik_terms`. Pareto/NBD: the FHL note's likelihood with its integral
over the dropout time (:func:`pnbd_loglik`, :mod:`clvmodels.models.pnbd`). (M)BG/CNBD-k: Reutterer,
Platzer & Schröder (2021), as :func:`clvmodels.models.cnbd.loglik_terms`. BG/BB: Fader, Hardie & Shang
(2010) eq. (5), as :func:`clvmodels.models.bgbb.loglik_terms`.

Parameters are scalars (one population) or vectors with one value per segment, and ``seg`` gives each
row's segment. The special functions of eq. (6) depend on (segment, x) only, so :class:`BgnbdRows` sorts
the rows by (x > 0, segment, x) once and they are evaluated once per distinct pair, leaving two
logarithms and a logaddexp per row: a hierarchical likelihood costs about what a pooled one does.

For sampling, :func:`bgnbd_total_loglik` gives the weighted total with the repeat buyers' rows in one
Op (:class:`RepeatBuyerTerms`: numpy for PyTensor's C backend, a loop compiled by numba for nutpie),
value and gradient in one pass over the rows with the logarithms taken once per distinct age and
recency: 10 ms a gradient for 534,889 rows on one core, against 18 ms for the same sum written as a
PyTensor graph. :func:`gamma_gamma_total_loglik` likewise takes the gamma functions once per distinct
(segment, x) and one logarithm per row.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from scipy.special import gammaln
from pytensor.gradient import DisconnectedType, zero_grad
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from ..models.rows import distinct_rows

__all__ = ["BgnbdRows", "bgnbd_loglik", "bgnbd_loglik_sorted", "bgnbd_total_loglik", "gamma_gamma_loglik",
           "gamma_gamma_total_loglik", "pnbd_loglik", "cnbd_loglik", "bgbb_loglik"]


def _betaln(a, b):
    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def _at(p, idx):
    """A per-segment parameter at ``idx`` (a scalar parameter as it is)."""
    return p[idx] if getattr(p, "ndim", 0) else p


class BgnbdRows:
    """BG/NBD data sorted by (x + z > 0, segment, x), with the distinct (segment, x) pairs; z = 1 with
    ``dropout_at_zero`` (MBG/NBD), else 0.

    ``order`` maps sorted position to input row; ``n0`` rows (and ``m0`` pairs) have one term of eq. (6)
    only (x + z = 0).
    """

    def __init__(self, x, t_x, T, seg=None, dropout_at_zero: bool = False) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.z = float(dropout_at_zero)
        seg = np.zeros(len(x), dtype=np.int64) if seg is None else np.asarray(seg, dtype=np.int64)
        self.order = np.lexsort((x, seg, x + self.z > 0))
        self.x, self.seg = x[self.order], seg[self.order]
        self.t_x = np.asarray(t_x, dtype=np.float64)[self.order]
        self.T = np.asarray(T, dtype=np.float64)[self.order]
        keys = np.stack([self.x + self.z > 0, self.seg, self.x], axis=1)
        pairs, self.row_pair = np.unique(keys, axis=0, return_inverse=True)
        self.row_pair = self.row_pair.ravel()
        self.pair_seg, self.pair_x = pairs[:, 1].astype(np.int64), pairs[:, 2]
        self.n0 = int((self.x + self.z == 0).sum())
        self.m0 = int((self.pair_x + self.z == 0).sum())


def _shared(r, alpha, a, b, rows: BgnbdRows):
    """The terms of eq. (6) that depend on (segment, x) only, once per pair, and the per-pair
    parameters."""
    ps, px = rows.pair_seg, rows.pair_x
    rp, alp, ap, bp = (_at(p, ps) for p in (r, alpha, a, b))
    shared = (pt.gammaln(rp + px) - pt.gammaln(rp) + rp * pt.log(alp) + _betaln(ap, bp + px + rows.z)
              - _betaln(ap, bp))
    return shared, rp, ap, bp


def _log_ratio(ap, bp, rows: BgnbdRows):
    """log B(a+1, b+x+z-1) / B(a, b+x+z) = log a / (b+x+z-1), for the pairs with a second term."""
    m0 = rows.m0
    a1, b1 = (v[m0:] if getattr(v, "ndim", 0) else v for v in (ap, bp))
    return pt.log(a1) - pt.log(b1 + rows.pair_x[m0:] + rows.z - 1)


def bgnbd_loglik_sorted(r, alpha, a, b, rows: BgnbdRows):
    """Per-row BG/NBD (MBG/NBD) log-likelihood (FHL 2005, eq. 6) in the sorted order of ``rows``."""
    px = rows.pair_x
    shared, rp, ap, bp = _shared(r, alpha, a, b, rows)
    rx = (rp + px)[rows.row_pair]
    log_al_T = pt.log(_at(alpha, rows.seg) + rows.T)
    n0, m0 = rows.n0, rows.m0
    ll0 = shared[rows.row_pair[:n0]] - rx[:n0] * log_al_T[:n0]
    c = _log_ratio(ap, bp, rows)
    pos = slice(n0, None)
    term2 = c[rows.row_pair[pos] - m0] - rx[pos] * pt.log(_at(alpha, rows.seg[pos]) + rows.t_x[pos])
    ll1 = shared[rows.row_pair[pos]] + _logaddexp(-rx[pos] * log_al_T[pos], term2)
    return pt.concatenate([ll0, ll1])


def _repeat_terms(r, alpha, c, tab_T_seg, tab_T, tab_t_seg, tab_t, seg, pair, i_T, i_t, x, w):
    """The two-term rows of eq. (6) (repeat buyers; with dropout at zero, every row),
    sum_i w_i log(e^term1_i + e^term2_i) with term1 = -(r+x) log(alpha+T),
    term2 = log(a/(b+x+z-1)) - (r+x) log(alpha+t_x) (``c`` = the log ratio per (segment, x) pair), and its gradient in r, alpha (per segment) and c (per pair), in numpy. The
    logarithms of alpha + T and alpha + t_x come from tables of the distinct (segment, T) and
    (segment, t_x) values."""
    den_T, den_t = alpha[tab_T_seg] + tab_T, alpha[tab_t_seg] + tab_t
    log_T, log_t = np.log(den_T)[i_T], np.log(den_t)[i_t]
    rx = r[seg] + x
    term1, term2 = -rx * log_T, c[pair] - rx * log_t
    both = np.logaddexp(term1, term2)
    w2 = np.exp(term2 - both)  # the share of the second term
    w1 = 1.0 - w2
    d_r = np.bincount(seg, weights=-w * (w1 * log_T + w2 * log_t), minlength=len(r))
    d_alpha = np.bincount(seg, weights=-w * rx * (w1 / den_T[i_T] + w2 / den_t[i_t]), minlength=len(alpha))
    d_c = np.bincount(pair, weights=w * w2, minlength=len(c))
    return np.asarray(np.dot(w, both)), d_r, d_alpha, d_c


def _repeat_terms_loop(r, alpha, c, tab_T_seg, tab_T, tab_t_seg, tab_t, seg, pair, i_T, i_t, x, w):
    """:func:`_repeat_terms` as one loop over the rows (compiled by numba for nutpie's sampler)."""
    log_T = np.log(alpha[tab_T_seg] + tab_T)
    inv_T = 1.0 / (alpha[tab_T_seg] + tab_T)
    log_t = np.log(alpha[tab_t_seg] + tab_t)
    inv_t = 1.0 / (alpha[tab_t_seg] + tab_t)
    total = 0.0
    d_r, d_alpha, d_c = np.zeros(len(r)), np.zeros(len(alpha)), np.zeros(len(c))
    for i in range(len(x)):
        s, k, j = seg[i], i_T[i], i_t[i]
        rx = r[s] + x[i]
        term1 = -rx * log_T[k]
        term2 = c[pair[i]] - rx * log_t[j]
        d = term2 - term1
        if d > 0:
            e = np.exp(-d)
            both, w2 = term2 + np.log1p(e), 1.0 / (1.0 + e)
        else:
            e = np.exp(d)
            both, w2 = term1 + np.log1p(e), e / (1.0 + e)
        w1 = 1.0 - w2
        total += w[i] * both
        d_r[s] -= w[i] * (w1 * log_T[k] + w2 * log_t[j])
        d_alpha[s] -= w[i] * rx * (w1 * inv_T[k] + w2 * inv_t[j])
        d_c[pair[i]] += w[i] * w2
    out = np.empty(())
    out[()] = total
    return out, d_r, d_alpha, d_c


class RepeatBuyerTerms(Op):
    """PyTensor Op: the repeat buyers' terms of the BG/NBD log-likelihood (:func:`_repeat_terms`) and, as
    further outputs, their gradient, computed in the same pass. Inputs: r and alpha per segment, c per
    (segment, x) pair, then the data as constants. Only the first output has a gradient."""

    __props__ = ()

    @classmethod
    def apply(cls, r, alpha, c, seg, pair, x, T, t_x, w):
        (tab_T_seg, tab_T), i_T = _distinct(seg, T)
        (tab_t_seg, tab_t), i_t = _distinct(seg, t_x)
        data = [tab_T_seg, tab_T, tab_t_seg, tab_t, np.asarray(seg, dtype=np.int64), np.asarray(pair, dtype=np.int64),
                i_T, i_t, np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)]
        return cls()(r, alpha, c, *data)[0]

    def make_node(self, r, alpha, c, *data):
        inputs = [pt.as_tensor_variable(v) for v in (r, alpha, c)] + [pt.constant(d) for d in data]
        return Apply(self, inputs, [pt.dscalar(), pt.dvector(), pt.dvector(), pt.dvector()])

    def perform(self, node, inputs, outputs):
        # A sampler's proposal far in the tails (r or alpha overflowing) gives a non-finite log-density,
        # which NUTS itself treats as a rejected, divergent step: no numpy warning for the user.
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            values = _repeat_terms(*inputs)
        for out, value in zip(outputs, values):
            out[0] = value

    def grad(self, inputs, output_grads):
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("only the total of RepeatBuyerTerms has a gradient")
        _, d_r, d_alpha, d_c = self(*inputs)
        g = output_grads[0]
        return [g * d_r, g * d_alpha, g * d_c] + [DisconnectedType()() for _ in inputs[3:]]

    def connection_pattern(self, node):
        return [[True] * 4] * 3 + [[False] * 4] * (len(node.inputs) - 3)


def _distinct(seg, values):
    """The distinct (segment, value) pairs as two arrays in sorted order, and each row's position among
    them."""
    seg = np.asarray(seg, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    first, inverse = distinct_rows(seg, values)
    return (seg[first], values[first]), inverse


def _register_numba() -> None:
    """Give RepeatBuyerTerms a numba implementation (the loop), so nutpie's compiled model runs it natively."""
    try:
        from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key
    except ImportError:  # pragma: no cover - older PyTensor: numba falls back to perform
        return

    @register_funcify_default_op_cache_key(RepeatBuyerTerms)
    def _funcify(op, node=None, **kwargs):
        return numba_njit(_repeat_terms_loop)


_register_numba()


def bgnbd_total_loglik(r, alpha, a, b, rows: BgnbdRows, w: np.ndarray):
    """The weighted total BG/NBD (MBG/NBD) log-likelihood, sum_i w_i LL_i (FHL 2005, eq. 6), for sampling.

    The same terms as :func:`bgnbd_loglik_sorted`, arranged for speed at scale: the parts that depend
    only on (segment, x) enter once per pair with the summed weight of its rows; the customers with one
    term (no repeat purchases, and no dropout at zero) in one expression (few rows: one per distinct
    segment and age); the other rows in one pass of :class:`RepeatBuyerTerms`, value and gradient together.
    """
    w = np.asarray(w, dtype=np.float64)[rows.order]
    px = rows.pair_x
    shared, _, ap, bp = _shared(r, alpha, a, b, rows)
    total = pt.sum(np.bincount(rows.row_pair, weights=w, minlength=len(px)) * shared)
    m0, n0 = rows.m0, rows.n0
    if len(rows.x) > n0:  # rows with two terms: one pass over them (:class:`RepeatBuyerTerms`)
        r_v, alpha_v = (p if getattr(p, "ndim", 0) else pt.atleast_1d(p) for p in (r, alpha))
        seg1 = rows.seg[n0:] if getattr(r, "ndim", 0) else np.zeros(len(rows.x) - n0, dtype=np.int64)
        c = _log_ratio(ap, bp, rows)
        total = total + RepeatBuyerTerms.apply(r_v, alpha_v, c, seg1, rows.row_pair[n0:] - m0, rows.x[n0:],
                                               rows.T[n0:], rows.t_x[n0:], w[n0:])
    if n0:  # x = 0: (alpha / (alpha + T))^r, its r log(alpha) being in `shared`
        seg0 = rows.seg[:n0]
        total = total - pt.sum(w[:n0] * _at(r, seg0) * pt.log(_at(alpha, seg0) + rows.T[:n0]))
    return total


def bgnbd_loglik(r, alpha, a, b, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, seg: np.ndarray | None = None,
                 dropout_at_zero: bool = False):
    """Per-row BG/NBD (MBG/NBD) log-likelihood as a PyTensor expression, in the order of the rows given."""
    rows = BgnbdRows(x, t_x, T, seg, dropout_at_zero)
    inverse = np.empty_like(rows.order)
    inverse[rows.order] = np.arange(len(rows.order))
    return bgnbd_loglik_sorted(r, alpha, a, b, rows)[inverse]


def _gamma_gamma_pair_terms(p, q, gamma, pair_seg, pair_x):
    """The terms of FHL (2005, JMR) eq. (3) that depend on (segment, x) only, once per distinct pair:
    log Gamma(px+q) - log Gamma(px) - log Gamma(q) + q log gamma + px log x."""
    ps, qs, gs = (_at(v, pair_seg) for v in (p, q, gamma))
    px = ps * pair_x
    return pt.gammaln(px + qs) - pt.gammaln(px) - pt.gammaln(qs) + qs * pt.log(gs) + px * np.log(pair_x)


def _gamma_gamma_rows(x, zbar, seg):
    """Float data, integer segments, the distinct (segment, x) pairs and each row's pair."""
    x = np.asarray(x, dtype=np.float64)
    zbar = np.asarray(zbar, dtype=np.float64)
    seg = np.zeros(len(x), dtype=np.int64) if seg is None else np.asarray(seg, dtype=np.int64)
    (pair_seg, pair_x), row_pair = _distinct(seg, x)
    return x, zbar, seg, pair_seg, pair_x, row_pair


def gamma_gamma_loglik(p, q, gamma, x: np.ndarray, zbar: np.ndarray, seg: np.ndarray | None = None):
    """Per-row Gamma-Gamma log-density of the mean spend (customers with x > 0 only; FHL 2005 JMR, eq. 3)."""
    x, zbar, seg, pair_seg, pair_x, row_pair = _gamma_gamma_rows(x, zbar, seg)
    pr, qr, gr = (_at(v, seg) for v in (p, q, gamma))
    return (_gamma_gamma_pair_terms(p, q, gamma, pair_seg, pair_x)[row_pair] + (pr * x - 1) * np.log(zbar)
            - (pr * x + qr) * pt.log(gr + x * zbar))


def gamma_gamma_total_loglik(p, q, gamma, x: np.ndarray, zbar: np.ndarray, w: np.ndarray,
                             seg: np.ndarray | None = None):
    """The weighted total Gamma-Gamma log-likelihood, sum_i w_i LL_i (FHL 2005 JMR, eq. 3), for sampling.

    The terms of :func:`gamma_gamma_loglik` arranged so that a row costs one logarithm: the gamma
    functions and px log x enter once per distinct (segment, x) pair with the summed weight of its rows;
    (px - 1) log zbar, linear in p, as p times a sum per segment fixed in advance; only
    (px + q) log(gamma + x zbar) is taken row by row.
    """
    x, zbar, seg, pair_seg, pair_x, row_pair = _gamma_gamma_rows(x, zbar, seg)
    w = np.asarray(w, dtype=np.float64)
    pair_w = np.bincount(row_pair, weights=w, minlength=len(pair_x))
    present, seg_row = np.unique(seg, return_inverse=True)
    log_z = np.log(zbar)
    wx_log_z = np.bincount(seg_row.ravel(), weights=w * x * log_z, minlength=len(present))
    pr, qr, gr = (_at(v, seg) for v in (p, q, gamma))
    return (pt.sum(pair_w * _gamma_gamma_pair_terms(p, q, gamma, pair_seg, pair_x))
            + pt.sum(_at(p, present) * wx_log_z) - float(np.dot(w, log_z))
            - pt.sum((pr * (w * x) + qr * w) * pt.log(gr + x * zbar)))


def _logaddexp(a, b):
    """log(e^a + e^b) for finite a and b, without overflow (PyTensor's own is log(exp(a) + exp(b)), left
    to graph rewrites), from the larger term; its gradient is exact where a = b too (that of
    max(a, b) would count both)."""
    return pt.switch(a >= b, a + pt.log1p(pt.exp(b - a)), b + pt.log1p(pt.exp(a - b)))


def _logsumexp(v, axis: int):
    """log sum exp(v) along ``axis``, from the largest term (terms may be -inf, not all of them). The
    result does not depend on the shift, so no gradient flows through it."""
    top = zero_grad(pt.max(v, axis=axis, keepdims=True))
    return (top + pt.log(pt.sum(pt.exp(v - top), axis=axis, keepdims=True))).squeeze(axis)



def _rows(params, seg, n: int) -> list:
    """Each parameter at each row, as a vector: per-segment vectors indexed by ``seg`` (:func:`_at`),
    scalars repeated."""
    seg = np.zeros(n, dtype=np.int64) if seg is None else np.asarray(seg, dtype=np.int64)
    return [_at(p, seg) if getattr(p, "ndim", 0) else pt.alloc(p, n) for p in params]


def _gauss_panels(panels: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule on [0, 1]: ``panels`` equal panels of ``nodes`` points each."""
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1.0) / 2.0, w / 2.0
    return ((np.arange(panels)[:, None] + u[None, :]) / panels).ravel(), np.tile(w, panels) / panels


#: The fixed rule of the Pareto/NBD integral: 4 panels of 10 nodes over the range that holds all but e^-40
#: of it, found by ``PNBD_NEWTON`` Newton steps (tests/test_bayes_family_logp.py holds the result to the
#: adaptive numpy rule, 1e-10, gradients 1e-8).
PNBD_NODES, PNBD_WEIGHTS = _gauss_panels(4, 10)
PNBD_CUT = 40.0
PNBD_NEWTON = 3


def _pnbd_log_si(r, alpha, s, beta, x, t_x, T):
    """log(s I), I = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau (rows with T > t_x).

    As in :func:`clvmodels.models.pnbd.log_integral`: with P = min(alpha, beta), d = |alpha - beta| and
    l = log(P + tau), the integrand is exp(psi(l)), psi(l) = -a l - q log1p(d e^-l), a = r+s+x, which is
    concave; psi falls from l0 = log(P + t_x) at least at the rate kappa = -psi'(l0), when that is
    positive, so that [l0, l0 + 40 / kappa] holds all but e^-40 of the integral; Newton steps shorten it
    (or the whole range) to where psi has fallen by about 40. That range is integrated by the fixed
    composite rule ``PNBD_NODES``: one graph for every row, whose gradient PyTensor takes.
    """
    low = alpha <= beta
    P = pt.switch(low, alpha, beta)
    d = pt.switch(low, beta - alpha, alpha - beta)   # (|alpha - beta|, with the gradient of each side at 0)
    q = pt.switch(low, s + 1.0, r + x)
    a = r + s + x
    base = P + t_x
    h = pt.log1p((T - t_x) / base)
    y0 = d / base
    kappa = a - q * y0 / (1.0 + y0)
    reach = PNBD_CUT / h
    width = pt.switch(kappa > reach, PNBD_CUT / pt.maximum(kappa, reach), h)
    # psi steepens along the range (to slope -a), so it may fall far more than 40 within it: Newton steps
    # on fall(w) = 40, fall convex and increasing, from the right stay at or above the root (the cut never
    # removes more than e^-40 of the integral) and leave about 40 of fall for the panels
    log1p_y0 = pt.log1p(y0)
    for _ in range(PNBD_NEWTON):
        y = y0 * pt.exp(-width)
        fall = a * width + q * (pt.log1p(y) - log1p_y0)
        step = (fall - PNBD_CUT) / (a - q * y / (1.0 + y))
        width = pt.switch(fall > PNBD_CUT, width - step, width)
    u = width[:, None] * PNBD_NODES[None, :]
    rel = -a[:, None] * u - q[:, None] * (pt.log1p(y0[:, None] * pt.exp(-u)) - log1p_y0[:, None])
    psi0 = -a * pt.log(base) - q * log1p_y0
    return pt.log(s) + psi0 + pt.log(width) + _logsumexp(rel + np.log(PNBD_WEIGHTS)[None, :], axis=1)


def pnbd_loglik(r, alpha, s, beta, x, t_x, T, seg=None):
    """Per-row Pareto/NBD log-likelihood (FHL note, section 3; :func:`clvmodels.models.pnbd.loglik_terms`):
    Gamma(r+x) alpha^r beta^s / Gamma(r) [(alpha+T)^-(r+x) (beta+T)^-s + s I], I by :func:`_pnbd_log_si`."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    r, alpha, s, beta = _rows((r, alpha, s, beta), seg, len(x))
    alive = -(r + x) * pt.log(alpha + T) - s * pt.log(beta + T)
    gap = np.flatnonzero(T > t_x)  # (where t_x = T the integral is 0)
    bracket = alive
    if len(gap):
        sub = [v[gap] for v in (r, alpha, s, beta)]
        bracket = pt.set_subtensor(alive[gap], _logaddexp(alive[gap], _pnbd_log_si(*sub, x[gap], t_x[gap], T[gap])))
    return pt.gammaln(r + x) - pt.gammaln(r) + r * pt.log(alpha) + s * pt.log(beta) + bracket



def cnbd_loglik(r, alpha, a, b, x, t_x, T, litt=None, seg=None, *, k: int, dropout_at_zero: bool = False):
    """Per-row (M)BG/CNBD-k log-likelihood at a given k (Reutterer et al. 2021;
    :func:`clvmodels.models.cnbd.loglik_terms`): the k summands of the alive term (the Erlang phases
    since the last purchase) and the dropped-out term, combined in log space. ``litt`` (the timing
    density's share, which no parameter changes) is left out when None."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    z = float(dropout_at_zero)
    r, alpha, a, b = _rows((r, alpha, a, b), seg, len(x))
    j = np.arange(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # (t_x = T: the phases j >= 1 have probability 0)
        phase = np.where(j == 0, 0.0, j * np.log(T - t_x)[:, None]) - gammaln(j + 1)
    R = (r + k * x)[:, None] + j
    beta_alive = _betaln(a, b + x + z) - _betaln(a, b)
    alive = beta_alive[:, None] + phase + pt.gammaln(R) - R * pt.log(alpha + T)[:, None]
    total = _logsumexp(alive, axis=1)
    two = np.flatnonzero(x + z > 0)   # rows with a dropped-out term
    if len(two):
        kx = r[two] + k * x[two]
        gone = (beta_alive[two] + pt.log(a[two]) - pt.log(b[two] + x[two] + z - 1) + pt.gammaln(kx)
                - kx * pt.log(alpha[two] + t_x[two]))
        total = pt.set_subtensor(total[two], _logsumexp(pt.concatenate([alive[two], gone[:, None]], axis=1), axis=1))
    const = 0.0 if litt is None else (k - 1) * np.asarray(litt, dtype=np.float64) - x * gammaln(k)
    return const + r * pt.log(alpha) - pt.gammaln(r) + total


def bgbb_loglik(alpha, beta, gamma, delta, x, t_x, n, seg=None):
    """Per-row BG/BB log-likelihood (Fader, Hardie & Shang 2010, eq. 5; :func:`clvmodels.models.bgbb.loglik_terms`):
    log [A + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x+i-x) B(gamma+1, delta+t_x+i) / (B(alpha, beta) B(gamma, delta))],
    A = B(alpha+x, beta+n-x) B(gamma, delta+n) / (B(alpha, beta) B(gamma, delta)); the sum's terms as
    columns, those past n - t_x masked."""
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in (x, t_x, n))
    alpha, beta, gamma, delta = (v[:, None] for v in _rows((alpha, beta, gamma, delta), seg, len(x)))
    norm = _betaln(alpha, beta) + _betaln(gamma, delta)
    xc = x[:, None]
    log_a = _betaln(alpha + xc, beta + n[:, None] - xc) + _betaln(gamma, delta + n[:, None]) - norm
    gap = np.round(n - t_x).astype(np.int64)
    i = np.arange(max(int(gap.max(initial=0)), 1), dtype=np.float64)
    when = t_x[:, None] + np.minimum(i[None, :], np.maximum(gap[:, None] - 1, 0))   # (kept valid where masked)
    mask = np.where(i[None, :] < gap[:, None], 0.0, -np.inf)
    terms = _betaln(alpha + xc, beta + when - xc) + _betaln(gamma + 1.0, delta + when) - norm + mask
    return _logsumexp(pt.concatenate([log_a, terms], axis=1), axis=1)
