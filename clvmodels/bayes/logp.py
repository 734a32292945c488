"""PyTensor twins of the numpy log-likelihoods in :mod:`clvmodels.models` (tests hold them equal).

BG/NBD: Fader, Hardie & Lee (2005), eq. (6), in the same form as
:func:`clvmodels.models.bgnbd.loglik_terms`: shared(x) + logaddexp(term1, term2), with term2 only for
customers with repeat purchases. Gamma-Gamma: FHL (2005, JMR) eq. (3), as
:func:`clvmodels.models.gamma_gamma.loglik_terms`.

Parameters are scalars (one population) or vectors with one value per segment, and ``seg`` gives each
row's segment. The special functions of eq. (6) depend on (segment, x) only, so :class:`BgnbdRows` sorts
the rows by (x > 0, segment, x) once and they are evaluated once per distinct pair, leaving two
logarithms and a logaddexp per row: a hierarchical likelihood costs about what a pooled one does.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

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
        # each segment's rows are contiguous within the x = 0 part and within the x > 0 part
        n_seg = int(seg.max()) + 1 if len(seg) else 0
        self.blocks0 = np.searchsorted(self.seg[:self.n0], np.arange(n_seg + 1))
        self.blocks1 = self.n0 + np.searchsorted(self.seg[self.n0:], np.arange(n_seg + 1))


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


def bgnbd_total_loglik(r, alpha, a, b, rows: BgnbdRows, w: np.ndarray):
    """The weighted total BG/NBD log-likelihood, sum_i w_i LL_i (FHL 2005, eq. 6), for sampling.

    The same terms as :func:`bgnbd_loglik_sorted`, arranged for speed at scale: the parts that depend
    only on (segment, x) enter once per pair with the summed weight of its rows, and the per-row parts
    are computed segment by segment on contiguous blocks with the segment's parameters as scalars, so
    that no per-row gather of parameters (nor its scatter-add in the gradient) is needed.
    """
    w = np.asarray(w, dtype=np.float64)[rows.order]
    ps, px = rows.pair_seg, rows.pair_x
    rp, alp, ap, bp = (_at(p, ps) for p in (r, alpha, a, b))
    shared = pt.gammaln(rp + px) - pt.gammaln(rp) + rp * pt.log(alp) + _betaln(ap, bp + px) - _betaln(ap, bp)
    total = pt.sum(np.bincount(rows.row_pair, weights=w, minlength=len(px)) * shared)
    for s in range(len(rows.blocks0) - 1):
        r_s, alpha_s, a_s, b_s = (p[s] if getattr(p, "ndim", 0) else p for p in (r, alpha, a, b))
        i0, i1 = rows.blocks0[s], rows.blocks0[s + 1]
        if i1 > i0:  # x = 0: (alpha / (alpha + T))^r, its r log(alpha) being in `shared`
            total = total - r_s * pt.sum(w[i0:i1] * pt.log(alpha_s + rows.T[i0:i1]))
        j0, j1 = rows.blocks1[s], rows.blocks1[s + 1]
        if j1 > j0:
            x = rows.x[j0:j1]
            rx = r_s + x
            # the logarithms once per distinct age, recency and frequency, taken from there per row
            u_T, i_T = np.unique(rows.T[j0:j1], return_inverse=True)
            u_t, i_t = np.unique(rows.t_x[j0:j1], return_inverse=True)
            u_x, i_x = np.unique(x, return_inverse=True)
            term1 = -rx * pt.log(alpha_s + u_T)[i_T.ravel()]
            term2 = pt.log(a_s) - pt.log(b_s + u_x - 1)[i_x.ravel()] - rx * pt.log(alpha_s + u_t)[i_t.ravel()]
            # log(e^term1 + e^term2), stable for terms far below zero (large x or T)
            both = pt.maximum(term1, term2) + pt.log1p(pt.exp(-abs(term1 - term2)))
            total = total + pt.sum(w[j0:j1] * both)
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
