"""Predictions over posterior draws, streamed over blocks of customers (numpy only; no PyMC here).

``draws`` are arrays (draw, segment, parameter) and ``seg`` each customer's segment position. Blocks hold
at most :data:`clvmodels.draws.DRAW_BLOCK` draw x customer values, so memory does not grow with the number
of customers (1M customers x 4,000 draws score in about 1.3 GB: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..models.bgnbd import p_alive, pmf_new
from ..draws import DRAW_BLOCK, summarise_draws

__all__ = ["customer_draws", "predictive_cdf"]


def customer_draws(draws: np.ndarray, seg: np.ndarray, arrays: Sequence[np.ndarray], fn: Callable,
                   interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and equal-tailed ``interval`` of ``fn(params, *arrays, seg=codes)`` per customer.

    ``fn`` receives each parameter as a (draws, customers) array, the data as (1, customers) arrays and
    the block's segment codes. Customers are taken in order of (segment, data...), so a block holds runs
    of identical inputs that ``fn`` may evaluate once (see :func:`clvmodels.models.bgnbd.expected_over_draws`).
    """
    chunk = max(1, DRAW_BLOCK // len(draws))
    order = np.lexsort([*list(arrays)[::-1], seg])

    def compute(sl: np.ndarray) -> dict[str, np.ndarray]:
        return {"value": fn(tuple(draws[:, seg[sl], j] for j in range(draws.shape[2])),
                            *(a[None, sl] for a in arrays), seg=seg[sl])}

    mean, lower, upper = summarise_draws(["value"], order, chunk, compute, interval)["value"]
    return mean, lower, upper


def predictive_cdf(draws: np.ndarray, seg: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, t: float,
                   cap: int) -> np.ndarray:
    """Posterior-predictive P(Y(t) <= n | history), n = 0..cap, one row per customer.

    P(Y(t) = n | x, t_x, T) = P(alive) P_new(n; r+x, alpha+T, a, b+x) + [n = 0] (1 - P(alive))
    (:func:`clvmodels.models.bgnbd.conditional_pmf`), averaged over the BG/NBD draws (r, alpha, a, b). The
    second factor depends on (segment, x, T) only and is evaluated once per distinct triple.
    """
    (gseg, gx, gT), ginv = np.unique(np.stack([seg, x, T]), axis=1, return_inverse=True)
    gseg, ginv = gseg.astype(np.int64), ginv.ravel()
    pmf = np.zeros((len(x), cap + 1))
    for theta in draws:
        r, alpha, a, b = (theta[gseg, j] for j in range(4))
        p_new = pmf_new(r + gx, alpha + gT, a, b + gx, t, cap)
        pa = p_alive(*(theta[seg, j] for j in range(4)), x, t_x, T)
        pmf += pa[:, None] * p_new[ginv]
        pmf[:, 0] += 1.0 - pa
    return np.cumsum(pmf / len(draws), axis=1)
