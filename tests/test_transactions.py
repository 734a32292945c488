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


def test_nan_amount_from_text_is_reported_as_nan():
    df = pd.DataFrame({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"], "amount": ["1.5", "NaN"]})
    with pytest.raises(DataError, match="NaN amount") as err:
        read(df)
    assert err.value.rows == (1,)


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
