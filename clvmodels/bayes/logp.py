"""PyTensor twins of the numpy log-likelihoods in :mod:`clvmodels.models` (tests hold them equal).

BG/NBD: Fader, Hardie & Lee (2005), eq. (6), in the same form as
:func:`clvmodels.models.bgnbd.loglik_terms`: shared(x) + logaddexp(term1, term2), with term2 only for
customers with repeat purchases. Gamma-Gamma: FHL (2005, JMR) eq. (3), as
:func:`clvmodels.models.gamma_gamma.loglik_terms`.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

__all__ = ["bgnbd_loglik", "gamma_gamma_loglik"]


def _betaln(a, b):
    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def bgnbd_loglik(r, alpha, a, b, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Per-row BG/NBD log-likelihood as a PyTensor expression.

    ``r, alpha, a, b`` are scalars or vectors aligned with the rows (per-row segment parameters).
    Rows with x = 0 and x > 0 are handled apart, so that log(b + x - 1) is never taken at x = 0.
    """
    x = np.asarray(x, dtype=np.float64)
    pos = x > 0
    out = []
    for mask in (~pos, pos):
        idx = np.flatnonzero(mask)
        xs, txs, Ts = x[idx], np.asarray(t_x, dtype=np.float64)[idx], np.asarray(T, dtype=np.float64)[idx]

        def sel(p):
            return p[idx] if getattr(p, "ndim", 0) else p

        rr, al, aa, bb = sel(r), sel(alpha), sel(a), sel(b)
        shared = (pt.gammaln(rr + xs) - pt.gammaln(rr) + rr * pt.log(al) + _betaln(aa, bb + xs) - _betaln(aa, bb))
        term1 = -(rr + xs) * pt.log(al + Ts)
        if mask is pos:
            term2 = pt.log(aa) - pt.log(bb + xs - 1) - (rr + xs) * pt.log(al + txs)
            out.append((idx, shared + pt.logaddexp(term1, term2)))
        else:
            out.append((idx, shared + term1))
    ll = pt.zeros(len(x))
    for idx, part in out:
        ll = pt.set_subtensor(ll[idx], part)
    return ll


def gamma_gamma_loglik(p, q, gamma, x: np.ndarray, zbar: np.ndarray):
    """Per-row Gamma-Gamma log-density of the mean spend (customers with x > 0 only)."""
    x = np.asarray(x, dtype=np.float64)
    zbar = np.asarray(zbar, dtype=np.float64)
    px = p * x
    return (pt.gammaln(px + q) - pt.gammaln(px) - pt.gammaln(q) + q * pt.log(gamma) + (px - 1) * np.log(zbar)
            + px * np.log(x) - (px + q) * pt.log(gamma + x * zbar))
