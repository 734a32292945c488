"""Reading and validating transaction logs: every bad input gets a DataError naming rows and columns."""

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError, DataWarning


def read(df, **kw):
    kw.setdefault("amount", "amount")
    return clv.read_transactions(df, customer="customer_id", date="date", **kw)


def test_same_day_transactions_merge_into_one_purchase(small_log):
    log = read(small_log)
    assert log.n_rows == 6 and log.n_purchases == 5 and log.n_customers == 3
    daily = log.to_pandas()
    a = daily[daily.customer_id == "a"]
    assert a["amount"].tolist() == [10.0, 12.0]
    assert str(log.first_date) == "2024-01-01" and str(log.last_date) == "2024-02-05"


def test_missing_columns_are_named(small_log):
    with pytest.raises(DataError, match="missing column") as err:
        clv.read_transactions(small_log, customer="cust", date="day", amount="amount")
    assert err.value.columns == ("cust", "day")
    assert "available: customer_id, date, amount" in str(err.value)


@pytest.mark.parametrize(
    "column, values, reason",
    [
        ("customer_id", ["a", None, "a", "b", "c", ""], "missing customer id"),
        ("date", ["2024-01-01", None, "2024-01-08", "2024-01-03", "2024-01-05", "2024-02-05"], "missing date"),
        ("date", ["2024-01-01", "2024-13-45", "2024-01-08", "yesterday", "2024-01-05", "2024-02-05"],
         "unparseable date"),
        ("amount", [10.0, np.nan, 7.0, 3.0, 4.0, 6.0], "missing amount"),
        ("amount", [10.0, 5.0, np.inf, 3.0, np.inf, 6.0], "infinite amount"),
        ("amount", ["10", "5", "seven", "3", "4", "six"], "non-numeric amount"),
        ("amount", [10.0, 5.0, 7.0, -3.0, 4.0, 6.0], "negative amount"),
    ],
)
def test_bad_values_name_their_rows_and_column(small_log, column, values, reason):
    df = small_log.copy()
    df[column] = values
    with pytest.raises(DataError, match=reason) as err:
        read(df)
    expected_rows = {
        "missing customer id": (1, 5), "missing date": (1,), "unparseable date": (1, 3), "missing amount": (1,),
        "infinite amount": (2, 4), "non-numeric amount": (2, 5), "negative amount": (3,),
    }[reason]
    assert err.value.rows == expected_rows
    assert err.value.columns == (column,)
    assert err.value.n_rows == len(expected_rows)


@pytest.mark.parametrize("returns", ["error", "drop", "net"])
@pytest.mark.parametrize("bad", ["dates", "all"])
def test_failing_rows_are_found_whatever_day_they_share(returns, bad):
    # rows are checked while they are merged into days, and none may be merged away unseen: two rows of
    # one customer without a date (alone, or with a missing amount on a day with a good row and a
    # missing id)
    df = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b", "c"],
                       "date": ["2024-01-01", None, None, "2024-01-02", "2024-01-02", "2024-01-02"],
                       "amount": [1.0, 2.0, 3.0, 4.0, 6.0, 5.0]})
    expected = {"missing date": (1, 2)}
    if bad == "all":
        df.loc[4, "amount"], df.loc[5, "customer_id"] = np.nan, None
        expected.update({"missing amount": (4,), "missing customer id": (5,)})
    with pytest.raises(DataError) as err:
        read(df, returns=returns)
    problems = getattr(err.value, "problems", [err.value])
    assert {str(p).split(" [")[0].split(": ")[-1]: p.rows for p in problems} == expected


def test_nan_amount_from_text_is_reported_as_nan():
    df = pd.DataFrame({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": ["1.5", "NaN"]})
    with pytest.raises(DataError, match="NaN amount") as err:
        read(df)
    assert err.value.rows == (1,)


def test_a_nan_amount_in_a_parquet_file_is_found(tmp_path):
    # pyarrow writes NaN as NaN (pandas writes it as null) and leaves it out of the column's min and max:
    # DuckDB's statistics then prove "WHERE isnan(amount)" false and count 0 rows. The checks must not.
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    amounts = np.ones(20)
    amounts[5] = np.nan
    pq.write_table(pa.table({"customer_id": np.arange(20) % 3, "date": pd.date_range("2024-01-01", periods=20).values,
                             "amount": pa.array(amounts, from_pandas=False)}), tmp_path / "nan.parquet")
    with pytest.raises(DataError, match="NaN amount") as err:
        clv.read_transactions(tmp_path / "nan.parquet", amount="amount")
    assert err.value.rows == (5,)


def test_several_problems_are_reported_together(small_log):
    df = small_log.copy()
    df.loc[0, "customer_id"] = None
    df.loc[4, "amount"] = -1.0
    with pytest.raises(DataError) as err:
        read(df)
    msg = str(err.value)
    assert "missing customer id" in msg and "negative amount" in msg
    assert set(err.value.columns) == {"customer_id", "amount"}


def test_many_bad_rows_are_counted_not_all_listed():
    df = pd.DataFrame({"customer_id": range(100), "date": ["bad"] * 100, "amount": 1.0})
    with pytest.raises(DataError, match=r"100 rows \(0-based row 0, 1, 2, 3, 4 and 95 more\)"):
        read(df)


def test_transactions_after_the_observation_end(small_log):
    with pytest.raises(DataError, match="after the observation end 2024-01-31") as err:
        read(small_log, observation_end="2024-01-31")
    assert err.value.rows == (5,)
    assert read(small_log, observation_end="2024-03-01").observation_end.isoformat() == "2024-03-01"


def test_empty_log():
    df = pd.DataFrame({"customer_id": pd.Series([], dtype="int64"), "date": pd.Series([], dtype="datetime64[ns]"),
                       "amount": pd.Series([], dtype="float64")})
    with pytest.raises(DataError, match="empty"):
        read(df)


def test_integer_dates_need_a_format(small_log):
    df = small_log.assign(date=small_log["date"].dt.strftime("%Y%m%d").astype("int64"))
    with pytest.raises(DataError, match="date_format"):
        read(df)
    log = read(df, date_format="%Y%m%d")
    assert log.n_purchases == 5


def test_returns_drop_and_net(small_log):
    df = pd.concat([small_log, pd.DataFrame({
        "customer_id": ["a", "b", "c"], "date": pd.to_datetime(["2024-01-08", "2024-01-03", "2024-03-01"]),
        "amount": [-2.0, -3.0, -1.0]})], ignore_index=True)
    with pytest.raises(DataError, match="negative amount"):
        read(df)
    dropped = read(df, returns="drop")
    assert dropped.n_returns == 3 and dropped.n_purchases == 5
    # net: a's day nets to 10, b's only purchase is cancelled, c's lone return has nothing to net against
    with pytest.raises(DataError, match="returns larger than that day's purchases"):
        read(df, returns="net")
    netted = read(df.iloc[:-1], returns="net").to_pandas()
    assert netted.loc[netted.customer_id == "a", "amount"].tolist() == [10.0, 10.0]
    assert "b" not in set(netted.customer_id)
    assert read(df.iloc[:-1], returns="net").n_cancelled_days == 1


def test_a_day_cancelled_by_returns_is_not_a_gap_or_a_repeat_purchase():
    # a buys on the 1st, 5th and 12th; the 5th is returned in full that day. Under returns="net" the
    # summary is that of a log without the 5th: one gap of 11 days, the 12th's amount as repeat spend.
    df = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b"],
                       "date": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-05", "2024-01-12",
                                               "2024-01-12"]),
                       "amount": [10.0, 4.0, -4.0, 7.0, 3.0]})
    netted = clv.rfm_summary(read(df, returns="net"), time_unit="D")
    without = clv.rfm_summary(read(df[df["date"] != "2024-01-05"]), time_unit="D")
    pd.testing.assert_frame_equal(netted, without)
    assert netted.loc["a", "litt"] == pytest.approx(np.log(11.0))
    assert netted.loc["a", "monetary_value"] == 7.0


def test_returns_options_on_a_log_without_amounts_and_a_log_left_empty():
    # found by differential testing: returns="drop" without an amount column raised KeyError 'n_returns'
    # (and hid a bad row's DataError); a log whose rows are all returns ended in a TypeError
    df = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2024-01-01", "2024-01-05"]})
    log = clv.read_transactions(df, returns="drop")
    assert (log.n_rows, log.n_purchases, log.n_returns) == (2, 2, 0)
    with pytest.raises(DataError, match="missing date") as err:
        clv.read_transactions(df.assign(date=["2024-01-01", None]), returns="drop")
    assert err.value.rows == (1,)
    returns = pd.DataFrame({"customer_id": ["a", "b"], "date": ["2024-01-02", "2024-01-03"], "amount": [-1.0, -2.0]})
    with pytest.raises(DataError, match="no purchases left after validation"):
        read(returns, returns="drop")
    cancelled = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2024-01-02", "2024-01-02"], "amount": [1.0, -1.0]})
    with pytest.raises(DataError, match="no purchases left after validation"):
        read(cancelled, returns="net")


def test_duplicated_rows_warn_and_are_kept(small_log):
    df = pd.concat([small_log, small_log.iloc[[0, 3]]], ignore_index=True)
    with pytest.warns(DataWarning, match="2 of 8 rows"):
        log = read(df)
    assert log.n_duplicated_rows == 2
    assert log.to_pandas().query("customer_id == 'b'")["amount"].tolist() == [6.0]


def test_no_warning_without_duplicates(small_log):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(small_log)


def test_unknown_source_and_files(tmp_path, small_log):
    with pytest.raises(DataError, match="no transaction file"):
        clv.read_transactions(tmp_path / "nope.csv")
    (tmp_path / "log.xlsx").write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        clv.read_transactions(tmp_path / "log.xlsx")
    with pytest.raises(TypeError):
        clv.read_transactions(42)


def test_csv_bad_value_deep_in_the_file_is_a_row_error(tmp_path):
    n = 50_000
    df = pd.DataFrame({"customer_id": np.arange(n) % 97, "date": "2024-01-01", "amount": "1.5"})
    df.loc[n - 3, "amount"] = "oops"
    path = tmp_path / "log.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="non-numeric amount") as err:
        read(path)
    assert err.value.rows == (n - 3,)


def test_csv_customer_ids_keep_leading_zeros(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\n007,2024-01-01,1\n07,2024-01-02,2\n")
    log = read(path)
    assert sorted(log.to_pandas()["customer_id"]) == ["007", "07"]


def test_parquet_glob_reads_many_files_as_one_log(tmp_path, small_log):
    small_log.iloc[:3].to_parquet(tmp_path / "part1.parquet")
    small_log.iloc[3:].to_parquet(tmp_path / "part2.parquet")
    log = read(str(tmp_path / "part*.parquet"))
    assert (log.n_rows, log.n_purchases, log.n_customers) == (6, 5, 3)


def test_timezone_aware_dates_become_utc_days():
    df = pd.DataFrame({"customer_id": [1, 1], "amount": [1.0, 2.0],
                       "date": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 00:30"]).tz_localize("Europe/Paris")})
    days = read(df).to_pandas()["date"].dt.strftime("%Y-%m-%d").tolist()
    # 23:30 and 00:30 in Paris are 22:30 and 23:30 UTC on 1 January: one purchase day
    assert days == ["2024-01-01"]


def test_same_column_twice_is_refused(small_log):
    with pytest.raises(DataError, match="three different columns"):
        clv.read_transactions(small_log, customer="customer_id", date="date", amount="date")


def test_a_dataframe_without_columns_is_a_data_error():
    with pytest.raises(DataError, match="no columns"):
        clv.read_transactions(pd.DataFrame(), amount="amount")


# --- one time-zone rule for every input (issue 12, item 6) ---------------------------------------

def test_utc_offsets_give_the_utc_day_from_every_input(tmp_path):
    stamps = ["2024-01-01T23:30:00-05:00", "2024-01-03T01:00:00+02:00", "2024-01-05 10:00", "2024-01-06T00:30:00Z"]
    text = pd.DataFrame({"customer_id": [1, 1, 1, 1], "date": stamps, "amount": [1.0, 2.0, 3.0, 4.0]})
    aware = text.assign(date=pd.to_datetime(stamps, utc=True, format="ISO8601"))
    text.to_csv(tmp_path / "log.csv", index=False)
    aware.to_parquet(tmp_path / "log.parquet")
    expected = ["2024-01-02", "2024-01-02", "2024-01-05", "2024-01-06"]
    for source in (text, aware, tmp_path / "log.csv", tmp_path / "log.parquet"):
        daily = read(source).to_pandas()
        assert daily["date"].dt.strftime("%Y-%m-%d").tolist() == sorted(set(expected)), source
        assert daily["amount"].tolist() == [3.0, 3.0, 4.0]


def test_named_time_zones_in_text_are_refused():
    # only numeric offsets and Z are read (as in Spark); a zone name is an unparseable date, not dropped
    df = pd.DataFrame({"customer_id": [1, 1], "date": ["2024-01-01 10:00 Europe/Paris", "2024-01-02"],
                       "amount": [1.0, 2.0]})
    with pytest.raises(DataError, match="unparseable date") as err:
        read(df)
    assert err.value.rows == (0,)


# --- ids: no silent merge (issue 12, item 8) ------------------------------------------------------

def test_mixed_id_types_are_refused_with_their_rows():
    df = pd.DataFrame({"customer_id": [1, "1", 2, "x", 3.0], "date": ["2024-01-01"] * 5, "amount": [1.0] * 5})
    with pytest.raises(DataError, match="mixes Python types") as err:
        read(df)
    assert err.value.columns == ("customer_id",)
    assert "int" in str(err.value) and "str" in str(err.value) and "float" in str(err.value)
    assert err.value.rows == (1, 3, 4)  # the rows not of the most common type (int)


def test_ids_with_surrounding_spaces_are_refused(tmp_path):
    df = pd.DataFrame({"customer_id": ["a", " a", "a ", "b"], "date": ["2024-01-01"] * 4, "amount": [1.0] * 4})
    with pytest.raises(DataError, match="leading or trailing spaces") as err:
        read(df)
    assert err.value.rows == (1, 2)
    (tmp_path / "log.csv").write_text("customer_id,date,amount\na,2024-01-01,1\n\" a\",2024-01-02,1\n")
    with pytest.raises(DataError, match="leading or trailing spaces") as err:
        read(tmp_path / "log.csv")
    assert err.value.rows == (1,)


def test_ids_are_kept_exactly_as_given():
    df = pd.DataFrame({"customer_id": ["a", "A", "007", "7"], "date": ["2024-01-01"] * 4, "amount": [1.0] * 4})
    assert sorted(read(df).to_pandas()["customer_id"]) == ["007", "7", "A", "a"]


# --- amounts a double cannot sum (issue 12, item 9) -----------------------------------------------

def test_amounts_whose_sums_overflow_are_refused_naming_customers():
    df = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"],
                       "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-01"],
                       "amount": [1.0, 1e308, 1e308, 5.0, 1e200]})
    with pytest.raises(DataError, match="too large") as err:
        read(df)
    assert err.value.columns == ("amount",)
    assert "customer a" in str(err.value) and "customer c" in str(err.value) and "customer b" not in str(err.value)


# --- CSV files: errors past the sniffing sample, misleading messages (items 14, 15) ---------------

def _big_csv(path, bad_line: bytes, at: int = 300_001, n: int = 300_010):
    lines = [b"customer_id,date,amount"] + [b"%d,2024-01-01,1.5" % (i % 97) for i in range(n)]
    lines[at] = bad_line
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("bad, reason", [
    # (an extra field: in the full suite; the fast tier has it from the command line, tests/test_cli_logs.py)
    pytest.param(b"5,2024-01-01,1.5,extra", "has 4 fields where the header has 3", marks=pytest.mark.slow),
    (b"5,2024-01-01", "has 2 fields where the header has 3"),
    (b"5\xe9,2024-01-01,1.5", "not UTF-8"),
])
def test_a_malformed_csv_line_past_the_sniffer_names_the_line(tmp_path, bad, reason):
    path = _big_csv(tmp_path / "log.csv", bad)
    with pytest.raises(DataError, match=reason) as err:
        read(path)
    assert "line 300,002" in str(err.value)  # the file's line (the header is line 1)
    assert str(path) in str(err.value)


def test_an_invalid_date_format_is_named():
    df = pd.DataFrame({"customer_id": [1], "date": ["2024-01-01"], "amount": [1.0]})
    with pytest.raises(DataError, match=r"date_format='%Q' is not a valid strptime format"):
        read(df, date_format="%Q")


def test_misleading_file_messages(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        read(tmp_path / "empty.csv")
    (tmp_path / "ragged.csv").write_text("customer_id,date,amount\n1,2024-01-01\n2,2024-01-02,3\n")
    with pytest.raises(DataError, match="line 2 has 2 fields where the header has 3"):
        read(tmp_path / "ragged.csv")
    (tmp_path / "folder.csv").mkdir()
    for folder in (tmp_path / "folder.csv", tmp_path):
        with pytest.raises(DataError, match="is a folder; give a CSV/Parquet file or a glob"):
            read(folder)
    (tmp_path / "utf16.csv").write_text("customer_id,date,amount\n1,2024-01-01,1\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"is not UTF-8 .*encoding='utf-16'"):
        read(tmp_path / "utf16.csv")
    assert read(tmp_path / "utf16.csv", csv_options={"encoding": "utf-16"}).n_rows == 1


# --- csv_options: an allow-list, values as escaped literals (item 16) -----------------------------

def test_csv_option_keys_cannot_inject_sql(tmp_path, small_log):
    small_log.to_csv(tmp_path / "log.csv", index=False)
    target = tmp_path / "pwned.csv"
    key = f"header=true); COPY (SELECT 42) TO '{target}'; SELECT * FROM read_csv('{tmp_path / 'log.csv'}', delim"
    with pytest.raises(DataError, match="unknown CSV option"):
        read(tmp_path / "log.csv", csv_options={key: ","})
    assert not target.exists()
    value = f"'); COPY (SELECT 42) TO '{target}'; --"
    with pytest.raises(DataError):
        read(tmp_path / "log.csv", csv_options={"quote": value})
    assert not target.exists()
    with pytest.raises(DataError, match="header must be true or false"):
        read(tmp_path / "log.csv", csv_options={"header": "true); COPY"})
    with pytest.raises(DataError, match="csv_options apply to CSV files"):
        small_log.to_parquet(tmp_path / "log.parquet")
        read(tmp_path / "log.parquet", csv_options={"delim": ";"})


def test_csv_options_semicolons_decimal_commas_latin1_and_quotes(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes("customer_id;date;amount\n\xe9mile;2024-01-01;1,5\n\xe9mile;2024-01-03;2,25\n'b;c';2024-01-02;3\n"
                     .encode("latin-1"))
    log = read(path, csv_options={"delim": ";", "decimal_separator": ",", "encoding": "latin-1", "quote": "'"})
    daily = log.to_pandas()
    assert daily["customer_id"].tolist() == ["b;c", "émile", "émile"]
    assert daily["amount"].tolist() == [3.0, 1.5, 2.25]
    path.write_text("customer_id;date;amount\na;2024-01-01;1.234,5\n")
    with pytest.raises(DataError, match="non-numeric amount"):  # a thousands separator is not guessed
        read(path, csv_options={"delim": ";", "decimal_separator": ","})
