"""The customer value table: one row per customer, everything a business asks of it, ready to export.

Columns: the summary's RFM (frequency, recency, T, monetary_value); from :func:`clvmodels.customer_value`
P(alive), expected spend, and for each horizon expected purchases and discounted value (with ``interval=``,
each followed by its bounds, ``... lower 90%`` and ``... upper 90%``); then from :mod:`clvmodels.segments` the value tier
(on the first horizon's value), the lifecycle stage, the R/F/M scores and named RFM segment, the
value x satisfaction quadrant when satisfaction is given, and value net of acquisition cost when a cost
is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .draws import DEFAULT_DRAWS
from .files import write_table
from .segments import lifecycle_stages, net_value, rfm_scores, value_satisfaction_quadrants, value_tiers
from .timeunits import Horizon, horizon_label
from .value import customer_value

__all__ = ["value_table", "write_value_table"]


def value_table(purchase_model, spend_model, summary: pd.DataFrame, horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
                annual_discount_rate: float = 0.10, *, satisfaction=None, acquisition_cost=None,
                interval: float | None = None, time_unit: str | None = None, max_draws: int = DEFAULT_DRAWS) -> pd.DataFrame:
    """Build the customer value table (see the module docstring), indexed like ``summary``.

    Parameters
    ----------
    purchase_model, spend_model
        Fitted models (maximum-likelihood or Bayesian), as for :func:`clvmodels.customer_value`.
    summary
        Customer summary with frequency, recency, T and monetary_value.
    horizons, annual_discount_rate, interval, time_unit, max_draws
        Passed to :func:`clvmodels.customer_value`.
    satisfaction
        Optional satisfaction score per customer (Series aligned by index): adds ``quadrant``.
    acquisition_cost
        Optional cost, one number or one per customer: adds ``net_value_<h>`` for each horizon.
    """
    unit = time_unit or getattr(purchase_model, "time_unit_", None) or summary.attrs.get("time_unit")
    values = customer_value(purchase_model, spend_model, summary, horizons, annual_discount_rate,
                            time_unit=unit, interval=interval, max_draws=max_draws)
    labels = [horizon_label(h, unit) for h in horizons]
    rfm_cols = [c for c in ("frequency", "recency", "T", "monetary_value") if c in summary.columns]
    table = pd.concat([summary[rfm_cols], values], axis=1)
    table["value_tier"] = value_tiers(table[f"value_{labels[0]}"])
    table["lifecycle_stage"] = lifecycle_stages(summary, table["p_alive"], time_unit=unit)
    table = pd.concat([table, rfm_scores(summary)], axis=1)
    if satisfaction is not None:
        table["quadrant"] = value_satisfaction_quadrants(table[f"value_{labels[0]}"], satisfaction)
    if acquisition_cost is not None:
        for lab in labels:
            table[f"net_value_{lab}"] = net_value(table[f"value_{lab}"], acquisition_cost).to_numpy()
    table.attrs.update(values.attrs)
    return table


def write_value_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the table as CSV, Parquet or Excel (.xlsx, needs openpyxl), by extension, atomically."""
    return write_table(table, path)
