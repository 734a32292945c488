"""Summaries by period, for models of discrete purchase opportunities (BG/BB), and the donations data.

A customer's first purchase falls in their period 0; their opportunities are the whole periods after it,
1, 2, ..., n, up to the observation end (Fader, Hardie & Shang 2010, section 2: one opportunity a year for
a charity's annual campaign). Per customer:

- ``frequency`` x: the opportunities with at least one purchase (several purchases in one period count once);
- ``recency`` t_x: the last of them (0 when x = 0);
- ``T`` n: the number of opportunities, whole periods from the first purchase's period to the end's;
- ``monetary_value`` (logs with amounts): the mean spend of the periods counted in x (a period's purchases
  summed), 0 when x = 0, as Gamma-Gamma reads it.

Periods are calendar periods: days, weeks from Monday to Sunday, months or years (``"D"``, ``"W"``,
``"M"``, ``"Y"``). Partial periods: the first purchase's period is period 0 however late in it the customer
arrived, and its other purchases are not counted (they are part of the acquisition, as the first purchase
is); the summary ends with a whole period: an observation end (or calibration end) inside a period is
refused with the dates of the whole periods around it, never cut silently. With a daily period the
summary is the continuous one in days (:func:`clvmodels.rfm_summary` with ``time_unit="D"``).
"""

from __future__ import annotations

import os
from datetime import date as _date
from datetime import timedelta
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .rfm import as_log, summary_end
from .transactions import TransactionLog, to_date

__all__ = ["period_summary", "period_summary_sql", "load_donations", "check_period", "PERIODS", "PERIOD_NAMES"]

#: The periods a summary may count, with their names in messages.
PERIOD_NAMES = {"D": "day", "W": "week", "M": "month", "Y": "year"}
PERIODS = tuple(PERIOD_NAMES)
#: Weeks start on Monday: week 0 is the one of Monday 1970-01-05.
_MONDAY = _date(1970, 1, 5)
_EPOCH = _date(1970, 1, 1)


def check_period(period: Any, what: str = "period") -> str:
    """The canonical period (``"D"``, ``"W"``, ``"M"`` or ``"Y"``), or ValueError naming ``what``."""
    canon = period.upper() if isinstance(period, str) else period
    if canon not in PERIOD_NAMES:
        raise ValueError(f"{what} must be one of {', '.join(PERIODS)} (day, week, month, year), got {period!r}")
    return canon


def _index(day: _date, period: str) -> int:
    """The period number of a calendar day (the same numbering as :func:`_index_sql`)."""
    if period == "Y":
        return day.year
    if period == "M":
        return day.year * 12 + day.month - 1
    if period == "W":
        return (day - _MONDAY).days // 7
    return (day - _EPOCH).days


def _index_sql(column: str, period: str) -> str:
    """The period number of a DATE column, in SQL (floor division: dates before 1970 too)."""
    if period == "Y":
        return f"year({column})"
    if period == "M":
        return f"(year({column}) * 12 + month({column}) - 1)"
    if period == "W":
        return f"CAST(floor(date_diff('day', DATE '{_MONDAY.isoformat()}', {column}) / 7) AS BIGINT)"
    return f"date_diff('day', DATE '{_EPOCH.isoformat()}', {column})"


def _bounds(index: int, period: str) -> tuple[_date, _date]:
    """The first and last day of period number ``index``."""
    if period == "Y":
        return _date(index, 1, 1), _date(index, 12, 31)
    if period == "M":
        year, month = divmod(index, 12)
        first = _date(year, month + 1, 1)
        nxt = _date(year + (month == 11), (month + 1) % 12 + 1, 1)
        return first, nxt - timedelta(days=1)
    if period == "W":
        first = _MONDAY + timedelta(days=7 * index)
        return first, first + timedelta(days=6)
    day = _EPOCH + timedelta(days=index)
    return day, day


def _whole_period_end(day: _date, period: str, what: str, flag: str) -> int:
    """The number of the period ``day`` ends; DataError if it is not the last day of its period."""
    index = _index(day, period)
    first, last = _bounds(index, period)
    if day != last:
        before = first - timedelta(days=1)
        name = PERIOD_NAMES[period]
        raise DataError(f"{what} {day} falls inside the {name} {first} to {last}: a summary by period counts whole "
                        f"periods, so end it on the last day of one: {flag}={before.isoformat()} (the last whole "
                        f"{name} before it) or {flag}={last.isoformat()} if the log covers that {name} to its end")
    return index


def period_summary_sql(period: str, has_amount: bool, holdout: bool) -> str:
    """The summary by period of the purchase days (table ``{daily}``: customer_id, date, amount) in DuckDB
    SQL, with parameters ``$end`` (the last day read) and ``$cal_per`` (the number of the last calibration
    period; purchases after it are holdout purchases)."""
    k = "k"  # a purchase period's number, counted from the customer's first (period 0)
    cal = f"{k} >= 1 AND per <= $cal_per"
    cols = [f"count(*) FILTER (WHERE {cal}) AS frequency",
            f"coalesce(max({k}) FILTER (WHERE {cal}), 0) AS recency",
            "$cal_per - min(first_per) AS T"]
    if has_amount:
        cols.append(f"coalesce(sum(spend) FILTER (WHERE {cal}) / nullif(count(*) FILTER (WHERE {cal}), 0), 0.0) "
                    "AS monetary_value")
    if holdout:
        hold = "per > $cal_per"
        cols.append(f"count(*) FILTER (WHERE {hold}) AS holdout_frequency")
        if has_amount:
            spend = f"coalesce(sum(spend) FILTER (WHERE {hold}), 0.0)"
            cols.append(f"coalesce({spend} / nullif(count(*) FILTER (WHERE {hold}), 0), 0.0) AS holdout_monetary_value")
            cols.append(f"{spend} AS holdout_spend")
    amount = "amount" if has_amount else "0.0"
    return (
        "WITH days AS (SELECT customer_id, " + _index_sql("date", period) + f" AS per, {amount} AS amount "
        "FROM {daily} WHERE date <= $end), "
        "firsts AS (SELECT customer_id, min(per) AS first_per FROM days GROUP BY customer_id "
        "HAVING min(per) <= $cal_per), "
        "periods AS (SELECT customer_id, per, min(first_per) AS first_per, per - min(first_per) AS k, "
        "sum(amount) AS spend FROM days JOIN firsts USING (customer_id) GROUP BY customer_id, per) "
        f"SELECT customer_id, {', '.join(cols)} FROM periods GROUP BY customer_id ORDER BY customer_id")


def period_summary(
    transactions: TransactionLog | pd.DataFrame | str | os.PathLike,
    period: str = "Y",
    *,
    observation_end: Any = None,
    calibration_end: Any = None,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = "amount",
    **read_options: Any,
) -> pd.DataFrame:
    """Summarise a transaction log per customer by period: the summary BG/BB
    (:class:`clvmodels.BetaGeoBetaBinom`) is fitted to (definitions in the module docstring).

    Parameters
    ----------
    transactions
        A :class:`TransactionLog`, or anything :func:`clvmodels.read_transactions` reads.
    period
        ``"Y"`` (default), ``"M"``, ``"W"`` (Monday to Sunday) or ``"D"``: one purchase opportunity each.
    observation_end
        The last day of the summary, which must be the last day of a period (DataError otherwise, naming
        the whole periods around it). Default: the log's observation end (its last purchase day unless
        declared with ``read_transactions(observation_end=...)``). A day after the log's last purchase
        warns as :func:`clvmodels.rfm_summary` does.
    calibration_end
        If given (the last day of a period, before ``observation_end``): the summary is taken at it, for
        the customers whose first purchase is on or before it, and ``holdout_frequency`` (periods after it
        with a purchase, up to ``observation_end``) and ``holdout_duration`` (the number of those
        periods) are added, with ``holdout_monetary_value`` and ``holdout_spend`` when the log has
        amounts, as :func:`clvmodels.calibration_holdout` adds them to a continuous summary.
    customer, date, amount, **read_options
        Passed to :func:`clvmodels.read_transactions` when ``transactions`` is not already a log.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted): ``frequency``, ``recency``, ``T`` (whole numbers, int64) and
        ``monetary_value`` when the log has amounts; ``attrs["time_unit"]`` is the period. Customers
        whose first purchase is in the last period have T = 0: no opportunity yet.
    """
    period = check_period(period)
    log = as_log(transactions, customer, date, amount, read_options)
    end = summary_end(observation_end, log.first_date, log.last_date, log.declared_end)
    what = "observation_end" if calibration_end is None else "observation_end (the holdout's end)"
    end_per = _whole_period_end(end, period, what if observation_end is not None else "the log's end",
                                "observation_end")
    if calibration_end is not None:
        cal_end = to_date(calibration_end, "calibration_end")
        if cal_end >= end:
            raise DataError(f"calibration_end {cal_end} must be before observation_end {end}")
        if cal_end < log.first_date:
            raise DataError(f"calibration_end {cal_end} is before the first purchase in the log ({log.first_date})")
        cal_per = _whole_period_end(cal_end, period, "calibration_end", "calibration_end")
    else:
        cal_end, cal_per = end, end_per
    if _index(log.first_date, period) > cal_per:
        raise DataError(f"no customer made a first purchase by {cal_end}")
    sql = period_summary_sql(period, log.has_amount, calibration_end is not None)
    out = log.query(sql, {"end": end, "cal_per": cal_per})
    out = out.set_index("customer_id")
    for column in ("frequency", "recency", "T", "holdout_frequency"):
        if column in out:
            out[column] = out[column].to_numpy(dtype=np.int64)
    if calibration_end is not None:
        out["holdout_duration"] = np.int64(end_per - cal_per)
    if log.attributes:
        out = out.join(log.attribute_values(cal_end), how="left")
    out.attrs.update(time_unit=period, period=PERIOD_NAMES[period], observation_end=cal_end.isoformat())
    if calibration_end is not None:
        out.attrs.update(calibration_end=cal_end.isoformat(), holdout_end=end.isoformat())
    return out


def load_donations() -> pd.DataFrame:
    """The donations summary of Fader, Hardie & Shang (2010, "Customer-Base Analysis in a Discrete-Time
    Noncontractual Setting", Marketing Science 29(6)): the 11,104 first-time supporters of a nonprofit
    organisation in 1995, followed over its annual campaigns 1996-2001 (6 opportunities), one row per
    distinct (frequency, recency) pattern.

    Returns
    -------
    DataFrame
        22 rows: ``frequency`` x (years with a donation), ``recency`` t_x (the last of them), ``T`` = 6
        (the paper's n) and ``weights`` (donors with that pattern; fit with ``weights="weights"``);
        ``attrs["time_unit"] = "Y"``. The same numbers as the donations file distributed with the
        lifetimes package.
    """
    with resources.files("clvmodels.data").joinpath("_donations", "donations.csv").open("rb") as fh:
        df = pd.read_csv(fh)
    df = df.rename(columns={"periods": "T"}).astype("int64")
    df.index.name = "pattern"
    df.attrs["time_unit"] = "Y"
    return df[["frequency", "recency", "T", "weights"]]
