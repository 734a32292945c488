"""The whole job on one transaction log: what ``clvmodels report`` and ``clvmodels demo`` run.

:func:`run_job` summarises the log per customer (with each customer's acquisition month, ``cohort``, and
the log's attributes), chooses the purchase and spend models by validation (:func:`clvmodels.select_model`),
backtests them with every other model and business formula at a cut-off before the log's end, values
every customer with the chosen models (the value table, with intervals) and lists the customers at risk.
The log's attributes are offered to the models as covariates: each model's covariate variant competes
with it, and validation keeps it only where it forecasts better. :meth:`JobResult.report` assembles the report, which opens with the choice and the customers' totals. A
log without amounts gets the purchase forecasts alone: its table and at-risk list rank expected purchases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .backtest import AutoCandidate, BacktestResult, backtest, default_candidates
from .data.rfm import acquisition_cohorts, purchase_history, rfm_summary
from .data.transactions import TransactionLog, to_date
from .draws import DEFAULT_DRAWS
from .errors import DataError, DataWarning
from .report import Report, build_report
from .segments import at_risk
from .selection import SelectedModel, select_model
from .timeunits import Horizon, horizon_days, horizon_label, horizon_words
from .value_table import value_table

__all__ = ["JobResult", "run_job", "job_summary", "backtest_plan", "BACKTEST_HORIZONS"]

#: Backtest horizons the job tries, longest first: it takes the longest with at least as much history
#: before its cut-off as after it.
BACKTEST_HORIZONS = ("52W", "39W", "26W", "13W")


@dataclass
class JobResult:
    """What :func:`run_job` computed: the log, its summary (with ``cohort`` and the log's attributes), the
    choice, the backtest (None where the log is too short for one), the value table and at-risk list (without
    amounts, of purchases: :func:`clvmodels.value_table.value_table`), and the settings the report states."""

    log: TransactionLog
    summary: pd.DataFrame
    selection: SelectedModel
    backtest: BacktestResult | None
    value_table: pd.DataFrame
    at_risk: pd.DataFrame
    annual_discount_rate: float
    segment_columns: tuple[str, ...] = field(default=())
    horizons: tuple[Horizon, ...] = ("1y", "2y", "3y")

    def report(self, *, title: str | None = None, models: dict[str, Any] | None = None,
               shrinkage: dict[str, pd.DataFrame] | None = None, currency: str | None = None,
               show_ids: bool = False) -> Report:
        """The report: the choice and the totals first, then the backtest, the chosen models (and
        ``models``, e.g. a Bayesian hierarchy, with their ``shrinkage`` tables), the top customers and the
        value by segment, lifecycle stage, cohort and the log's attributes; amounts in ``currency``; customer
        ids pseudonymised unless ``show_ids``."""
        purchase, spend = self.selection.purchase_model_, self.selection.spend_model_
        shown = {f"{m.label} (chosen)": m for m in (purchase, spend) if m is not None}
        return build_report(self.summary, backtest=self.backtest, log=self.log, value_table=self.value_table,
                            selection=self.selection, horizons=self.horizons,
                            annual_discount_rate=self.annual_discount_rate,
                            models={**shown, **(models or {})}, shrinkage=shrinkage,
                            segment_columns=self.segment_columns, at_risk=self.at_risk, currency=currency,
                            show_ids=show_ids,
                            **({"title": title} if title else {}))


def _by_customer(scores: pd.Series, customers: pd.Index) -> pd.Series:
    """``scores`` aligned with ``customers``, ids matched as text; DataError for repeated or missing ids."""
    text = scores.index.map(str)
    if text.duplicated().any():
        raise DataError(f"satisfaction scores repeat customer ids (e.g. {list(text[text.duplicated()][:3])})",
                        columns=["satisfaction"])
    aligned = pd.Series(scores.to_numpy(), index=text).reindex(customers.map(str))
    missing = customers[aligned.isna().to_numpy()]
    if len(missing):
        raise DataError(f"no satisfaction score for {len(missing):,} of {len(customers):,} customers (e.g. "
                        f"{list(missing[:3])}): give every customer one", columns=["satisfaction"])
    return pd.Series(aligned.to_numpy(dtype=np.float64), index=customers, name="satisfaction")


def backtest_plan(log: TransactionLog, horizon: Horizon | None = None) -> tuple[Any, str] | None:
    """The backtest's cut-off and horizon: the log's end minus the horizon, the longest of
    :data:`BACKTEST_HORIZONS` (or the one given) with at least as much history before the cut-off as
    after it; None where none has."""
    window = (log.observation_end - log.first_date).days
    for h in ([horizon] if horizon is not None else BACKTEST_HORIZONS):
        days = int(np.ceil(horizon_days(h, "W")))
        if window >= 2 * days:
            return log.observation_end - timedelta(days=days), horizon_label(h, "W")
    return None


def job_summary(log: TransactionLog) -> pd.DataFrame:
    """The summary the job fits: :func:`rfm_summary` in weeks, with the log's attributes and each
    customer's acquisition month (``cohort``)."""
    summary = rfm_summary(log, time_unit="W")
    if "cohort" in summary.columns:
        raise ValueError("the log has an attribute named cohort, the name of the acquisition month's column")
    summary["cohort"] = acquisition_cohorts(log).reindex(summary.index)
    return summary


def run_job(log: TransactionLog, *, horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
            annual_discount_rate: float = 0.10, interval: float = 0.9, max_draws: int = DEFAULT_DRAWS,
            backtest_cutoff: Any = None, backtest_horizons: Sequence[Horizon] | None = None,
            satisfaction: pd.Series | None = None, acquisition_cost: float | None = None,
            alert_after: Horizon | None = None,
            show_progress: bool = True, on_step: Callable[[str], None] | None = None) -> JobResult:
    """Run the whole job on ``log`` (module docstring).

    Parameters
    ----------
    log
        The transaction log. Its attributes (``read_transactions(..., attributes={"channel": "mode"})``)
        are carried into the summary and the value table, and the report splits the value by them.
    horizons, annual_discount_rate, interval, max_draws
        The value table's horizons, discounting, interval level and draws (of the estimates' sampling
        distribution) behind the intervals.
    backtest_cutoff, backtest_horizons
        The backtest's cut-off and horizons (default: :func:`backtest_plan`).
    satisfaction
        A satisfaction score per customer (indexed by customer id; ids are matched as text, so "42" finds
        customer 42): the value table gets the value x satisfaction quadrant. Every customer needs a score.
    acquisition_cost
        Cost of acquiring a customer: the value table gets value net of it per horizon.
    alert_after
        The at-risk list also takes valuable customers without a purchase for longer than this (e.g.
        ``"180D"``), besides those whose P(alive) has fallen.
    show_progress
        Progress bars of the selection and the backtest.
    on_step
        Called with a short description before each step.
    """
    step = on_step or (lambda text: None)
    step("summarising the log")
    summary = job_summary(log)
    segments = ("cohort", *log.attributes)
    scores = None if satisfaction is None else _by_customer(satisfaction, summary.index)  # (refused before the work)
    step("choosing the models by validation")
    covariates = list(log.attributes) or None  # (their covariate variants compete; validation decides)
    selection = select_model(log, time_unit="W", covariates=covariates, show_progress=show_progress)
    purchase, spend = selection.purchase_model_, selection.spend_model_
    if backtest_cutoff is not None:
        plan = (to_date(backtest_cutoff, "backtest_cutoff"), list(backtest_horizons or BACKTEST_HORIZONS[-1:]))
    else:
        found = backtest_plan(log, backtest_horizons[0] if backtest_horizons else None)
        plan = None if found is None else (found[0], [found[1]])
    result = None
    if plan is not None:
        step(f"backtesting the models and the formulas from {plan[0]} over "
             f"{', '.join(horizon_words(h, 'W') for h in plan[1])}")
        with warnings.catch_warnings():  # (a log without amounts: the report says that purchases alone were scored)
            warnings.filterwarnings("ignore", "the log has no amounts: the backtest scores purchases only", DataWarning)
            candidates = default_candidates(spend=log.has_amount) + [AutoCandidate(covariates=covariates)]
            result = backtest(log, plan[0], plan[1], candidates,
                              time_unit="W", interval=interval, show_progress=show_progress)
    step("valuing every customer" if spend is not None else "forecasting every customer's purchases")
    table = value_table(purchase, spend, summary, horizons, annual_discount_rate, interval=interval,
                        max_draws=max_draws, history=purchase_history(log), segment_columns=segments,
                        satisfaction=scores, acquisition_cost=acquisition_cost, silent_for=alert_after)
    risk = at_risk(table.drop(columns=["at_risk", "at_risk_reason"]), value=table.attrs["ranked_by"],
                   silent_for=alert_after, time_unit=purchase.time_unit_)
    return JobResult(log, summary, selection, result, table, risk, annual_discount_rate, segments, tuple(horizons))
