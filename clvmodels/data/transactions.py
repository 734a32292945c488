"""Read and validate a transaction log (DataFrame, CSV or Parquet) with DuckDB.

The log is parsed, checked and reduced to one row per customer and purchase day inside an in-process
DuckDB database, so a file of tens of millions of rows is never loaded whole into pandas. Same-day
transactions of one customer are one purchase with their amounts summed: this is how Fader, Hardie & Lee
count repeat purchases in the CDNOW summaries (their x and t_x are in whole days).
"""

from __future__ import annotations

import functools
import glob as _glob
import math
import re
import shutil
import weakref
import itertools
import os
from dataclasses import dataclass
from datetime import date as _date
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from ..errors import DataError, warn
from ..files import private_temp_dir
from .columns import SUMMARY_COLUMNS

#: How a customer's attribute is picked from their transactions (:func:`read_transactions`).
ATTRIBUTE_RULES = ("first", "last", "mode")

__all__ = ["TransactionLog", "read_transactions", "ATTRIBUTE_RULES", "attribute_rules", "RETURNS_POLICIES", "CSV_OPTIONS", "ISO_TIMESTAMP",
           "AMOUNT_LIMIT", "PREVIOUS_DAY", "validation_checks", "check_amount_scale", "combine_errors", "to_date"]

#: The column ``_previous`` of the purchase days, in SQL that DuckDB and Spark SQL both run: each day's
#: customer's previous purchase day (NULL on the first), as :func:`clvmodels.data.rfm.summary_sql` reads it.
PREVIOUS_DAY = "lag(date) OVER (PARTITION BY customer_id ORDER BY date) AS _previous"

#: How negative amounts (returns, refunds) are treated; see :func:`read_transactions`.
RETURNS_POLICIES = ("error", "drop", "net")

_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")
_INTEGER = tuple(t for t in _NUMERIC if "INT" in t)
_counter = itertools.count()

#: The ``read_csv`` options :func:`read_transactions` accepts in ``csv_options``, with their value types.
CSV_OPTIONS = {"delim": str, "sep": str, "quote": str, "escape": str, "comment": str, "decimal_separator": str,
               "encoding": str, "header": bool, "skip": int}
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "utf16": "utf-16", "latin-1": "latin-1",
              "latin1": "latin-1", "iso-8859-1": "latin-1"}

#: Text dates without ``date_format``: an ISO 8601 date, optionally a time, and after a time optionally a
#: UTC offset (``Z``, ``+05``, ``+0530``, ``+05:30``). A regular expression both DuckDB and Spark run.
ISO_TIMESTAMP = (r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}(:[0-9]{1,2}(:[0-9]{1,2}(\.[0-9]+)?)?"
                 r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?)?$")

#: Largest total of absolute amounts in a log: sqrt of the largest double, so that squares and products of
#: any spend totals (the Gamma-Gamma variance, squared errors of a backtest) stay finite.
AMOUNT_LIMIT = math.sqrt(1.7976931348623157e308)


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _csv_options(options: dict[str, Any]) -> tuple[str, str]:
    """The ``read_csv`` arguments for ``csv_options`` as SQL (names from :data:`CSV_OPTIONS` only, values
    type-checked and written as escaped literals), and the decimal separator."""
    parts, decimal = [], "."
    for key, value in options.items():
        kind = CSV_OPTIONS.get(key) if isinstance(key, str) else None
        if kind is None:
            raise DataError(f"unknown CSV option {key!r}; csv_options takes {', '.join(CSV_OPTIONS)}")
        if kind is bool:
            if not isinstance(value, bool):
                raise DataError(f"CSV option {key} must be true or false, not {value!r}")
            parts.append(f"{key}={'true' if value else 'false'}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DataError(f"CSV option {key} must be a whole number >= 0, not {value!r}")
            parts.append(f"{key}={int(value)}")
        else:
            if not isinstance(value, str):
                raise DataError(f"CSV option {key} must be text, not {value!r}")
            if key == "encoding":
                if value.lower() not in _ENCODINGS:
                    raise DataError(f"encoding={value!r} is not supported; choose utf-8, utf-16 or latin-1")
                value = _ENCODINGS[value.lower()]
            elif key == "decimal_separator":
                if value not in (".", ","):
                    raise DataError(f"decimal_separator={value!r}: choose '.' or ','")
                decimal = value
            elif key in ("delim", "sep"):
                if not 1 <= len(value) <= 4 or "\n" in value or "\r" in value:
                    raise DataError(f"{key}={value!r}: a delimiter is 1 to 4 characters, not a line break")
            elif len(value) != 1:
                raise DataError(f"{key}={value!r}: give one character")
            parts.append(f"{key}={_literal(value)}")
    return "".join(", " + p for p in parts), decimal


def _csv_error(exc: Exception, path: str) -> DataError:
    """A DuckDB error met while reading the CSV file ``path``, said in the file's terms."""
    text = str(exc)
    named = re.search(r"^\s*file = (.+)$", text, re.MULTILINE)  # the file of a glob that failed
    path = named.group(1).strip() if named else path
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f"line {int(line.group(1)):,}" if line else "a line"
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if fields:
        return DataError(f"{path}: {where} has {fields.group(2)} fields where the header has {fields.group(1)} "
                         "(a stray delimiter or quote, or a missing field)")
    if "Invalid unicode" in text or "not utf-8" in text.lower():
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            head = b""
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head
        return DataError(f"{path} is not UTF-8 ({where} has bytes that are not UTF-8 text); give its encoding: "
                         f"encoding={'utf-16' if utf16 else 'latin-1'!r}")
    return DataError(f"cannot read CSV {path!r}: {text.splitlines()[0]}")


#: A date given as text: ISO 8601 (YYYY-MM-DD, optionally a time), the one form that cannot be read two ways.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def to_date(value: Any, what: str) -> _date:
    """The calendar day of a date option (a date, a timestamp or ISO 8601 text; DataError otherwise)."""
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value.strip()):
        raise DataError(f"{what} {value!r} is not a date in ISO form (YYYY-MM-DD, e.g. 2024-03-31)")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what} {value!r} is not a date ({exc})") from None
    if pd.isna(ts):
        raise DataError(f"{what} is missing")
    return ts.date()


@dataclass(frozen=True)
class _Check:
    """One validation rule: a SQL condition on the parsed view and the sentence that explains it."""

    condition: str
    column: str
    reason: str


def validation_checks(customer: str, date: str, amount: str | None, date_format: str | None, returns: str,
                      end: _date | None) -> list[_Check]:
    """The rules every transaction row must pass, as SQL conditions on the parsed rows (columns
    ``_cust_missing``, ``_date_missing``, ``_ts`` and ``amount``) that DuckDB and Spark SQL both run, so
    that :mod:`clvmodels.spark` refuses exactly what :func:`read_transactions` refuses."""
    checks = [
        _Check("_cust_missing", customer, "missing customer id"),
        _Check("NOT _cust_missing AND _cust_spaced", customer,
               "customer id with leading or trailing spaces (ids are kept exactly as given: strip them "
               "if ' a' and 'a' are one customer)"),
        _Check("_date_missing", date, "missing date"),
        _Check("NOT _date_missing AND _ts IS NULL", date,
               "unparseable date" + (f" (format {date_format!r})" if date_format else
                                     " (expected ISO 8601 such as 2024-03-01 or 2024-03-01T14:05:00+01:00; "
                                     "or pass date_format)")),
    ]
    if amount is not None:
        checks += [
            _Check("_amount_missing", amount, "missing amount"),
            _Check("NOT _amount_missing AND amount IS NULL", amount, "non-numeric amount"),
            _Check("isnan(amount)", amount, "NaN amount"),
            _Check("abs(amount) = CAST('Infinity' AS DOUBLE)", amount, "infinite amount"),
        ]
        if returns == "error":
            checks.append(_Check("amount < 0", amount,
                                 "negative amount (a return?); choose how to treat returns: returns='drop' or returns='net'"))
    if end is not None:
        checks.append(_Check(f"CAST(_ts AS DATE) > DATE '{end.isoformat()}'", date,
                             f"transaction after the observation end {end.isoformat()}"))
    return checks


class TransactionLog:
    """A validated transaction log: one row per customer and purchase day, held in DuckDB.

    Build it with :func:`read_transactions`. Summaries (:func:`clvmodels.rfm_summary`,
    :func:`clvmodels.calibration_holdout`) query it without copying it into pandas.

    Attributes
    ----------
    n_rows : int
        Rows in the input.
    n_purchases : int
        Customer purchase days after same-day merging (and after the returns policy).
    n_customers : int
        Distinct customers.
    n_duplicated_rows : int
        Rows identical to an earlier row (same customer, timestamp and amount); kept, and warned about.
        Not counted for a log without amounts, where they change nothing.
    n_returns : int
        Rows with a negative amount (dropped under ``returns="drop"``, netted under ``"net"``).
    n_cancelled_days : int
        Under ``returns="net"``: purchase days whose returns cancelled them exactly.
    first_date, last_date : datetime.date
        First and last purchase day.
    observation_end : datetime.date
        The end of observation: the date given to :func:`read_transactions`, else ``last_date``.
    declared_end : datetime.date or None
        The date given to :func:`read_transactions` as ``observation_end``, if any.
    has_amount : bool
        Whether the log carries amounts (monetary values).
    source : str
        What was read.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, *, has_amount: bool, source: str,
                 stats: dict[str, Any]) -> None:
        self._con = con
        self._table = table
        self.has_amount = has_amount
        self.source = source
        self.n_rows = int(stats["n_rows"])
        self.n_duplicated_rows = int(stats.get("n_duplicated_rows", 0))
        self.n_returns = int(stats.get("n_returns", 0))
        self.n_cancelled_days = int(stats.get("n_cancelled_days", 0))
        self.returns: str = stats.get("returns", "error")
        n_purchases, first, last = con.execute(f"SELECT count(*), min(date), max(date) FROM {table}").fetchone()
        if n_purchases == 0:
            raise DataError(f"the transaction log {source} has no purchases left after validation")
        self.n_purchases = int(n_purchases)
        self.first_date: _date = first
        self.last_date: _date = last
        self.declared_end: _date | None = stats.get("observation_end")
        self.observation_end: _date = self.declared_end or last
        self.attributes: dict[str, str] = dict(stats.get("attributes", {}))

    def attribute_values(self, end: _date) -> pd.DataFrame:
        """Each customer's attributes (:func:`read_transactions`' ``attributes``) from the transactions up
        to ``end``: a DataFrame indexed by customer_id, one column per attribute."""
        if not self.attributes:
            return pd.DataFrame(index=pd.Index([], name="customer_id"))
        picks = []
        for i, (col, rule) in enumerate(self.attributes.items()):
            a = f"_attr_{i}"
            if rule == "mode":
                picks.append(f"(SELECT first({a} ORDER BY n DESC, t0, {a}) FROM (SELECT {a}, count(*) AS n, "
                             f"min(_ts) AS t0 FROM attribute_rows AS r WHERE r.customer_id = c.customer_id AND "
                             f"{a} IS NOT NULL AND CAST(_ts AS DATE) <= $end GROUP BY {a})) AS {_ident(col)}")
            else:
                order = "_ts" if rule == "first" else "_ts DESC"
                picks.append(f"first({a} ORDER BY {order}, {a}) FILTER (WHERE {a} IS NOT NULL) AS {_ident(col)}")
        plain = [p for p, rule in zip(picks, self.attributes.values()) if rule != "mode"]
        modes = [p for p, rule in zip(picks, self.attributes.values()) if rule == "mode"]
        sql = (f"SELECT customer_id{''.join(', ' + p for p in plain)} FROM attribute_rows "
               "WHERE CAST(_ts AS DATE) <= $end GROUP BY customer_id")
        if modes:
            sql = f"SELECT c.*{''.join(', ' + p for p in modes)} FROM ({sql}) AS c"
        out = self._con.execute(sql, {"end": end}).fetchdf().set_index("customer_id")
        return out[list(self.attributes)]

    @functools.cached_property
    def n_customers(self) -> int:
        """Number of distinct customers (counted on first use)."""
        return int(self._con.execute(f"SELECT count(DISTINCT customer_id) FROM {self._table}").fetchone()[0])

    def query(self, sql: str, params: dict[str, Any] | list[Any] | None = None) -> pd.DataFrame:
        """Run SQL against the log (the table is named ``daily``) and return a DataFrame."""
        return self._con.execute(sql.replace("{daily}", self._table), params or []).fetchdf()

    def to_pandas(self) -> pd.DataFrame:
        """The purchase days as a DataFrame: customer_id, date (datetime64), amount when present, and
        n_rows (how many input rows were merged into the day)."""
        df = self.query("SELECT * EXCLUDE (_previous) FROM {daily} ORDER BY customer_id, date")
        df["date"] = pd.to_datetime(df["date"])
        return df

    def __len__(self) -> int:
        return self.n_purchases

    def __repr__(self) -> str:
        returns = (f", {self.n_returns:,} return{'s' if self.n_returns != 1 else ''} "
                   f"{'dropped' if self.returns == 'drop' else 'netted'}" if self.n_returns else "")
        return (f"TransactionLog({self.source}: {self.n_rows:,} rows -> {self.n_purchases:,} purchase days, "
                f"{self.n_customers:,} customers, {self.first_date} to {self.last_date}{returns})")


def _connect() -> tuple[duckdb.DuckDBPyConnection, str]:
    """An in-memory DuckDB connection that spills to a private temporary folder, days in UTC."""
    tmpdir = private_temp_dir("clvmodels-duckdb")
    con = duckdb.connect(config={"temp_directory": tmpdir, "preserve_insertion_order": False})
    # DuckDB's own progress bar writes to stdout, in the middle of a caller's output: off. (In Jupyter
    # DuckDB refuses to touch the setting without ipywidgets; its bar is not shown there anyway.)
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # pragma: no cover - ICU is built into the PyPI wheels
        pass
    return con, tmpdir


def _close(con: duckdb.DuckDBPyConnection, tmpdir: str) -> None:
    con.close()
    shutil.rmtree(tmpdir, ignore_errors=True)


def _register_source(con: duckdb.DuckDBPyConnection, source: Any, columns: list[str],
                     csv_options: dict[str, Any]) -> tuple[str, str, dict[str, str], str]:
    """Expose the source as a view named ``src``; return (view, description, column types, decimal
    separator)."""
    decimal = "."
    if isinstance(source, pd.DataFrame):
        if csv_options:
            raise DataError("csv_options apply to CSV files, and the source is a DataFrame")
        if source.shape[1] == 0:
            raise DataError(f"the DataFrame has no columns (expected {', '.join(columns)})", columns=columns)
        _check_id_types(source, columns[0])
        name = f"_clv_input_{next(_counter)}"
        try:
            con.register(name, source)
        except duckdb.Error as exc:
            raise DataError(f"cannot read the DataFrame: {str(exc).splitlines()[0]}") from None
        con.execute(f"CREATE VIEW src AS SELECT * FROM {name}")
        description = "the DataFrame"
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        files = sorted(_glob.glob(path)) if _glob.has_magic(path) else ([path] if os.path.exists(path) else [])
        if not files:
            raise DataError(f"no transaction file found at {path!r}")
        for name in files:
            if os.path.isdir(name):
                raise DataError(f"{name} is a folder; give a CSV/Parquet file or a glob such as "
                                f"{os.path.join(name, '*.parquet')!r}")
            if os.path.getsize(name) == 0:
                raise DataError(f"{name} is empty")
        lower = path.lower()
        if csv_options and not lower.endswith(_CSV_SUFFIXES):
            raise DataError(f"csv_options apply to CSV files, and {path!r} is not one")
        opts, decimal = _csv_options(csv_options)
        if lower.endswith(_PARQUET_SUFFIXES):
            reader = f"read_parquet({_literal(path)})"
        elif lower.endswith(_CSV_SUFFIXES):
            # Read the header first so that the wanted columns are taken as text and parsed by us: a bad
            # value deep in the file then becomes a row-level DataError, not a DuckDB conversion crash.
            header = _csv_header(con, path, files, opts)
            types = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in columns if c in header)
            reader = f"read_csv({_literal(path)}, header=true, types={{{types}}}{opts})"
        else:
            raise DataError(f"cannot tell the format of {path!r}: give a .csv or .parquet file")
        try:
            con.execute(f"CREATE VIEW src AS SELECT * FROM {reader}")
        except duckdb.Error as exc:
            raise (_csv_error(exc, files[0]) if reader.startswith("read_csv") else
                   DataError(f"cannot read {path!r}: {str(exc).splitlines()[0]}")) from None
        description = path
    else:
        raise TypeError(f"source must be a DataFrame or a path to a CSV/Parquet file, not {type(source).__name__}")
    try:
        described = con.execute("DESCRIBE SELECT * FROM src").fetchall()
    except duckdb.Error as exc:
        raise DataError(f"cannot read {description}: {str(exc).splitlines()[0]}") from None
    return "src", description, {row[0]: str(row[1]).upper() for row in described}, decimal


def _csv_header(con: duckdb.DuckDBPyConnection, path: str, files: list[str], opts: str) -> list[str]:
    """The column names DuckDB sniffs in a CSV file; DataError, naming the line, when the rows disagree."""
    def describe(extra: str) -> list[str]:
        probe = f"read_csv({_literal(path)}, header=true{opts}{extra})"
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {probe}").fetchall()]

    try:
        header = describe("")
        if len(header) == 1 and "delim" not in opts and "sep" not in opts:
            # One column whose name holds a delimiter: the sniffer found no delimiter that splits every
            # row alike. Reading with that delimiter names the first line that disagrees with the header.
            delims = [d for d in (",", ";", "\t", "|") if d in header[0]]
            if delims:
                names = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header[0].split(delims[0]))))
                con.execute(f"SELECT count(*) FROM read_csv({_literal(path)}, header=true{opts}, auto_detect=false, "
                            f"delim={_literal(delims[0])}, columns={{{names}}})").fetchall()
    except duckdb.Error as exc:
        raise _csv_error(exc, files[0]) from None
    return header


def _date_expression(column: str, dtype: str, date_format: str | None) -> tuple[str, str]:
    """SQL for (missing test, parsed TIMESTAMP) of the date column, or raise DataError for its type.

    A time with a UTC offset (text such as ``2024-01-01T23:30:00-05:00``, or a TIMESTAMP WITH TIME ZONE)
    becomes its UTC time (the connection's time zone); a time without one is kept as written."""
    col = _ident(column)
    if dtype == "VARCHAR":
        missing = f"({col} IS NULL OR trim({col}) = '')"
        text = f"trim({col})"
        parsed = (f"CAST(try_strptime({text}, {_literal(date_format)}) AS TIMESTAMP)" if date_format else
                  f"CASE WHEN regexp_full_match({text}, {_literal(ISO_TIMESTAMP)}) "
                  f"THEN CAST(try_cast({text} AS TIMESTAMPTZ) AS TIMESTAMP) END")
        return missing, parsed
    if dtype == "DATE" or dtype.startswith("TIMESTAMP"):
        if date_format:
            raise DataError(f"date_format was given but the date column already has type {dtype}",
                            columns=[column])
        # A TIMESTAMP WITH TIME ZONE becomes a calendar day in UTC (the connection's time zone).
        return f"({col} IS NULL)", f"CAST({col} AS TIMESTAMP)"
    if dtype in _INTEGER:
        if not date_format:
            raise DataError(f"the date column holds integers ({dtype}); say how to read them, "
                            "e.g. date_format='%Y%m%d'", columns=[column])
        return f"({col} IS NULL)", f"try_strptime(CAST({col} AS VARCHAR), {_literal(date_format)})"
    raise DataError(f"the date column has type {dtype}, which is not a date, timestamp or text",
                    columns=[column])


def _amount_expression(column: str, dtype: str, decimal: str = ".") -> tuple[str, str]:
    """SQL for (missing test, parsed DOUBLE) of the amount column, or raise DataError for its type. With a
    decimal comma, text holding a point (a thousands separator?) is not a number."""
    col = _ident(column)
    if dtype == "VARCHAR":
        text = f"trim({col})"
        parsed = (f"try_cast({text} AS DOUBLE)" if decimal == "." else
                  f"CASE WHEN NOT contains({text}, '.') THEN try_cast(replace({text}, ',', '.') AS DOUBLE) END")
        return f"({col} IS NULL OR {text} = '')", parsed
    if dtype in _NUMERIC or dtype.startswith("DECIMAL"):
        return f"({col} IS NULL)", f"CAST({col} AS DOUBLE)"
    raise DataError(f"the amount column has type {dtype}, which is not numeric", columns=[column])


def read_transactions(
    source: pd.DataFrame | str | os.PathLike,
    customer: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    *,
    date_format: str | None = None,
    observation_end: Any = None,
    returns: str = "error",
    csv_options: dict[str, Any] | None = None,
    attributes: Mapping[str, str] | Sequence[str] | None = None,
) -> TransactionLog:
    """Read, validate and merge a transaction log.

    Parameters
    ----------
    source
        A pandas DataFrame, or the path of a CSV or Parquet file; a glob (``"logs/*.parquet"``) reads
        several files as one log. Files are scanned by DuckDB and never loaded whole into pandas.
    customer, date, amount
        Column names. ``amount`` is optional: without it the summaries carry no monetary value.
    date_format
        strptime format for text or integer dates (``"%Y%m%d"`` for CDNOW's 19970101). Without it,
        text dates must be ISO 8601 (``2024-03-01``, ``2024-03-01 14:05:00``, or with a UTC offset after
        the time: ``2024-03-01T14:05:00+01:00``, ``...Z``) and integers are refused. One rule for every
        input: a time with a UTC offset (such text, a time-zone-aware DataFrame column, a Parquet
        TIMESTAMP WITH TIME ZONE) counts on its calendar day in UTC; a time without one on its own
        calendar day. Zone names (``Europe/Paris``) in text are refused.
    observation_end
        The end of the observation period, if known: the log is complete up to this date. Transactions
        after it are an error, and summaries may be taken up to it without a warning.
    returns
        Negative amounts (returns, refunds): ``"error"`` (default) refuses them; ``"drop"`` removes those
        rows; ``"net"`` subtracts them from the same customer's purchases on the same day, removes days
        that net to zero and refuses days that net below zero.
    csv_options
        Options for DuckDB's ``read_csv``, from :data:`CSV_OPTIONS` only: ``delim`` (or ``sep``), ``quote``,
        ``escape``, ``comment`` (one character each, the delimiter up to 4), ``decimal_separator`` (``"."``
        or ``","``; with ``","`` an amount holding a point is not a number), ``encoding`` (``"utf-8"``,
        ``"utf-16"`` or ``"latin-1"``), ``header`` (bool) and ``skip`` (lines). Values are type-checked and
        written as escaped literals. CSV files only.
    attributes
        Columns of customer attributes (channel, region, ...) that summaries carry per customer, each with
        the rule that picks one value per customer from the customer's transactions up to the summary's
        end: ``"first"`` (the value of the earliest transaction: the acquisition channel), ``"last"``
        (the latest) or ``"mode"`` (the most frequent; a tie goes to the value seen first). A list takes
        ``"first"`` for each. Rows where the attribute is missing are skipped; a customer with no value
        gets a missing value. Transactions at the same time are taken in order of value. CSV values are
        typed as DuckDB detects them (numbers stay numbers).

    Returns
    -------
    TransactionLog
        One row per customer and purchase day; same-day transactions merged, amounts summed.

    Raises
    ------
    DataError
        Missing columns; missing customer ids, ids with leading or trailing spaces (ids are kept exactly
        as given, so ``" a"`` and ``"a"`` would be two customers), a DataFrame id column mixing Python
        types (``1`` and ``"1"``); missing or unparseable dates; missing, non-numeric, NaN or infinite
        amounts; amounts whose total reaches :data:`AMOUNT_LIMIT`; negative amounts under
        ``returns="error"``; transactions after ``observation_end``; an empty log. The message names the
        columns, the first offending rows (0-based positions in input order) and how many there are. A
        file that cannot be parsed (a line with the wrong number of fields, text that is not in the
        encoding, an empty file, a folder) is named with its line.

    Warns
    -----
    DataWarning
        When rows are exact duplicates (same customer, timestamp and amount): they are kept, since two
        identical purchases are possible, but they double that day's amount if they are a data error.
    """
    if returns not in RETURNS_POLICIES:
        raise ValueError(f"returns must be one of {RETURNS_POLICIES}, got {returns!r}")
    end = to_date(observation_end, "observation_end") if observation_end is not None else None
    wanted = [c for c in (customer, date, amount) if c is not None]
    if len(set(wanted)) != len(wanted):
        raise DataError("customer, date and amount must be three different columns", columns=wanted)
    rules = attribute_rules(attributes, wanted)

    csv_options = dict(csv_options or {})
    con, tmpdir = _connect()
    try:
        if date_format is not None:
            try:
                con.execute("SELECT try_strptime('', $f)", {"f": str(date_format)}).fetchall()
            except duckdb.Error as exc:
                raise DataError(f"date_format={date_format!r} is not a valid strptime format "
                                f"({str(exc).splitlines()[0].split(': ', 1)[-1]})") from None
        _, description, dtypes, decimal = _register_source(con, source, wanted, csv_options)
        missing_cols = [c for c in [*wanted, *rules] if c not in dtypes]
        if missing_cols:
            available = ", ".join(list(dtypes)[:20])
            raise DataError(f"missing column{'s' if len(missing_cols) > 1 else ''} in {description} "
                            f"(available: {available})", columns=missing_cols)
        try:
            log = _validate_and_merge(con, description, customer, date, amount, dtypes, date_format, end, returns,
                                      decimal, rules)
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:  # the file, read past the sniffer
            if isinstance(source, pd.DataFrame):
                raise
            raise _csv_error(exc, description) if "CSV Error" in str(exc) else DataError(
                f"cannot read {description!r}: {str(exc).splitlines()[0]}") from None
    except BaseException:
        _close(con, tmpdir)
        raise
    weakref.finalize(log, _close, con, tmpdir)
    return log


def attribute_rules(attributes: Mapping[str, str] | Sequence[str] | None, taken: list[str]) -> dict[str, str]:
    """``{column: rule}`` from :func:`read_transactions`' ``attributes`` (checked: known rules, no column of
    the log's own, no summary column name)."""
    if attributes is None:
        return {}
    if isinstance(attributes, str):
        raise ValueError(f"attributes must be a list of columns or a mapping column -> rule, e.g. "
                         f"{{{attributes!r}: 'first'}}, not the string {attributes!r}")
    rules = dict(attributes) if isinstance(attributes, Mapping) else {c: "first" for c in attributes}
    bad = {c: r for c, r in rules.items() if r not in ATTRIBUTE_RULES}
    if bad:
        raise ValueError(f"attribute rules must be one of {', '.join(ATTRIBUTE_RULES)}; got {bad}")
    clash = [c for c in rules if c in taken or c in SUMMARY_COLUMNS or c == "customer_id"]
    if clash:
        raise DataError("an attribute cannot be the customer, date or amount column, or have a summary "
                        "column's name (customer_id, frequency, recency, T, ...)", columns=clash)
    return rules


def _validate_and_merge(con, description, customer, date, amount, dtypes, date_format, end, returns, decimal,
                        rules=None):
    cust = _ident(customer)
    text_ids = dtypes[customer] == "VARCHAR"
    cust_missing = f"({cust} IS NULL OR trim({cust}) = '')" if text_ids else f"({cust} IS NULL)"
    date_missing, date_parsed = _date_expression(date, dtypes[date], date_format)
    select = [f"{cust} AS customer_id", f"{cust_missing} AS _cust_missing",
              f"({cust} <> trim({cust})) AS _cust_spaced" if text_ids else "false AS _cust_spaced",
              f"{date_missing} AS _date_missing", f"{date_parsed} AS _ts"]
    if amount is not None:
        amount_missing, amount_parsed = _amount_expression(amount, dtypes[amount], decimal)
        select += [f"{amount_missing} AS _amount_missing", f"{amount_parsed} AS amount"]
    rules = rules or {}
    select += [f"{_ident(c)} AS _attr_{i}" for i, c in enumerate(rules)]
    con.execute(f"CREATE VIEW parsed AS SELECT {', '.join(select)} FROM src")

    checks = validation_checks(customer, date, amount, date_format, returns, end)
    failing = " OR ".join(f"coalesce({c.condition}, false)" for c in checks)
    con.execute(f"CREATE VIEW checked AS SELECT *, CAST(_ts AS DATE) AS _day, ({failing}) AS _bad FROM parsed")

    stats: dict[str, Any] = {"observation_end": end, "returns": returns}
    keep = ""
    if amount is not None and returns != "error":
        stats["n_returns"] = con.execute("SELECT count(*) FROM parsed WHERE amount < 0").fetchone()[0]
        keep = "WHERE amount >= 0" if returns == "drop" else ""
    netted = returns == "net" and amount is not None
    # The one big pass: rows -> purchase days, counting the rows that fail a check on the way. A log
    # with such rows is refused after it, by a scan that finds them.
    _merge_days(con, amount is not None, netted, keep and f"{keep} OR _bad")
    n_merged, n_bad = con.execute("SELECT coalesce(sum(n_rows), 0), count(*) FILTER (WHERE _bad) FROM daily").fetchone()
    n_rows = stats["n_rows"] = int(n_merged) + (stats["n_returns"] if keep else 0)  # (+ the rows dropped)
    if n_rows == 0:
        raise DataError(f"the transaction log {description} is empty")
    if n_bad:
        counts = con.execute("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE coalesce({c.condition}, false))" for c in checks) + " FROM parsed").fetchone()
        raise _row_errors(con, description, [(check, int(n)) for check, n in zip(checks, counts) if n])
    con.execute("ALTER TABLE daily DROP COLUMN _bad")
    if netted:
        over = con.execute("SELECT count(*), min(customer_id::VARCHAR), min(date) FROM daily "
                           "WHERE _had_return AND round(amount, 9) < 0").fetchone()
        if over[0]:
            raise DataError(f"{over[0]:,} customer-days in {description} have returns larger than that day's "
                            f"purchases (first: customer {over[1]} on {over[2]}); use returns='drop' for "
                            "returns of earlier purchases")
        stats["n_cancelled_days"] = con.execute(
            "SELECT count(*) FROM daily WHERE _had_return AND round(amount, 9) = 0").fetchone()[0]
        con.execute("DELETE FROM daily WHERE _had_return AND round(amount, 9) = 0")
        con.execute("ALTER TABLE daily DROP COLUMN _had_return")
        if stats["n_cancelled_days"]:  # a cancelled day was the previous purchase day of the next one
            con.execute(f"CREATE OR REPLACE TABLE daily AS SELECT * EXCLUDE (_previous), {PREVIOUS_DAY} FROM daily")
    if amount is not None:
        (total,) = con.execute("SELECT sum(abs(amount)) FROM daily").fetchone()
        if total is not None and not total < AMOUNT_LIMIT:  # (None: no day left, which the log refuses)
            largest = con.execute(
                "SELECT customer_id::VARCHAR, sum(abs(amount)) AS s FROM daily GROUP BY customer_id "
                "ORDER BY s DESC LIMIT 5").fetchall()
            check_amount_scale(description, amount, total, largest)

    # Exact duplicates, counted on the days the log keeps. Without amounts a duplicate changes nothing
    # (the day is one purchase either way), so none are counted.
    stats["n_duplicated_rows"] = 0
    if amount is not None:
        (stats["n_duplicated_rows"],) = con.execute(
            "SELECT coalesce(sum(n_repeated), 0) FROM _repeats SEMI JOIN daily USING (customer_id, date)").fetchone()
        con.execute("DROP TABLE _repeats")
    if stats["n_duplicated_rows"]:
        warn(f"{stats['n_duplicated_rows']:,} of {n_rows:,} rows in {description} repeat an earlier row exactly "
             "(same customer, timestamp and amount); they are kept and their amounts added to that day")
    if rules:
        # the attributes' rows, kept apart so that each summary picks its values up to its own end
        attrs = ", ".join(f"_attr_{i}" for i in range(len(rules)))
        # (of the purchase days the log keeps: a day its returns cancelled gives no attribute)
        con.execute(f"CREATE TABLE attribute_rows AS SELECT p.customer_id, p._ts, {attrs} FROM parsed AS p "
                    "SEMI JOIN daily AS d ON p.customer_id = d.customer_id AND CAST(p._ts AS DATE) = d.date "
                    + keep.replace("WHERE amount", "WHERE p.amount"))
        stats["attributes"] = rules
    con.execute("DROP VIEW parsed")
    con.execute("DROP VIEW src")
    return TransactionLog(con, "daily", has_amount=amount is not None, source=description, stats=stats)


def _merge_days(con: duckdb.DuckDBPyConnection, has_amount: bool, netted: bool, keep: str = "") -> None:
    """Create the table ``daily`` of the checked rows (view ``checked``, with the day ``_day`` of each
    row, filtered by ``keep``): one row per customer and calendar day with the rows' summed ``amount``,
    ``n_rows`` (how many rows the day merges), ``_previous`` (the customer's previous purchase day; NULL
    on the first), ``_bad`` (whether one of its rows fails a check: column ``_bad``) and, when
    ``netted``, ``_had_return``; with amounts, also the table ``_repeats`` of the days with rows that
    repeat another exactly (same timestamp and amount), and how many repeat (``n_repeated``).

    One sort by customer and day (a window) writes the first row of each day, with the day of the row
    before it and whether the next row is on the same day. The rows of those few multi-row days are
    then read again and their totals written into their days. (A hash aggregation of every row would
    build a table as large as the log, since almost every day holds one row.) A row without a day (a
    failed date) stays a row of its own, so that it is counted.
    """
    amount = ", amount" if has_amount else ""
    had_return = ", amount < 0 AS _had_return" if netted else ""
    window = "OVER (PARTITION BY customer_id ORDER BY _day)"
    con.execute(f"CREATE TABLE daily AS SELECT * FROM (SELECT customer_id, _day AS date{amount}, "
                f"CAST(1 AS INTEGER) AS n_rows, lag(_day) {window} AS _previous, _bad{had_return}, "
                f"lead(_day) {window} = _day AS _multi FROM checked {keep}) "
                "WHERE date IS NULL OR _previous IS DISTINCT FROM date")
    con.execute("CREATE TEMP TABLE _multi_rows AS SELECT customer_id, _day AS date, _ts, _bad" + amount
                + " FROM checked AS p SEMI JOIN (SELECT customer_id, date FROM daily WHERE _multi) AS m "
                f"ON p.customer_id = m.customer_id AND p._day = m.date {keep}")
    con.execute("ALTER TABLE daily DROP COLUMN _multi")
    totals = ["CAST(count(*) AS INTEGER) AS n_rows", "bool_or(_bad) AS bad"]
    sets = ["n_rows = e.n_rows", "_bad = e.bad"]
    if has_amount:
        totals.append("sum(amount) AS amount")
        sets.append("amount = e.amount")
    if netted:
        totals.append("bool_or(amount < 0) AS had_return")
        sets.append("_had_return = e.had_return")
    con.execute(f"UPDATE daily AS d SET {', '.join(sets)} FROM (SELECT customer_id, date, {', '.join(totals)} "
                "FROM _multi_rows GROUP BY customer_id, date) AS e "
                "WHERE d.customer_id = e.customer_id AND d.date = e.date")
    if has_amount:
        con.execute("CREATE TEMP TABLE _repeats AS SELECT customer_id, date, sum(c - 1) AS n_repeated FROM "
                    "(SELECT customer_id, date, count(*) AS c FROM _multi_rows GROUP BY customer_id, date, _ts, amount "
                    "HAVING count(*) > 1) GROUP BY customer_id, date")
    con.execute("DROP TABLE _multi_rows")


def check_amount_scale(description: str, column: str, total: float, largest: list[tuple[str, float]]) -> None:
    """Refuse amounts too large to compute with: the log's total of absolute amounts (``total``) must be
    below :data:`AMOUNT_LIMIT`. ``largest`` holds the customers with the largest totals, largest first;
    those over the limit on their own are named (else the first five)."""
    if total < AMOUNT_LIMIT:
        return
    over = [(c, v) for c, v in largest if not v < AMOUNT_LIMIT] or largest
    named = ", ".join(f"customer {c} ({v:.3g})" for c, v in over)
    raise DataError(f"{description}: amounts too large to compute with: they add up to {total:.3g}, over "
                    f"{AMOUNT_LIMIT:.3g}, where squares of spend totals (the Gamma-Gamma variance, squared "
                    f"errors) overflow; largest: {named}; express amounts in a larger unit (thousands, millions)",
                    columns=[column])


def _check_id_types(df: pd.DataFrame, column: str) -> None:
    """Refuse an object column of ids that mixes Python types (1 and "1" would become one text id)."""
    if column not in df.columns or df[column].dtype != object:
        return
    kind = pd.api.types.infer_dtype(df[column], skipna=True)
    if kind in ("string", "integer", "empty", "bytes", "boolean", "floating", "decimal"):
        return
    values = df[column]
    types = values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else type(v).__name__)
    counts = types.value_counts()
    if len(counts) < 2:
        return
    odd = types.notna() & (types != counts.index[0])
    rows = [int(i) for i in odd.to_numpy().nonzero()[0]]
    raise DataError(f"the customer id column mixes Python types ({', '.join(f'{n} {t}' for t, n in counts.items())}),"
                    " which would merge ids such as 1 and '1'; give every id one type (all text, or all integers)",
                    columns=[column], rows=rows[:5], n_rows=len(rows))


def _row_errors(con, description: str, failed: list[tuple[_Check, int]]) -> DataError:
    """Collect the first offending row positions of every failed check into one DataError."""
    # One thread and insertion order kept: row_number() OVER () then numbers rows in input order.
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    problems = []
    for check, n in failed:
        rows = [r[0] for r in con.execute(
            f"SELECT _row FROM (SELECT row_number() OVER () - 1 AS _row, * FROM parsed) "
            f"WHERE coalesce({check.condition}, false) ORDER BY _row LIMIT 5"
        ).fetchall()]
        problems.append(DataError(check.reason, columns=[check.column], rows=rows, n_rows=n))
    return combine_errors(description, problems)


def combine_errors(description: str, problems: list[DataError]) -> DataError:
    """One DataError for all failed checks of a log (each names its column, first rows and count)."""
    if len(problems) == 1:
        err = problems[0]
        err.args = (f"{description}: {err.args[0]}",)
        return err
    merged = DataError(f"{description}: " + "; ".join(str(p) for p in problems))
    merged.columns = tuple(sorted({p.columns[0] for p in problems}))
    merged.problems = problems  # type: ignore[attr-defined]
    return merged
