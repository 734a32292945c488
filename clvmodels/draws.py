"""Summaries of predictions over parameter draws (numpy only): per-customer means and equal-tailed
intervals, streamed over blocks of customers so that memory does not grow with their number."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["DRAW_BLOCK", "draw_quantiles", "summarise_draws"]

#: Draw x customer values held at once while streaming posterior draws over customer blocks.
DRAW_BLOCK = 4_000_000


def draw_quantiles(values: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Quantiles over the first axis (draws), as ``np.quantile``'s default (linear) method, by one sort:
    several times faster than ``np.quantile`` along axis 0 of a draws x customers block."""
    ordered = np.sort(values, axis=0)
    pos = np.asarray(probs, dtype=np.float64) * (len(ordered) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    frac = (pos - lo).reshape((-1,) + (1,) * (ordered.ndim - 1))
    return ordered[lo] + frac * (ordered[hi] - ordered[lo])


def summarise_draws(names: Sequence[str], order: np.ndarray, block: int, compute: Callable,
                    interval: float) -> dict[str, np.ndarray]:
    """Posterior mean and equal-tailed ``interval`` per customer of each (draws x customers) array that
    ``compute(positions)`` returns by name, over blocks of ``block`` customers taken in ``order``: so that
    memory does not grow with the number of customers. Returns name -> (3, customers): mean, lower, upper."""
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1, got {interval!r}")
    tail = (1 - interval) / 2
    stats = {name: np.empty((3, len(order))) for name in names}
    for s in range(0, len(order), block):
        sl = order[s:s + block]
        for name, values in compute(sl).items():
            stats[name][0, sl] = values.mean(axis=0)
            stats[name][1:, sl] = draw_quantiles(values, [tail, 1 - tail])
    return stats
