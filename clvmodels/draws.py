"""Predictions over parameter draws: per-customer values, means and equal-tailed intervals, streamed
over blocks of customers so that memory does not grow with their number (numpy and pandas only).

Every fitted model gives its parameters as draws, an array (draw, segment, parameter): a
maximum-likelihood fit one draw at its estimate (or, for an interval, draws from its asymptotic normal on
the log scale), a Bayesian fit its posterior draws, per segment when hierarchical. A prediction is a
kernel ``kernel(theta, *data, seg=codes)`` evaluated at every draw, ``theta`` holding each parameter as a
(draws, customers) array and the data as (1, customers) arrays; :func:`predict_over_draws` turns it into
the contract's one shape: a Series by customer without an interval, else a DataFrame of the value and its
bounds, columns ``NAME``, ``NAME lower 90%``, ``NAME upper 90%``, the level in ``.attrs["interval"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["DRAW_BLOCK", "DEFAULT_DRAWS", "thin", "level_text", "draw_quantiles", "summarise_draws", "customer_draws",
           "predict_over_draws", "point_theta", "check_interval", "check_max_draws", "bound_names"]

#: How many parameter draws a prediction uses at most, for every model and every prediction.
DEFAULT_DRAWS = 1000

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


def check_interval(interval: float | None, name: str = "interval") -> None:
    """ValueError unless ``interval`` is None or a level strictly between 0 and 1 (``name`` says which)."""
    if interval is not None and not (isinstance(interval, (int, float, np.floating)) and 0 < interval < 1):
        raise ValueError(f"{name} must be between 0 and 1 (e.g. 0.9), got {interval!r}")


def check_max_draws(max_draws: int) -> None:
    """ValueError unless ``max_draws`` is a whole number >= 1."""
    if not isinstance(max_draws, (int, np.integer)) or isinstance(max_draws, bool) or max_draws < 1:
        raise ValueError(f"max_draws must be a whole number >= 1, got {max_draws!r}")


def thin(draws: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws evenly spaced over ``draws`` (first and last included), or all of them when there are
    no more than ``n``."""
    if len(draws) <= n:
        return draws
    return draws[np.linspace(0, len(draws) - 1, n).round().astype(np.int64)]


def level_text(interval: float) -> str:
    """An interval's level as people write it: 0.9 -> "90%", 0.975 -> "97.5%"."""
    return f"{100 * interval:.10g}%"


def bound_names(name: str, interval: float) -> tuple[str, str]:
    """The columns of the lower and upper bounds of ``name`` at level ``interval`` ("p_alive lower 90%")."""
    pct = level_text(interval)
    return f"{name} lower {pct}", f"{name} upper {pct}"


def summarise_draws(names: Sequence[str], order: np.ndarray, block: int, compute: Callable,
                    interval: float | None) -> dict[str, np.ndarray]:
    """Mean over draws and equal-tailed ``interval`` per customer of each (draws x customers) array that
    ``compute(positions)`` returns by name, over blocks of ``block`` customers taken in ``order``: so that
    memory does not grow with the number of customers. Returns name -> (3, customers): mean, lower,
    upper (the bounds NaN without an interval)."""
    check_interval(interval)
    stats = {name: np.full((3, len(order)), np.nan) for name in names}
    for s in range(0, len(order), block):
        sl = order[s:s + block]
        for name, values in compute(sl).items():
            stats[name][0, sl] = values.mean(axis=0)
            if interval is not None:
                tail = (1 - interval) / 2
                stats[name][1:, sl] = draw_quantiles(values, [tail, 1 - tail])
    return stats


def customer_draws(draws: np.ndarray, seg: np.ndarray, arrays: Sequence[np.ndarray], fn: Callable,
                   interval: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over ``draws`` (draw, segment, parameter) and equal-tailed ``interval`` of
    ``fn(theta, *arrays, seg=codes)`` per customer.

    Customers are taken in order of (segment, data...), so a block holds runs of identical inputs that
    ``fn`` may evaluate once (see :func:`clvmodels.models.bgnbd.expected_over_draws`).
    """
    chunk = max(1, DRAW_BLOCK // len(draws))
    order = np.lexsort([*list(arrays)[::-1], seg])

    def compute(sl: np.ndarray) -> dict[str, np.ndarray]:
        return {"value": fn(tuple(draws[:, seg[sl], j] for j in range(draws.shape[2])),
                            *(a[None, sl] for a in arrays), seg=seg[sl])}

    mean, lower, upper = summarise_draws(["value"], order, chunk, compute, interval)["value"]
    return mean, lower, upper


def point_theta(draws: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, ...]:
    """The parameters of a single draw as (1, customers) arrays, or (1, 1) when there is one segment."""
    if draws.shape[1] == 1:
        return tuple(draws[0, :1, j][None, :] for j in range(draws.shape[2]))
    return tuple(draws[0, seg, j][None, :] for j in range(draws.shape[2]))


def predict_over_draws(name: str, point: np.ndarray, spread: np.ndarray | None, seg: np.ndarray,
                       arrays: Sequence[np.ndarray], kernel: Callable, interval: float | None,
                       index: pd.Index) -> pd.Series | pd.DataFrame:
    """A prediction in the contract's shape (module docstring).

    ``point`` are the draws the value is the mean over (one draw: a maximum-likelihood estimate; the
    posterior: its mean); ``spread`` the draws the interval's bounds come from (the same array, or draws
    of the estimate's sampling distribution), used only with an ``interval``.
    """
    check_interval(interval)
    if len(point) == 1:
        value = kernel(point_theta(point, seg), *(a[None, :] for a in arrays), seg=seg)[0]
        bounds = (customer_draws(spread, seg, arrays, kernel, interval)[1:] if interval is not None else None)
    else:
        mean, lower, upper = customer_draws(point, seg, arrays, kernel, interval if spread is point else None)
        value = mean
        if interval is not None:
            bounds = (lower, upper) if spread is point else customer_draws(spread, seg, arrays, kernel, interval)[1:]
    value = np.broadcast_to(value, (len(index),))
    if interval is None:
        return pd.Series(value, index=index, name=name)
    lower_name, upper_name = bound_names(name, interval)
    out = pd.DataFrame({name: value, lower_name: bounds[0], upper_name: bounds[1]}, index=index)
    out.attrs["interval"] = interval
    return out
