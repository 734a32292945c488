"""Customer value: expected purchases x expected spend, discounted, per horizon.

For a customer with purchase model forecasts E[Y(s)] (cumulative expected purchases s units ahead) and
expected spend per purchase m, the discounted expected value over a horizon H is

    value(H) = m * integral_0^H exp(-delta s) dE[Y(s)],

with delta the continuously compounded rate per unit equivalent to the annual rate d:
delta = ln(1 + d) x (unit length / 365.25 days) (:func:`clvmodels.timeunits.continuous_discount_rate`;
Fader, Hardie & Lee 2005, JMR, section 4, discount the same way on a weekly grid). Integrating by parts,

    value(H) = m * [exp(-delta H) E[Y(H)] + delta * integral_0^H exp(-delta s) E[Y(s)] ds],

and the last integral, of a smooth function, is taken by Gauss-Legendre quadrature (16 nodes per
horizon by default); the tests hold it to a midpoint sum on a daily grid and to the closed form for a
constant purchase rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .draws import DEFAULT_DRAWS, DRAW_BLOCK, bound_names, check_interval, summarise_draws, thin
from .models._base import check_summary_unit
from .timeunits import Horizon, continuous_discount_rate, horizon_label, to_units

__all__ = ["customer_value"]


def customer_value(
    purchase_model,
    spend_model,
    summary: pd.DataFrame,
    horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
    annual_discount_rate: float = 0.10,
    *,
    nodes: int = 16,
    time_unit: str | None = None,
    interval: float | None = None,
    max_draws: int = DEFAULT_DRAWS,
) -> pd.DataFrame:
    """Per customer and horizon: expected purchases, expected spend and discounted value.

    Parameters
    ----------
    purchase_model
        A fitted purchase model of the contract (:class:`clvmodels.BetaGeo`, :class:`clvmodels.NBD`,
        :class:`clvmodels.BayesBetaGeo`, ...).
    spend_model
        A fitted spend model of the contract (:class:`clvmodels.GammaGamma`, :class:`clvmodels.BayesGammaGamma`).
    summary
        The customer summary both models take (frequency, recency, T, monetary_value).
    horizons
        Durations such as ``"1y"``, ``"18M"``, ``"52W"``.
    annual_discount_rate
        Annual rate d (0.10 = 10%); 0 gives undiscounted value.
    nodes
        Gauss-Legendre nodes per horizon for the discounting integral.
    time_unit
        The summary's unit; default: the purchase model's.
    interval, max_draws
        Every value is the mean over the models' parameter draws (at most ``max_draws``: the estimate of a
        maximum-likelihood fit, the posterior of a Bayesian one), the purchase and spend draws taken in
        pairs; with ``interval`` (a level such as 0.9), each column is followed by its equal-tailed bounds
        (``... lower 90%``, ``... upper 90%``).

    Returns
    -------
    DataFrame
        Indexed like ``summary``: ``p_alive``, ``expected_spend``, and for each horizon h
        ``expected_purchases_h`` and ``value_h`` (discounted expected spend over h); ``.attrs`` holds
        the time unit, the discount rate and the interval.
    """
    if getattr(purchase_model, "role", "") != "purchase":
        raise TypeError(f"customer_value takes a purchase model first (BG/NBD, NBD, ...), not {purchase_model!r}")
    if getattr(spend_model, "role", "") != "spend":
        raise TypeError(f"customer_value takes a spend model second (Gamma-Gamma), not {spend_model!r}: value is "
                        "purchases x spend; without amounts, expected_purchases is the forecast")
    purchase_model.check_is_fitted()
    spend_model.check_is_fitted()
    model_unit = purchase_model.time_unit_
    if time_unit and model_unit and time_unit != model_unit:
        raise ValueError(f"time_unit={time_unit!r} but the purchase model was fitted in {model_unit!r}: its rates "
                         "are per model unit, so horizons must be converted to that unit")
    unit = time_unit or model_unit
    if not unit:
        raise ValueError("customer_value needs the summary's time unit: pass time_unit=...")
    check_summary_unit(summary, unit)
    check_interval(interval)
    if not horizons:
        raise ValueError("give at least one horizon")
    delta = continuous_discount_rate(annual_discount_rate, unit)
    ends = np.array([to_units(h, unit) for h in horizons])
    u, wts = np.polynomial.legendre.leggauss(nodes)
    u, wts = (u + 1) / 2, wts / 2  # on [0, 1]
    # every time at which E[Y(s)] is needed: each horizon and its quadrature nodes
    times = np.concatenate([ends] + [end * u for end in ends])
    labels = [horizon_label(h, unit) for h in horizons]
    columns = ["p_alive", "expected_spend"] + [f"{kind}_{label}" for label in labels
                                               for kind in ("expected_purchases", "value")]
    pdata, sdata = purchase_model.prediction_arrays(summary), spend_model.prediction_arrays(summary)
    p_point, pseg = purchase_model.group_draws(summary, None, max_draws)
    s_point, sseg = spend_model.group_draws(summary, None, max_draws)

    def over_draws(p_draws: np.ndarray, s_draws: np.ndarray, level: float | None) -> dict[str, np.ndarray]:
        if len(p_draws) > 1 and len(s_draws) > 1:  # two samples: paired draw by draw, evenly thinned
            n = min(len(p_draws), len(s_draws))
            p_draws, s_draws = thin(p_draws, n), thin(s_draws, n)
        n_draws = max(len(p_draws), len(s_draws))

        def compute(sl: np.ndarray) -> dict[str, np.ndarray]:
            p_theta = tuple(p_draws[:, pseg[sl], j] for j in range(p_draws.shape[2]))
            s_theta = tuple(s_draws[:, sseg[sl], j] for j in range(s_draws.shape[2]))
            spend = spend_model.expected_spend_kernel(s_theta, *(a[None, sl] for a in sdata), seg=sseg[sl])
            cum = purchase_model.expected_purchases_kernel(p_theta, *(a[None, sl] for a in pdata), times, pseg[sl])
            purchases, value = _discounted(cum, spend, ends, delta, u, wts)
            values = {"p_alive": purchase_model.p_alive_kernel(p_theta, *(a[None, sl] for a in pdata), seg=pseg[sl]),
                      "expected_spend": spend}
            for i, label in enumerate(labels):
                values[f"expected_purchases_{label}"], values[f"value_{label}"] = purchases[..., i], value[..., i]
            return values

        # blocks of alike customers when there are many draws: the kernels share work within them
        order = np.lexsort([*pdata[::-1], pseg]) if n_draws > 1 else np.arange(len(summary))
        block = max(1, DRAW_BLOCK // (n_draws * len(times)))
        return summarise_draws(columns, order, block, compute, level)

    out = pd.DataFrame(index=summary.index)
    if interval is None:
        point = over_draws(p_point, s_point, None)
        for c in columns:
            out[c] = point[c][0]
    else:
        p_spread = purchase_model.group_draws(summary, interval, max_draws)[0]
        s_spread = spend_model.group_draws(summary, interval, max_draws)[0]
        spread = over_draws(p_spread, s_spread, interval)
        # the value is the mean over the point draws: the same pass when they are the bounds' draws too
        same = p_spread is p_point and s_spread is s_point
        point = spread if same else over_draws(p_point, s_point, None)
        for c in columns:
            lower, upper = bound_names(c, interval)
            out[c], out[lower], out[upper] = point[c][0], spread[c][1], spread[c][2]
    out.attrs.update(time_unit=unit, annual_discount_rate=annual_discount_rate, interval=interval)
    return out


def _discounted(cum: np.ndarray, spend: np.ndarray, ends: np.ndarray, delta: float, u: np.ndarray,
                wts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases and discounted value per horizon from E[Y] at each horizon end and its
    Gauss-Legendre nodes (last axis of ``cum``: the ends, then ``len(u)`` nodes per horizon; leading axes
    draws x customers, broadcasting against ``spend``)."""
    nodes = len(u)
    purchases = cum[..., :len(ends)]
    value = np.empty(np.broadcast_shapes(purchases.shape, spend.shape + (1,)))
    for i, end in enumerate(ends):
        at_nodes = cum[..., len(ends) + i * nodes: len(ends) + (i + 1) * nodes]
        integral = end * (at_nodes * (wts * np.exp(-delta * end * u))).sum(axis=-1)
        value[..., i] = spend * (np.exp(-delta * end) * purchases[..., i] + delta * integral)
    return purchases, value
