"""clvmodels on Apache Spark: summaries in Spark SQL, fitting on the compressed summary, scoring in
``mapInPandas`` (optional extra ``spark``).

The same functions as the pandas/DuckDB path, with the same numbers and the same errors:

- :func:`rfm_summary` and :func:`calibration_holdout` take a Spark DataFrame of transactions and return
  a Spark DataFrame of customers. The log is validated with the rules of
  :func:`clvmodels.read_transactions` and summarised with the SQL of :func:`clvmodels.rfm_summary`
  (:func:`clvmodels.data.rfm.summary_sql`), run by Spark: it is never collected to the driver.
- :func:`fit` groups identical summary rows in Spark, collects the (small) table of distinct rows with
  their counts and fits any clvmodels model on it with weights (maximum likelihood or Bayesian).
- :func:`score` scores every customer on the executors with :func:`clvmodels.scoring.score_customers`
  over the numpy core; the fitted models (a Bayesian model's posterior draws included) are broadcast.

Dates: text is parsed as in :func:`clvmodels.read_transactions` (ISO 8601, a UTC offset after the time
counting on its UTC day; or ``date_format`` in strptime notation, which Spark applies strictly:
zero-padded fields, and no ``%y``); a Spark ``TIMESTAMP`` becomes its calendar day in the session time
zone (``spark.sql.session.timeZone``; the DuckDB path uses UTC, so set it to ``UTC`` for the same days).
Row positions in errors count rows in the DataFrame's order (its partitions in turn).
"""

from __future__ import annotations

import re
from datetime import date as _date
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .data.rfm import split_dates, summary_end, summary_sql
from .data.transactions import (AMOUNT_LIMIT, ISO_TIMESTAMP, PREVIOUS_DAY, RETURNS_POLICIES, check_amount_scale,
                                combine_errors, validation_checks)
from .errors import DataError, NotFittedError, warn
from .scoring import score_customers
from .timeunits import Horizon, check_unit, unit_days

__all__ = ["rfm_summary", "calibration_holdout", "fit", "score", "strptime_to_spark"]

# (no %y: Spark reads two-digit years as 20xx, Python and DuckDB 69-99 as 19xx)
_STRPTIME = {"Y": "yyyy", "m": "MM", "d": "dd", "H": "HH", "M": "mm", "S": "ss", "f": "SSSSSS",
             "b": "MMM", "B": "MMMM", "j": "DDD", "%": "%"}
_INTEGER = ("tinyint", "smallint", "int", "bigint")
_NO_SECONDS = r"([ T][0-9]{1,2}:[0-9]{1,2})(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"  # hh:mm then a UTC offset


def _ident(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def _string(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def strptime_to_spark(fmt: str) -> str:
    """A strptime format (``"%Y%m%d"``) as a Spark datetime pattern (``"yyyyMMdd"``); literal text is
    quoted. DataError for a directive Spark cannot express."""
    out = []
    for token in re.findall(r"%.|[^%]+|%$", fmt):
        if token.startswith("%"):
            if token[1:] not in _STRPTIME:
                raise DataError(f"date_format {fmt!r}: {token} has no Spark equivalent "
                                f"(supported: {' '.join('%' + k for k in _STRPTIME)})")
            out.append(_STRPTIME[token[1:]])
        else:
            out.append("'" + token.replace("'", "''") + "'" if re.search(r"[A-Za-z']", token) else token)
    return "".join(out)


def _date_expression(column: str, dtype: str, date_format: str | None) -> tuple[str, str]:
    col = _ident(column)
    pattern = strptime_to_spark(date_format) if date_format else None
    if dtype == "string":
        missing = f"({col} IS NULL OR trim({col}) = '')"
        # Without a format, the ISO 8601 forms DuckDB reads (Spark alone would also take "2024" or
        # "2024-03"); a UTC offset gives the instant, whose day is taken in the session time zone. (Spark
        # reads an offset only after seconds: "23:30Z" is cast as "23:30:00Z".)
        text = f"trim({col})"
        seconds = f"regexp_replace({text}, {_string(_NO_SECONDS)}, '$1:00$2')"
        parsed = (f"try_to_timestamp({text}, {_string(pattern)})" if pattern else
                  f"CASE WHEN {text} RLIKE {_string(ISO_TIMESTAMP)} THEN try_cast({seconds} AS TIMESTAMP) END")
        return missing, parsed
    if dtype in ("date", "timestamp", "timestamp_ntz"):
        if date_format:
            raise DataError(f"date_format was given but the date column already has type {dtype.upper()}",
                            columns=[column])
        return f"({col} IS NULL)", f"CAST({col} AS TIMESTAMP)"
    if dtype in _INTEGER:
        if not date_format:
            raise DataError(f"the date column holds integers ({dtype.upper()}); say how to read them, "
                            "e.g. date_format='%Y%m%d'", columns=[column])
        return f"({col} IS NULL)", f"try_to_timestamp(CAST({col} AS STRING), {_string(pattern)})"
    raise DataError(f"the date column has type {dtype.upper()}, which is not a date, timestamp or text",
                    columns=[column])


def _amount_expression(column: str, dtype: str) -> tuple[str, str]:
    col = _ident(column)
    if dtype == "string":
        return f"({col} IS NULL OR trim({col}) = '')", f"try_cast(trim({col}) AS DOUBLE)"
    if dtype in _INTEGER or dtype in ("float", "double") or dtype.startswith("decimal"):
        return f"({col} IS NULL)", f"CAST({col} AS DOUBLE)"
    raise DataError(f"the amount column has type {dtype.upper()}, which is not numeric", columns=[column])


class _Log:
    """A validated log as a Spark DataFrame of purchase days (customer_id, date[, amount], n_rows)."""

    def __init__(self, daily, has_amount: bool, first: _date, last: _date) -> None:
        self.daily, self.has_amount, self.first_date, self.last_date = daily, has_amount, first, last
        self.observation_end = last


def _read(transactions, customer: str, date: str, amount: str | None, date_format: str | None,
          returns: str) -> _Log:
    """Validate and merge same-day rows, as :func:`clvmodels.read_transactions` does, in Spark SQL."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    if not isinstance(transactions, DataFrame):
        raise TypeError(f"transactions must be a Spark DataFrame, not {type(transactions).__name__} "
                        "(for pandas, CSV or Parquet use clvmodels.rfm_summary)")
    if returns not in RETURNS_POLICIES:
        raise ValueError(f"returns must be one of {RETURNS_POLICIES}, got {returns!r}")
    if amount == "amount" and "amount" not in transactions.columns:
        amount = None  # the default name, absent: a log without monetary values
    wanted = [c for c in (customer, date, amount) if c is not None]
    if len(set(wanted)) != len(wanted):
        raise DataError("customer, date and amount must be three different columns", columns=wanted)
    description = "the Spark DataFrame"
    dtypes = dict(transactions.dtypes)
    missing_cols = [c for c in wanted if c not in dtypes]
    if missing_cols:
        raise DataError(f"missing column{'s' if len(missing_cols) > 1 else ''} in {description} "
                        f"(available: {', '.join(list(dtypes)[:20])})", columns=missing_cols)
    cust = _ident(customer)
    text_ids = dtypes[customer] == "string"
    select = [f"{cust} AS customer_id",
              f"({cust} IS NULL OR trim({cust}) = '') AS _cust_missing" if text_ids else f"({cust} IS NULL) AS _cust_missing",
              f"({cust} <> trim({cust})) AS _cust_spaced" if text_ids else "false AS _cust_spaced"]
    date_missing, date_parsed = _date_expression(date, dtypes[date], date_format)
    select += [f"{date_missing} AS _date_missing", f"{date_parsed} AS _ts"]
    if amount is not None:
        amount_missing, amount_parsed = _amount_expression(amount, dtypes[amount])
        select += [f"{amount_missing} AS _amount_missing", f"{amount_parsed} AS amount"]
    parsed = transactions.selectExpr(*select)

    checks = validation_checks(customer, date, amount, date_format, returns, None)
    counts = parsed.selectExpr("count(*)", *[f"count_if(coalesce({c.condition}, false))" for c in checks]).first()
    n_rows = int(counts[0])
    if n_rows == 0:
        raise DataError(f"the transaction log {description} is empty")
    failed = [(check, int(n)) for check, n in zip(checks, counts[1:]) if n]
    if failed:
        positioned = transactions.selectExpr(*select).withColumn("_pos", F.monotonically_increasing_id())
        positioned = positioned.selectExpr("*", "row_number() OVER (ORDER BY _pos) - 1 AS _row")
        problems = []
        for check, n in failed:
            rows = [r[0] for r in positioned.where(f"coalesce({check.condition}, false)")
                    .orderBy("_row").select("_row").limit(5).collect()]
            problems.append(DataError(check.reason, columns=[check.column], rows=rows, n_rows=n))
        raise combine_errors(description, problems)

    keep = parsed.where("amount >= 0") if amount is not None and returns == "drop" else parsed
    aggs = ["CAST(count(*) AS INT) AS n_rows"]
    if amount is not None:
        aggs.insert(0, "sum(amount) AS amount")
        if returns == "net":
            aggs.append("bool_or(amount < 0) AS _had_return")
    daily = keep.groupBy("customer_id", F.expr("CAST(_ts AS DATE)").alias("date")).agg(*[F.expr(a) for a in aggs])
    if amount is not None and returns == "net":
        over = daily.where("_had_return AND round(amount, 9) < 0").selectExpr(
            "count(*)", "min(CAST(customer_id AS STRING))", "min(date)").first()
        if over[0]:
            raise DataError(f"{over[0]:,} customer-days in {description} have returns larger than that day's "
                            f"purchases (first: customer {over[1]} on {over[2]}); use returns='drop' for "
                            "returns of earlier purchases")
        daily = daily.where("NOT (_had_return AND round(amount, 9) = 0)").drop("_had_return")
    # (nothing is cached: Spark reads the source again for each job, which measured faster in local
    # mode than persisting the purchase days, 13 s against 32 s for 1M rows)
    stats = daily.selectExpr("count(*)", "min(date)", "max(date)", "max(n_rows)",
                             "sum(abs(amount))" if amount is not None else "0.0").first()
    if stats[0] == 0:
        raise DataError(f"the transaction log {description} has no purchases left after validation")
    if amount is not None and not stats[4] < AMOUNT_LIMIT:
        largest = daily.groupBy("customer_id").agg(F.expr("sum(abs(amount)) AS s")).orderBy(F.desc("s")).limit(5)
        check_amount_scale(description, amount, stats[4], [(str(r[0]), r[1]) for r in largest.collect()])
    if amount is not None and (stats[3] or 0) > 1:
        dup = keep.groupBy("customer_id", "_ts", "amount").count().where("count > 1") \
            .selectExpr("coalesce(sum(count - 1), 0)").first()[0]
        if dup:
            warn(f"{dup:,} of {n_rows:,} rows in {description} repeat an earlier row exactly "
                 "(same customer, timestamp and amount); they are kept and their amounts added to that day")
    return _Log(daily, amount is not None, stats[1], stats[2])


def _spark_day_diff(start: str, end: str) -> str:
    return f"datediff({end}, {start})"


def _summarise(log: _Log, unit: str, cal_end: _date, hold_end: _date | None):
    view = f"clvmodels_daily_{id(log)}"
    # each day with the customer's previous purchase day, as summary_sql reads them
    log.daily.selectExpr("*", PREVIOUS_DAY).createOrReplaceTempView(view)
    try:
        return _summary(log, unit, cal_end, hold_end, view)
    finally:  # (the result holds the analysed plan, not the view's name)
        log.daily.sparkSession.catalog.dropTempView(view)


def _summary(log: _Log, unit: str, cal_end: _date, hold_end: _date | None, view: str):
    sql = summary_sql(log.has_amount, hold_end is not None, unit, table=view, cal_end=f"DATE '{cal_end.isoformat()}'",
                      hold_end=f"DATE '{hold_end.isoformat()}'" if hold_end else "", day_diff=_spark_day_diff,
                      order=False)
    spark = log.daily.sparkSession
    out = spark.sql(sql)
    if hold_end is not None:
        out = out.selectExpr("*", f"CAST({(hold_end - cal_end).days / unit_days(unit)!r} AS DOUBLE) AS holdout_duration")
    # the time unit travels with the columns (read by fit and score)
    from pyspark.sql import functions as F

    meta = {"time_unit": unit}
    out = out.select(*[F.col(c).alias(c, metadata=meta) if c in ("recency", "T") else F.col(c) for c in out.columns])
    return out


def rfm_summary(transactions, observation_end: Any = None, time_unit: str = "W", *,
                customer: str = "customer_id", date: str = "date", amount: str | None = "amount",
                date_format: str | None = None, returns: str = "error"):
    """:func:`clvmodels.rfm_summary` on a Spark DataFrame of transactions: a Spark DataFrame with
    ``customer_id``, ``frequency``, ``recency``, ``T`` and (with amounts) ``monetary_value``, one row
    per customer whose first purchase is on or before ``observation_end`` (default: the last purchase day).
    Unordered, as Spark results are: sort or join by ``customer_id``. Lazy, as Spark results are: each
    action on it reads the log again (``.cache()`` it to reuse it)."""
    unit = check_unit(time_unit)
    log = _read(transactions, customer, date, amount, date_format, returns)
    return _summarise(log, unit, summary_end(observation_end, log.first_date, log.last_date), None)


def calibration_holdout(transactions, calibration_end: Any, holdout_end: Any = None, time_unit: str = "W", *,
                        customer: str = "customer_id", date: str = "date", amount: str | None = "amount",
                        date_format: str | None = None, returns: str = "error"):
    """:func:`clvmodels.calibration_holdout` on a Spark DataFrame: the calibration summary plus
    ``holdout_frequency``, ``holdout_monetary_value``, ``holdout_spend`` and ``holdout_duration``.
    Same DataErrors for a holdout end not after the calibration end or after the end of the log."""
    unit = check_unit(time_unit)
    log = _read(transactions, customer, date, amount, date_format, returns)
    cal_end, hold_end = split_dates(calibration_end, holdout_end, log.first_date, log.observation_end)
    return _summarise(log, unit, cal_end, hold_end)


def _time_unit(summary, time_unit: str | None) -> str | None:
    if time_unit:
        return check_unit(time_unit)
    fields = {f.name: f for f in summary.schema.fields}
    return fields["T"].metadata.get("time_unit") if "T" in fields else None


def fit(model, summary, *, time_unit: str | None = None):
    """Fit any clvmodels model (maximum likelihood or Bayesian: :class:`clvmodels.BetaGeo`,
    :class:`~clvmodels.BayesBetaGeo`, :class:`~clvmodels.NBD`, ...) to a Spark summary.

    Identical rows of the columns the model uses (and its segment column) are counted in Spark and only
    the distinct rows are collected: the same fit as on the whole pandas summary, whose rows the models
    compress the same way. Returns the fitted model. ``time_unit`` defaults to the one
    :func:`rfm_summary` recorded on the columns.
    """
    columns = model.input_columns()
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise DataError(f"the summary has no column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                        columns=missing)
    unit = _time_unit(summary, time_unit)
    weight = "_clvmodels_customers"
    from pyspark.sql import functions as F

    distinct = summary.groupBy(*columns).agg(F.count(F.lit(1)).alias(weight)).toPandas()
    distinct = distinct.sort_values(columns, kind="stable").reset_index(drop=True)
    distinct[weight] = distinct[weight].astype(np.float64)
    try:
        return model.fit(distinct, weights=weight, time_unit=unit)
    except DataError as exc:  # its row positions would be those of the distinct rows, not the summary's
        raise DataError(f"{exc.reason} (in {exc.n_rows:,} of the distinct summary rows; select them in the Spark "
                        f"summary on {', '.join(exc.columns) or 'the columns named'})", columns=exc.columns) from None


def _schema(summary, key: str, example: pd.DataFrame) -> str:
    key_type = dict(summary.dtypes)[key]
    return ", ".join([f"{_ident(key)} {key_type}"] + [f"{_ident(c)} double" for c in example.columns])


def score(summary, purchase_model=None, spend_model=None, horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
          annual_discount_rate: float = 0.10, interval: float | None = None, *, customer: str = "customer_id"):
    """Score every customer of a Spark summary on the executors: a Spark DataFrame with ``customer_id`` and
    the columns of :func:`clvmodels.scoring.score_customers` (with ``interval=``, each value's bounds),
    computed batch by batch with ``mapInPandas``. The models are broadcast once."""
    needed = {customer}
    for model in (purchase_model, spend_model):
        if model is not None:
            try:
                model.check_is_fitted()
            except NotFittedError:
                raise DataError(f"the {type(model).__name__} is not fitted: fit it first (clvmodels.spark.fit)") from None
            needed.update(model.input_columns())
    missing = sorted(needed - set(summary.columns))
    if missing:
        raise DataError(f"the summary has no column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                        columns=missing)
    columns = [customer] + sorted(needed - {customer})
    options = {"horizons": list(horizons), "annual_discount_rate": annual_discount_rate, "interval": interval}
    # the output columns, from one made-up customer scored on the driver
    made_up = {"frequency": 1.0, "recency": 1.0, "T": 2.0, "monetary_value": 1.0}
    probe = pd.DataFrame({c: [made_up.get(c, 1.0)] for c in needed - {customer}}, index=pd.Index([0], name=customer))
    for model in (purchase_model, spend_model):
        for column, labels in (model.segments() if model is not None else {}).items():
            probe[column] = labels[0]
        design = getattr(model, "design_", None)
        for column in (design.columns if design is not None else []):  # a value of each covariate seen in fitting
            probe[column] = [design.levels_[column][0] if design.kinds_[column] == "categorical" else 0.0]
    example = score_customers(probe, purchase_model, spend_model, **options)
    models = summary.sparkSession.sparkContext.broadcast((purchase_model, spend_model))

    def run(batches):
        purchase, spend = models.value
        for batch in batches:
            part = batch.set_index(customer)
            yield score_customers(part, purchase, spend, **options).reset_index()

    return summary.select(*columns).mapInPandas(run, schema=_schema(summary, customer, example))
