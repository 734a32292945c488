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

from .draws import DRAW_BLOCK, summarise_draws
from .models._base import check_summary_unit
from .timeunits import Horizon, continuous_discount_rate, horizon_label, to_units

__all__ = ["customer_value"]

_CHUNK = 100_000


def customer_value(
    purchase_model,
    spend_model,
    summary: pd.DataFrame,
    horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
    annual_discount_rate: float = 0.10,
    *,
    nodes: int = 16,
    time_unit: str | None = None,
    interval: float = 0.9,
    max_draws: int = 200,
) -> pd.DataFrame:
    """Per customer and horizon: expected purchases, expected spend and discounted value.

    Parameters
    ----------
    purchase_model
        A fitted purchase model with ``expected_purchases(summary, t)`` and ``p_alive(summary)``
        (e.g. :class:`clvmodels.BetaGeo`).
    spend_model
        A fitted spend model with ``expected_spend(summary)`` (e.g. :class:`clvmodels.GammaGamma`).
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
        For a Bayesian purchase model (:class:`clvmodels.BayesBetaGeo`): the credible interval of every
        column, computed over up to ``max_draws`` posterior draws (paired with the spend model's draws
        when it is Bayesian too; a maximum-likelihood spend model contributes its point estimate).

    Returns
    -------
    DataFrame
        Indexed like ``summary``: ``p_alive``, ``expected_spend``, and for each horizon h
        ``expected_purchases_h`` and ``value_h`` (discounted expected spend over h); for a Bayesian
        model these are posterior means, each followed by ``lower 90%`` and ``upper 90%`` columns.
    """
    model_unit = getattr(purchase_model, "time_unit_", None)
    if time_unit and model_unit and time_unit != model_unit:
        raise ValueError(f"time_unit={time_unit!r} but the purchase model was fitted in {model_unit!r}: its rates "
                         "are per model unit, so horizons must be converted to that unit")
    unit = time_unit or model_unit
    if not unit:
        raise ValueError("customer_value needs the summary's time unit: pass time_unit=...")
    check_summary_unit(summary, unit)
    if not horizons:
        raise ValueError("give at least one horizon")
    delta = continuous_discount_rate(annual_discount_rate, unit)
    ends = np.array([to_units(h, unit) for h in horizons])
    u, wts = np.polynomial.legendre.leggauss(nodes)
    u, wts = (u + 1) / 2, wts / 2  # on [0, 1]
    # every time at which E[Y(s)] is needed: each horizon and its quadrature nodes
    times = np.concatenate([ends] + [end * u for end in ends])

    if hasattr(purchase_model, "idata_"):  # a Bayesian model: value over posterior draws
        out = _bayes_value(purchase_model, spend_model, summary, horizons, unit, ends, times, delta, u, wts,
                           interval, max_draws)
        out.attrs.update(time_unit=unit, annual_discount_rate=annual_discount_rate, interval=interval)
        return out
    spend = spend_model.expected_spend(summary).to_numpy()
    out = pd.DataFrame(index=summary.index)
    out["p_alive"] = purchase_model.p_alive(summary).to_numpy()
    out["expected_spend"] = spend
    cum = np.empty((len(summary), len(times)))
    for start in range(0, len(summary), _CHUNK):
        part = summary.iloc[start:start + _CHUNK]
        for j, s in enumerate(times):
            cum[start:start + len(part), j] = purchase_model.expected_purchases(part, float(s)).to_numpy()
    purchases, value = _discounted(cum, spend, ends, delta, u, wts)
    for i, h in enumerate(horizons):
        label = horizon_label(h, unit)
        out[f"expected_purchases_{label}"] = purchases[:, i]
        out[f"value_{label}"] = value[:, i]
    out.attrs.update(time_unit=unit, annual_discount_rate=annual_discount_rate)
    return out


def _discounted(cum: np.ndarray, spend: np.ndarray, ends: np.ndarray, delta: float, u: np.ndarray,
                wts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases and discounted value per horizon from E[Y] at each horizon end and its
    Gauss-Legendre nodes (last axis of ``cum``: the ends, then ``len(u)`` nodes per horizon; leading axes
    customers, or draws x customers, matching ``spend``)."""
    nodes = len(u)
    purchases = cum[..., :len(ends)]
    value = np.empty_like(purchases)
    for i, end in enumerate(ends):
        at_nodes = cum[..., len(ends) + i * nodes: len(ends) + (i + 1) * nodes]
        integral = end * (at_nodes * (wts * np.exp(-delta * end * u))).sum(axis=-1)
        value[..., i] = spend * (np.exp(-delta * end) * purchases[..., i] + delta * integral)
    return purchases, value


def _bayes_value(bg, spend_model, summary, horizons, unit, ends, times, delta, u, wts, interval, max_draws):
    """Posterior mean and interval of every customer_value column: draws x customers evaluated at once,
    streamed over blocks of customers so that memory does not grow with the number of customers."""
    from .models.bgnbd import expected_over_draws, p_alive
    from .models.gamma_gamma import conditional_expected_spend

    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    seg = bg._segment_index(summary)
    draws = bg._draws(max_draws)
    bayes_spend = hasattr(spend_model, "idata_")
    if bayes_spend:
        s_draws, s_seg = spend_model._draws(max_draws), spend_model._segment_index(summary)
        m = summary["monetary_value"].to_numpy(float)
        n_draws = min(len(draws), len(s_draws))
        draws, s_draws = draws[:n_draws], s_draws[:n_draws]
    else:
        fixed = spend_model.expected_spend(summary).to_numpy()
    columns = ["p_alive", "expected_spend"] + [f"{kind}_{horizon_label(h, unit)}" for h in horizons
                                               for kind in ("expected_purchases", "value")]

    def compute(sl: np.ndarray) -> dict[str, np.ndarray]:
        th = tuple(draws[:, seg[sl], j] for j in range(draws.shape[2]))
        xs, txs, Ts = x[None, sl], t_x[None, sl], T[None, sl]
        if bayes_spend:
            spend = conditional_expected_spend(*(s_draws[:, s_seg[sl], j] for j in range(s_draws.shape[2])),
                                               xs, m[None, sl])
        else:
            spend = np.broadcast_to(fixed[None, sl], (len(draws), len(sl)))
        cum = expected_over_draws(th, xs, txs, Ts, times, seg[sl])
        purchases, value = _discounted(cum, spend, ends, delta, u, wts)
        values = {"p_alive": p_alive(*th, xs, txs, Ts), "expected_spend": spend}
        for i, h in enumerate(horizons):
            label = horizon_label(h, unit)
            values[f"expected_purchases_{label}"], values[f"value_{label}"] = purchases[..., i], value[..., i]
        return values

    block = max(1, DRAW_BLOCK // (len(draws) * len(times)))
    order = np.lexsort((T, x, seg))  # blocks of alike customers: expected_over_draws shares their 2F1
    stats = summarise_draws(columns, order, block, compute, interval)
    pct = f"{interval:.0%}"
    out = pd.DataFrame(index=summary.index)
    for c in columns:
        out[c], out[f"{c} lower {pct}"], out[f"{c} upper {pct}"] = stats[c]
    return out
