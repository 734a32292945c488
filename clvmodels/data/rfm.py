"""Per-customer summaries of a transaction log: recency, frequency, monetary value, age.

Definitions (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", section 2; and
"RFM and CLV", JMR 2005, section 3), counted on purchase days (same-day transactions merged):

- ``frequency`` x: the number of *repeat* purchase days up to the observation end (the first excluded);
- ``recency`` t_x: time from the first purchase to the last one (0 when x = 0);
- ``T``: time from the first purchase to the observation end;
- ``monetary_value`` zbar: the mean value of the repeat purchases, the first excluded; 0 when x = 0;
- ``litt``: the sum of the logarithms of the x inter-purchase times (in the unit), 0 when x = 0: the
  statistic the Erlang-k timing density of the (M)BG/CNBD-k models needs (Reutterer, Platzer & Schröder
  2021, IJRM 38(1)); purchase days are at least one day apart, so every term is finite.

Times are whole days between calendar dates divided by the unit's length (D = 1, W = 7, M = 365.25/12).
Checked against the papers' CDNOW summary (cdnow_customers_summary_with_transactions.csv): for
customer 1, first purchase 1997-01-01, last repeat 1997-08-02, end 1997-09-30: t_x = 213/7 = 30.43 and
T = 272/7 = 38.86 weeks, so the end date itself is inside the period and days are not counted inclusively.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, warn
from ..timeunits import check_unit, unit_days
from .columns import HOLDOUT_COLUMNS, RFM_COLUMNS
from .transactions import TransactionLog, read_transactions, to_date

__all__ = ["rfm_summary", "calibration_holdout", "acquisition_cohorts", "purchase_history", "summary_sql", "split_dates", "as_log",
           "summary_end", "RFM_COLUMNS", "HOLDOUT_COLUMNS"]



def as_log(transactions: Any, customer: str, date: str, amount: str | None, read_options: dict) -> TransactionLog:
    """``transactions`` as a :class:`TransactionLog` (read with the column names and options unless it is
    one); for a DataFrame without an ``amount`` column, the default amount name means no amounts."""
    if isinstance(transactions, TransactionLog):
        return transactions
    if amount == "amount" and isinstance(transactions, pd.DataFrame) and "amount" not in transactions.columns:
        amount = None  # the default name, absent: a log without monetary values
    return read_transactions(transactions, customer=customer, date=date, amount=amount, **read_options)


def _duckdb_day_diff(start: str, end: str) -> str:
    return f"date_diff('day', {start}, {end})"


def summary_sql(has_amount: bool, holdout: bool, unit: str, *, table: str = "{daily}", cal_end: str = "$cal_end",
                hold_end: str = "$hold_end", day_diff=_duckdb_day_diff, order: bool = True) -> str:
    """The summary of the purchase days (columns customer_id, date, amount, _previous), grouped by
    customer, in SQL that DuckDB and Spark SQL both run: each passes its table, its date literals or
    parameters, and its day-difference function. Returns the final columns (:data:`RFM_COLUMNS`, then the
    holdout counts and spend) in ``unit``. ``_previous`` is each day's previous purchase day (NULL on the
    customer's first), so that ``litt`` sums the logs of the gaps with no window, and the repeat days are
    the days that have one.

    The repeat spend sums the repeat days alone, so a large first purchase cannot swallow the repeat
    amounts as it would in "total minus first"; with a single repeat day it is that day's amount, exactly.
    """
    days = repr(float(unit_days(unit)))
    cal = f"date <= {cal_end}"

    def of_calibration(*conditions: str) -> str:
        """The FILTER of an aggregate over the calibration days (every day selected, without a holdout)."""
        wanted = [cal] * holdout + list(conditions)
        return f" FILTER (WHERE {' AND '.join(wanted)})" if wanted else ""

    n_cal = f"count(*){of_calibration()}"
    repeat = of_calibration("_previous IS NOT NULL")
    cols = [
        f"{n_cal} - 1 AS frequency",
        f"CAST({day_diff('min(date)', f'max(date){of_calibration()}')} AS DOUBLE) / {days} AS recency",
        f"CAST({day_diff('min(date)', cal_end)} AS DOUBLE) / {days} AS T",
        f"coalesce(sum(ln(CAST({day_diff('_previous', 'date')} AS DOUBLE) / {days})){repeat}, 0.0) AS litt",
    ]
    if has_amount:
        spend = f"sum(amount){repeat}"
        cols.append(f"CASE WHEN {n_cal} > 1 THEN {spend} / ({n_cal} - 1) ELSE 0.0 END AS monetary_value")
    where = cal
    if holdout:
        n_hold = f"count(*) FILTER (WHERE NOT {cal})"
        cols.append(f"{n_hold} AS holdout_frequency")
        if has_amount:
            hold_spend = f"coalesce(sum(amount) FILTER (WHERE NOT {cal}), 0.0)"
            cols.append(f"CASE WHEN {n_hold} > 0 THEN {hold_spend} / {n_hold} ELSE 0.0 END AS holdout_monetary_value")
            cols.append(f"{hold_spend} AS holdout_spend")
        where = f"date <= {hold_end}"
    return (f"SELECT customer_id, {', '.join(cols)} FROM {table} WHERE {where} "
            f"GROUP BY customer_id HAVING min(date) <= {cal_end}" + (" ORDER BY customer_id" if order else ""))


def summary_end(observation_end: Any, first_date, last_date, declared_end=None):
    """The date a summary is taken at, checked against the log (see :func:`rfm_summary`): ``observation_end``
    or, by default, the log's end (``declared_end`` when the log declared one, else its last purchase day)."""
    if observation_end is None:
        return declared_end or last_date
    end = to_date(observation_end, "observation_end")
    if end < first_date:
        raise DataError(f"observation_end {end} is before the first purchase in the log ({first_date})")
    if declared_end is not None and end > declared_end:
        raise DataError(f"observation_end {end} is after the end declared for the log ({declared_end}); "
                        "the data do not cover the days between")
    if declared_end is None and end > last_date:
        gap = (end - last_date).days
        warn(f"observation_end {end} is {gap:,} day{'s' if gap > 1 else ''} after the last purchase in the log "
             f"({last_date}): every customer's T counts those days as days without a purchase, which changes "
             f"the fit if purchases were missed. If the log is complete up to {end}, declare it: "
             f"read_transactions(..., observation_end='{end}'); else take an observation_end within the log")
    return end


def _finish(df: pd.DataFrame, log: TransactionLog, end) -> pd.DataFrame:
    """The summary indexed by customer, counts as integers, and the log's attributes as of ``end``."""
    out = df.set_index("customer_id")
    out["frequency"] = out["frequency"].to_numpy(dtype=np.int64)
    if "holdout_frequency" in out:
        out["holdout_frequency"] = out["holdout_frequency"].to_numpy(dtype=np.int64)
    if log.attributes:
        out = out.join(log.attribute_values(end), how="left")
    return out


def rfm_summary(
    transactions: TransactionLog | pd.DataFrame | str | os.PathLike,
    observation_end: Any = None,
    time_unit: str = "W",
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    **read_options: Any,
) -> pd.DataFrame:
    """Summarise a transaction log per customer as of ``observation_end``.

    Parameters
    ----------
    transactions
        A :class:`TransactionLog`, or anything :func:`read_transactions` reads (DataFrame, CSV, Parquet).
    observation_end
        The date the summary is taken at (inclusive). Transactions after it are not counted: this is the
        calibration cut-off. Default: the log's observation end (its last purchase day unless declared).
        A date after the last purchase stretches every customer's ``T`` over days the log may not cover:
        it warns (:class:`DataWarning`) unless the log declared its end
        (``read_transactions(observation_end=...)``), and a date after a declared end is a DataError.
    time_unit
        ``"D"``, ``"W"`` (default, as in the papers) or ``"M"``.
    customer, date, amount, **read_options
        Passed to :func:`read_transactions` when ``transactions`` is not already a log. For a DataFrame
        without an ``amount`` column the default amount name is ignored.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), columns ``frequency`` (int), ``recency``, ``T``, ``litt`` and,
        when the log has amounts, ``monetary_value``; then the log's attributes, each customer's value
        picked from the transactions up to ``observation_end`` (``read_transactions(attributes=...)``). Customers whose first purchase is after ``observation_end``
        are not in it. ``attrs`` records the time unit, observation end and number of purchases used.
    """
    unit = check_unit(time_unit)
    log = as_log(transactions, customer, date, amount, read_options)
    end = summary_end(observation_end, log.first_date, log.last_date, log.declared_end)
    out = _finish(log.query(summary_sql(log.has_amount, False, unit), {"cal_end": end}), log, end)
    out.attrs.update(time_unit=unit, observation_end=end.isoformat(),
                     n_purchases=int(out["frequency"].sum() + len(out)))
    return out


def split_dates(calibration_end: Any, holdout_end: Any, first_date, observation_end) -> tuple:
    """The calibration and holdout ends as dates (the holdout to the end of the log by default), checked
    against the log's first purchase day and observation end (see :func:`calibration_holdout`)."""
    cal_end = to_date(calibration_end, "calibration_end")
    hold_end = to_date(holdout_end, "holdout_end") if holdout_end is not None else observation_end
    if hold_end <= cal_end:
        if holdout_end is None:
            raise DataError(f"calibration_end {cal_end} leaves no holdout: the log ends on {observation_end}; "
                            "cut earlier")
        raise DataError(f"holdout_end {hold_end} must be after calibration_end {cal_end}")
    if hold_end > observation_end:
        raise DataError(f"holdout_end {hold_end} is after the end of the log ({observation_end}); "
                        "the holdout would miss purchases the data do not cover: end the holdout at the log's "
                        f"end, or, if the log is complete up to {hold_end}, declare it: "
                        f"read_transactions(..., observation_end='{hold_end}')")
    if cal_end < first_date:
        raise DataError(f"calibration_end {cal_end} is before the first purchase in the log ({first_date})")
    return cal_end, hold_end


def calibration_holdout(
    transactions: TransactionLog | pd.DataFrame | str | os.PathLike,
    calibration_end: Any,
    holdout_end: Any = None,
    time_unit: str = "W",
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    **read_options: Any,
) -> pd.DataFrame:
    """Split a log at ``calibration_end``: the calibration summary plus what each customer did next.

    Customers are those whose first purchase is on or before ``calibration_end``. Holdout purchases are
    purchase days in (``calibration_end``, ``holdout_end``].

    Returns
    -------
    DataFrame
        The :func:`rfm_summary` columns at ``calibration_end`` plus ``holdout_frequency`` (purchase days in
        the holdout; every one is a repeat purchase), ``holdout_monetary_value`` (their mean value, 0 when
        none), ``holdout_spend`` (their total value) and ``holdout_duration`` (holdout length in
        ``time_unit``). The monetary columns are present only when the log has amounts.

    Raises
    ------
    DataError
        If ``holdout_end`` is not after ``calibration_end``, or is after the end of the log: the holdout
        counts would silently miss purchases that the data do not cover.
    """
    unit = check_unit(time_unit)
    log = as_log(transactions, customer, date, amount, read_options)
    cal_end, hold_end = split_dates(calibration_end, holdout_end, log.first_date, log.observation_end)
    out = _finish(log.query(summary_sql(log.has_amount, True, unit), {"cal_end": cal_end, "hold_end": hold_end}),
                  log, cal_end)
    out["holdout_duration"] = (hold_end - cal_end).days / unit_days(unit)
    out.attrs.update(time_unit=unit, calibration_end=cal_end.isoformat(), holdout_end=hold_end.isoformat())
    return out



def purchase_history(transactions: Any, observation_end: Any = None, *, customer: str = "customer_id",
                     date: str = "date", amount: str | None = "amount", **read_options: Any) -> pd.DataFrame:
    """What each customer did up to ``observation_end`` (default: the log's end), in a CRM's terms.

    Returns
    -------
    DataFrame indexed by customer_id (sorted): ``first_purchase`` and ``last_purchase`` (dates),
    ``days_since_last_purchase`` (to ``observation_end``), ``purchase_days`` (days with a purchase: the
    summary's frequency + 1) and, when the log has amounts, ``total_spend`` (every purchase, the first
    included, net of the returns the log netted; rounded to 9 decimals, below any currency's unit, so that
    the sum's floating-point residue such as 8025.940000000001 does not show).
    """
    log = as_log(transactions, customer, date, amount, read_options)
    end = summary_end(observation_end, log.first_date, log.last_date, log.declared_end)
    spend = ", round(sum(amount), 9) AS total_spend" if log.has_amount else ""
    df = log.query("SELECT customer_id, min(date) AS first_purchase, max(date) AS last_purchase, "
                   f"count(*) AS purchase_days{spend} FROM {{daily}} WHERE date <= $end GROUP BY customer_id "
                   "ORDER BY customer_id", {"end": end})
    out = df.set_index("customer_id")
    for column in ("first_purchase", "last_purchase"):
        out[column] = pd.to_datetime(out[column]).dt.date
    out.insert(2, "days_since_last_purchase",
               [(end - last).days for last in out["last_purchase"]])
    out["purchase_days"] = out["purchase_days"].astype("int64")
    out.attrs.update(observation_end=end.isoformat())
    return out


def acquisition_cohorts(transactions: Any, period: str = "month", *, customer: str = "customer_id",
                        date: str = "date", **read_options: Any) -> pd.Series:
    """Each customer's acquisition cohort: the month ("1997-01"), quarter ("1997Q1") or year of their
    first purchase, as text indexed by customer_id (a segment column for the hierarchical models)."""
    formats = {"month": "strftime(min(date), '%Y-%m')", "year": "strftime(min(date), '%Y')",
               "quarter": "strftime(min(date), '%Y') || 'Q' || CAST(quarter(min(date)) AS VARCHAR)"}
    if period not in formats:
        raise ValueError(f"period must be one of {', '.join(formats)}, got {period!r}")
    amount = read_options.pop("amount", None)  # (amounts play no part in a cohort)
    log = as_log(transactions, customer, date, amount, read_options)
    df = log.query(f"SELECT customer_id, {formats[period]} AS cohort FROM {{daily}} GROUP BY customer_id ORDER BY customer_id")
    return df.set_index("customer_id")["cohort"].rename("cohort")
