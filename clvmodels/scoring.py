"""Per-customer predictions from fitted models, as ``clvmodels predict`` writes them.

One function for every way of scoring (the command line, :mod:`clvmodels.spark`'s partitions): what is
predicted follows from the models given. It imports no modelling code of its own; the numbers come from
the models' methods and :func:`clvmodels.customer_value`.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .models._base import check_summary_unit
from .timeunits import Horizon
from .value import customer_value

__all__ = ["score_customers"]


def score_customers(summary: pd.DataFrame, purchase_model=None, spend_model=None,
                    horizons: Sequence[Horizon] = ("1y", "2y", "3y"), annual_discount_rate: float = 0.10,
                    interval: float = 0.9) -> pd.DataFrame:
    """Score every customer of ``summary``.

    - purchase and spend model: :func:`clvmodels.customer_value` (P(alive), expected spend, and per
      horizon expected purchases and discounted value);
    - purchase model only: ``p_alive`` and ``expected_purchases_<h>`` per horizon;
    - spend model only: ``expected_spend``.

    Bayesian models add ``lower``/``upper`` columns of the ``interval`` credible interval to every value.
    """
    if purchase_model is None and spend_model is None:
        raise ValueError("give a purchase model, a spend model or both")
    if purchase_model is not None:
        check_summary_unit(summary, getattr(purchase_model, "time_unit_", None))
    if purchase_model is None:
        if hasattr(spend_model, "idata_"):
            return spend_model.expected_spend(summary, interval=interval)
        return spend_model.expected_spend(summary).to_frame()
    if spend_model is not None:
        return customer_value(purchase_model, spend_model, summary, horizons, annual_discount_rate,
                              interval=interval)
    bayes = hasattr(purchase_model, "idata_")
    parts = [purchase_model.p_alive(summary, interval=interval) if bayes else purchase_model.p_alive(summary)]
    for h in horizons:
        parts.append(purchase_model.expected_purchases(summary, h, interval=interval) if bayes
                     else purchase_model.expected_purchases(summary, h))
    return pd.concat(parts, axis=1)
