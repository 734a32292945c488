"""PyTensor twins of the numpy log-likelihoods in :mod:`clvmodels.models` (tests hold them equal).

BG/NBD: Fader, Hardie & Lee (2005), eq. (6), in the same form as
:func:`clvmodels.models.bgnbd.loglik_terms`: shared(x) + logaddexp(term1, term2), with term2 only for
customers with repeat purchases. Gamma-Gamma: FHL (2005, JMR) eq. (3), as
:func:`clvmodels.models.gamma_gamma.loglik_terms`.

Parameters are scalars (one population) or vectors with one value per segment, and ``seg`` gives each
row's segment. The special functions of eq. (6) depend on (segment, x) only, so :class:`BgnbdRows` sorts
the rows by (x > 0, segment, x) once and they are evaluated once per distinct pair, leaving two
logarithms and a logaddexp per row: a hierarchical likelihood costs about what a pooled one does.

For sampling, :func:`bgnbd_total_loglik` gives the weighted total with the repeat buyers' rows in one
Op (:class:`RepeatBuyerTerms`: numpy for PyTensor's C backend, a loop compiled by numba for nutpie),
value and gradient in one pass over the rows with the logarithms taken once per distinct age and
recency: 10 ms a gradient for 534,889 rows on one core, against 18 ms for the same sum written as a
PyTensor graph.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["BgnbdRows", "bgnbd_loglik", "bgnbd_loglik_sorted", "bgnbd_total_loglik", "gamma_gamma_loglik"]


def _betaln(a, b):
    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def _at(p, idx):
    """A per-segment parameter at ``idx`` (a scalar parameter as it is)."""
    return p[idx] if getattr(p, "ndim", 0) else p


class BgnbdRows:
    """BG/NBD data sorted by (x > 0, segment, x), with the distinct (segment, x) pairs.

    ``order`` maps sorted position to input row; ``n0`` rows (and ``m0`` pairs) have x = 0.
    """

    def __init__(self, x, t_x, T, seg=None) -> None:
        x = np.asarray(x, dtype=np.float64)
        seg = np.zeros(len(x), dtype=np.int64) if seg is None else np.asarray(seg, dtype=np.int64)
        self.order = np.lexsort((x, seg, x > 0))
        self.x, self.seg = x[self.order], seg[self.order]
        self.t_x = np.asarray(t_x, dtype=np.float64)[self.order]
        self.T = np.asarray(T, dtype=np.float64)[self.order]
        keys = np.stack([self.x > 0, self.seg, self.x], axis=1)
        pairs, self.row_pair = np.unique(keys, axis=0, return_inverse=True)
        self.row_pair = self.row_pair.ravel()
        self.pair_seg, self.pair_x = pairs[:, 1].astype(np.int64), pairs[:, 2]
        self.n0 = int((self.x == 0).sum())
        self.m0 = int((self.pair_x == 0).sum())
        # each segment's rows without repeat purchases are contiguous
        n_seg = int(seg.max()) + 1 if len(seg) else 0
        self.blocks0 = np.searchsorted(self.seg[:self.n0], np.arange(n_seg + 1))


def bgnbd_loglik_sorted(r, alpha, a, b, rows: BgnbdRows):
    """Per-row BG/NBD log-likelihood (FHL 2005, eq. 6) in the sorted order of ``rows``."""
    ps, px = rows.pair_seg, rows.pair_x
    rp, alp, ap, bp = (_at(p, ps) for p in (r, alpha, a, b))
    shared = pt.gammaln(rp + px) - pt.gammaln(rp) + rp * pt.log(alp) + _betaln(ap, bp + px) - _betaln(ap, bp)
    rx = (rp + px)[rows.row_pair]
    log_al_T = pt.log(_at(alpha, rows.seg) + rows.T)
    n0, m0 = rows.n0, rows.m0
    ll0 = shared[rows.row_pair[:n0]] - rx[:n0] * log_al_T[:n0]
    # repeat buyers: B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)
    ap1, bp1 = (v[m0:] if getattr(v, "ndim", 0) else v for v in (ap, bp))
    c = pt.log(ap1) - pt.log(bp1 + px[m0:] - 1)
    pos = slice(n0, None)
    term2 = c[rows.row_pair[pos] - m0] - rx[pos] * pt.log(_at(alpha, rows.seg[pos]) + rows.t_x[pos])
    ll1 = shared[rows.row_pair[pos]] + pt.logaddexp(-rx[pos] * log_al_T[pos], term2)
    return pt.concatenate([ll0, ll1])


def _repeat_terms(r, alpha, c, tab_T_seg, tab_T, tab_t_seg, tab_t, seg, pair, i_T, i_t, x, w):
    """The repeat buyers' part of eq. (6), sum_i w_i log(e^term1_i + e^term2_i) with
    term1 = -(r+x) log(alpha+T), term2 = log(a/(b+x-1)) - (r+x) log(alpha+t_x) (``c`` = the log ratio per
    (segment, x) pair), and its gradient in r, alpha (per segment) and c (per pair), in numpy. The
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
    """The distinct (segment, value) pairs as two arrays, and each row's position among them."""
    keys, inverse = np.unique(np.stack([np.asarray(seg, dtype=np.float64), np.asarray(values, dtype=np.float64)]),
                              axis=1, return_inverse=True)
    return (keys[0].astype(np.int64), keys[1]), inverse.ravel().astype(np.int64)


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
    """The weighted total BG/NBD log-likelihood, sum_i w_i LL_i (FHL 2005, eq. 6), for sampling.

    The same terms as :func:`bgnbd_loglik_sorted`, arranged for speed at scale: the parts that depend
    only on (segment, x) enter once per pair with the summed weight of its rows; the customers without
    repeat purchases, segment by segment (few rows: one per distinct age); the repeat buyers' rows in one
    pass of :class:`RepeatBuyerTerms`, value and gradient together.
    """
    w = np.asarray(w, dtype=np.float64)[rows.order]
    ps, px = rows.pair_seg, rows.pair_x
    rp, alp, ap, bp = (_at(p, ps) for p in (r, alpha, a, b))
    shared = pt.gammaln(rp + px) - pt.gammaln(rp) + rp * pt.log(alp) + _betaln(ap, bp + px) - _betaln(ap, bp)
    total = pt.sum(np.bincount(rows.row_pair, weights=w, minlength=len(px)) * shared)
    m0, n0 = rows.m0, rows.n0
    if len(rows.x) > n0:  # repeat buyers: one pass over their rows (:class:`RepeatBuyerTerms`)
        r_v, alpha_v = (p if getattr(p, "ndim", 0) else pt.atleast_1d(p) for p in (r, alpha))
        seg1 = rows.seg[n0:] if getattr(r, "ndim", 0) else np.zeros(len(rows.x) - n0, dtype=np.int64)
        a1, b1 = (v[m0:] if getattr(v, "ndim", 0) else v for v in (ap, bp))
        c = pt.log(a1) - pt.log(b1 + px[m0:] - 1)  # log B(a+1, b+x-1) / B(a, b+x) = log a / (b+x-1)
        total = total + RepeatBuyerTerms.apply(r_v, alpha_v, c, seg1, rows.row_pair[n0:] - m0, rows.x[n0:],
                                               rows.T[n0:], rows.t_x[n0:], w[n0:])
    for s in range(len(rows.blocks0) - 1):
        r_s, alpha_s = (p[s] if getattr(p, "ndim", 0) else p for p in (r, alpha))
        i0, i1 = rows.blocks0[s], rows.blocks0[s + 1]
        if i1 > i0:  # x = 0: (alpha / (alpha + T))^r, its r log(alpha) being in `shared`
            total = total - r_s * pt.sum(w[i0:i1] * pt.log(alpha_s + rows.T[i0:i1]))
    return total


def bgnbd_loglik(r, alpha, a, b, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, seg: np.ndarray | None = None):
    """Per-row BG/NBD log-likelihood as a PyTensor expression, in the order of the rows given."""
    rows = BgnbdRows(x, t_x, T, seg)
    inverse = np.empty_like(rows.order)
    inverse[rows.order] = np.arange(len(rows.order))
    return bgnbd_loglik_sorted(r, alpha, a, b, rows)[inverse]


def gamma_gamma_loglik(p, q, gamma, x: np.ndarray, zbar: np.ndarray, seg: np.ndarray | None = None):
    """Per-row Gamma-Gamma log-density of the mean spend (customers with x > 0 only)."""
    x = np.asarray(x, dtype=np.float64)
    zbar = np.asarray(zbar, dtype=np.float64)
    if seg is not None:
        p, q, gamma = (_at(v, np.asarray(seg, dtype=np.int64)) for v in (p, q, gamma))
    px = p * x
    return (pt.gammaln(px + q) - pt.gammaln(px) - pt.gammaln(q) + q * pt.log(gamma) + (px - 1) * np.log(zbar)
            + px * np.log(x) - (px + q) * pt.log(gamma + x * zbar))
