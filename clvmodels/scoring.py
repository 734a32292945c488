"""Per-customer predictions from fitted models, as ``clvmodels predict`` writes them.

One function for every way of scoring (the command line, :mod:`clvmodels.spark`'s partitions): what is
predicted follows from the models given. It imports no modelling code of its own; the numbers come from
the models' methods and :func:`clvmodels.customer_value`.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from .draws import DEFAULT_DRAWS
from .timeunits import Horizon
from .value import customer_value

__all__ = ["score_customers"]


def score_customers(summary: pd.DataFrame, purchase_model=None, spend_model=None,
                    horizons: Sequence[Horizon] = ("1y", "2y", "3y"), annual_discount_rate: float = 0.10,
                    interval: float | None = None, max_draws: int = DEFAULT_DRAWS) -> pd.DataFrame:
    """Score every customer of ``summary``.

    - purchase and spend model: :func:`clvmodels.customer_value` (P(alive), expected spend, and per
      horizon expected purchases and discounted value);
    - purchase model only: ``p_alive`` and ``expected_purchases_<h>`` per horizon;
    - spend model only: ``expected_spend``.

    With ``interval`` (a level such as 0.9) every value is followed by its bounds, for every model
    (:mod:`clvmodels.draws`), over at most ``max_draws`` parameter draws.
    """
    if purchase_model is None and spend_model is None:
        raise ValueError("give a purchase model, a spend model or both")
    if purchase_model is None:
        return _frame(spend_model.expected_spend(summary, interval=interval, max_draws=max_draws))
    if spend_model is not None:
        return customer_value(purchase_model, spend_model, summary, horizons, annual_discount_rate,
                              interval=interval, max_draws=max_draws)
    parts = [purchase_model.p_alive(summary, interval=interval, max_draws=max_draws)]
    parts += [purchase_model.expected_purchases(summary, h, interval=interval, max_draws=max_draws) for h in horizons]
    return pd.concat([_frame(p) for p in parts], axis=1)


def _frame(prediction: pd.Series | pd.DataFrame) -> pd.DataFrame:
    return prediction.to_frame() if isinstance(prediction, pd.Series) else prediction
