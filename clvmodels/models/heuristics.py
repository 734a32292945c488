"""The simple CLV formulas businesses use, as forecasters with the same interface as the models.

Every heuristic is estimated from a calibration summary only (frequency, recency, T, monetary_value;
one time unit) and forecasts, per customer and horizon h, expected repeat purchases and expected spend
(purchases x spend per purchase). How each input is measured:

- purchase frequency ``rate``: repeat purchases per unit of time since the first purchase,
  ``frequency / T`` (0 when T = 0: no history yet);
- average order value ``aov``: the customer's mean repeat purchase value ``monetary_value``; for
  customers without repeat purchases, the mean of ``monetary_value`` over those with repeat purchases;
- retention over a period P (``period``, default a quarter): the share of customers acquired at least P
  before the cut-off who bought within the last P (``T >= P`` and ``T - recency <= P``); churn over P is
  1 - retention, and the churn rate per unit of time is ``-ln(retention) / P``;
- observed lifespan: the mean time from first to last purchase (``recency``) of the customers counted as
  lost (no purchase within the last P, among those acquired at least P before the cut-off); if nobody
  is lost yet, the longest age T.

Customers acquired just before the cut-off with a repeat purchase get a very high ``frequency / T``:
that is the formulas' own behaviour, kept as is (the run-rate is the worst hit).

``per_customer=True`` uses each customer's own rate and AOV; ``per_customer=False`` (the
population-average form) gives every customer the mean rate and mean AOV. Retention, churn and
lifespan are population quantities in both forms.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import DataError
from ..timeunits import Horizon, horizon_label, to_units
from ._base import Estimator, as_float_array, check_rfm, check_summary_unit, fit_time_unit

__all__ = ["RunRate", "AovFrequencyLifespan", "ChurnRateFormula", "RetentionFormula", "HEURISTICS"]


class _Heuristic(Estimator):
    """Shared estimation of rate, AOV, retention and lifespan; subclasses define the horizon curve."""

    name: ClassVar[str] = ""
    #: The name the command line's ``--models`` gives the formula.
    short_name: ClassVar[str] = ""
    needs_retention: ClassVar[bool] = True
    role = "formula"

    def __init__(self, per_customer: bool = True, period: Horizon = "3M") -> None:
        self.per_customer = per_customer
        self.period = period

    @property
    def label(self) -> str:
        return f"{self.name} ({'per customer' if self.per_customer else 'population'})"

    def _columns(self, summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
        x, t_x, T = (as_float_array(summary, c) for c in ("frequency", "recency", "T"))
        check_rfm(x, t_x, T)
        m = as_float_array(summary, "monetary_value") if "monetary_value" in summary.columns else np.zeros_like(x)
        return x, t_x, T, m

    def fit(self, summary: pd.DataFrame, *, time_unit: str | None = None) -> "_Heuristic":
        """Measure the population quantities on the calibration summary (see the module docstring)."""
        unit = fit_time_unit(summary, time_unit)
        if not unit:
            raise ValueError("the summary's time unit is needed (fit(summary, time_unit=...))")
        x, t_x, T, m = self._columns(summary)
        if len(x) == 0:
            raise DataError("the summary is empty")
        self.time_unit_ = unit
        self.period_units_ = to_units(self.period, unit)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(T > 0, x / T, 0.0)
        self.mean_rate_ = float(rate.mean())
        repeat = x > 0
        self.mean_aov_ = float(m[repeat].mean()) if repeat.any() else 0.0
        eligible = T >= self.period_units_
        if not eligible.any():
            if self.needs_retention:
                raise DataError(f"no customer was acquired at least {self.period} before the cut-off: "
                                "retention cannot be measured; use a shorter period")
            eligible = np.ones_like(T, dtype=bool)  # reported only, unused by this formula
        recent = (T - t_x) <= self.period_units_
        self.retention_ = float(recent[eligible].mean())
        lost = eligible & ~recent
        # nobody lost yet: the longest observed life is the best (lower) bound on the lifespan
        self.lifespan_ = float(t_x[lost].mean()) if lost.any() else float(T.max())
        retention = min(max(self.retention_, 1e-12), 1 - 1e-12)
        self.churn_rate_ = float(-np.log(retention) / self.period_units_)
        return self

    def _rate_aov(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x, _, T, m = self._columns(summary)
        if self.per_customer:
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(T > 0, x / T, 0.0)
            aov = np.where(x > 0, m, self.mean_aov_)
        else:
            rate = np.full(len(x), self.mean_rate_)
            aov = np.full(len(x), self.mean_aov_)
        return rate, aov

    def _active_time(self, h: float) -> float:
        """Expected time a customer keeps buying within the next h units (the formula's lifespan part)."""
        raise NotImplementedError

    def expected_purchases(self, summary: pd.DataFrame, t: Horizon) -> pd.Series:
        """Expected repeat purchases in the next ``t``: rate x expected active time within t."""
        self.check_is_fitted()
        h = self._units(t)
        check_summary_unit(summary, self.time_unit_)
        rate, _ = self._rate_aov(summary)
        return pd.Series(rate * self._active_time(h), index=summary.index, name=f"expected_purchases_{self._label(t)}")

    def expected_spend(self, summary: pd.DataFrame) -> pd.Series:
        """Spend per purchase: the AOV as measured (see the module docstring)."""
        self.check_is_fitted()
        return pd.Series(self._rate_aov(summary)[1], index=summary.index, name="expected_spend")

    def params(self) -> dict[str, Any]:
        """The measured inputs, for reports."""
        self.check_is_fitted()
        return {"mean rate per unit": self.mean_rate_, "mean AOV": self.mean_aov_,
                f"retention per {self.period}": self.retention_, "churn rate per unit": self.churn_rate_,
                "observed lifespan (units)": self.lifespan_}


class RunRate(_Heuristic):
    """Run-rate / historical value: past value per unit of time x horizon.

    purchases(h) = rate x h; spend(h) = purchases(h) x AOV. Nobody is assumed ever to stop buying.
    """

    name = "run-rate"
    short_name = "run-rate"
    needs_retention = False

    def _active_time(self, h: float) -> float:
        return h


class AovFrequencyLifespan(_Heuristic):
    """Average order value x purchase frequency x expected lifespan.

    The expected lifespan is the mean observed lifespan (first to last purchase) of customers already
    lost; within a horizon h a customer keeps buying for min(h, lifespan).
    """

    name = "AOV x frequency x lifespan"
    short_name = "aov-frequency-lifespan"

    def _active_time(self, h: float) -> float:
        return min(h, self.lifespan_)


class ChurnRateFormula(_Heuristic):
    """(Average purchase value x purchase frequency) / churn rate.

    The formula's lifetime value, rate x AOV / c, is spread over time with a constant churn hazard c per
    unit: expected active time within h is (1 - exp(-c h)) / c, which tends to the formula's 1 / c.
    """

    name = "value / churn rate"
    short_name = "churn-rate"

    def _active_time(self, h: float) -> float:
        c = self.churn_rate_
        return h if c <= 0 else float(-np.expm1(-c * h) / c)


class RetentionFormula(_Heuristic):
    """Purchase frequency x AOV x retention rate - acquisition cost, period by period.

    Over h, the k-th period of length P counts with weight retention^k (a customer must be retained
    through it): expected active time = P x sum_k retention^k over the whole periods in h, plus the
    fraction of the last one. ``acquisition_cost`` (a number, or a Series by customer_id) is subtracted
    from :meth:`net_value` only; spend forecasts are gross.
    """

    name = "retention formula"
    short_name = "retention"

    def __init__(self, per_customer: bool = True, period: Horizon = "3M", acquisition_cost: Any = 0.0) -> None:
        super().__init__(per_customer=per_customer, period=period)
        self.acquisition_cost = acquisition_cost

    def __repr__(self) -> str:
        return (f"RetentionFormula(per_customer={self.per_customer!r}, period={self.period!r}, "
                f"acquisition_cost={self.acquisition_cost!r})")

    def _active_time(self, h: float) -> float:
        P, k = self.period_units_, self.retention_
        n_full = int(np.floor(h / P))
        frac = h / P - n_full
        weights = k ** np.arange(1, n_full + 1)
        return float(P * (weights.sum() + frac * k ** (n_full + 1)))

    def net_value(self, summary: pd.DataFrame, t: Horizon) -> pd.Series:
        """Expected spend over ``t`` minus the acquisition cost."""
        spend = self.expected_purchases(summary, t) * self.expected_spend(summary)
        cost = self.acquisition_cost
        if isinstance(cost, pd.Series):
            if not summary.index.isin(cost.index).any():
                raise DataError("acquisition_cost is indexed by ids none of which are in the summary "
                                f"(e.g. {list(cost.index[:3])} vs {list(summary.index[:3])})")
            cost = cost.reindex(summary.index).fillna(0.0).to_numpy()
        return (spend - cost).rename(f"net_value_{horizon_label(t, self.time_unit_)}")


#: Every heuristic, in both forms, as used by default in backtests.
HEURISTICS = (RunRate, AovFrequencyLifespan, ChurnRateFormula, RetentionFormula)

