"""Customer summaries: the papers' CDNOW summary, lifetimes' numbers, and invariants on random logs."""

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clvmodels as clv
from clvmodels.timeunits import unit_days
from clvmodels import DataError

from .conftest import make_log


def test_cdnow_summary_equals_the_papers_file(cdnow_tx):
    # Source: cdnow_customers_summary_with_transactions.csv (Fader, Hardie & Lee; shipped in lifetimes),
    # the 39-week calibration summary used in "Counting Your Customers the Easy Way" (2005). Its values
    # are rounded to 2 decimals, hence the tolerances of 0.01 week and $0.01.
    rfm = clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="W")
    ref = clv.load_cdnow_summary()
    assert len(rfm) == len(ref) == 2357
    assert rfm.index.equals(ref.index)
    assert (rfm["frequency"] == ref["frequency"]).all()
    np.testing.assert_allclose(rfm["recency"], ref["recency"], atol=0.01)
    np.testing.assert_allclose(rfm["T"], ref["T"], atol=0.01)
    np.testing.assert_allclose(rfm["monetary_value"], ref["monetary_value"], atol=0.01)
    assert rfm.loc[2, "monetary_value"] == 11.77  # one repeat purchase: its amount, no rounding noise
    assert rfm["frequency"].sum() == 2457  # cumulative repeat transactions at week 39 (FHL 2005, fig. 3)
    assert (rfm["frequency"] > 0).sum() == 946  # Gamma-Gamma sample (FHL 2005, JMR)


def test_cdnow_calibration_holdout(cdnow_tx):
    cal = clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30", time_unit="W")
    # cumulative repeat transactions: 2,457 at week 39, 4,339 at week 78 (FHL 2005, figure 3)
    assert cal["frequency"].sum() + cal["holdout_frequency"].sum() == 4339
    assert (cal["holdout_duration"] == 39.0).all()
    # holdout mean repeat transactions by calibration frequency (FHL 2005, figure 4, "actual" row)
    group = cal["frequency"].clip(upper=7)
    actual = cal.groupby(group)["holdout_frequency"].mean().round(3).tolist()
    assert actual == [0.237, 0.697, 1.393, 1.560, 2.532, 2.947, 3.862, 6.359]
    np.testing.assert_allclose(cal["holdout_spend"],
                               cal["holdout_monetary_value"] * cal["holdout_frequency"], rtol=1e-12)


def test_master_loads(cdnow_df):
    master = clv.load_cdnow("master")
    assert len(master) == 69659 and master["customer_id"].nunique() == 23570
    assert len(cdnow_df) == 6919 and cdnow_df["customer_id"].nunique() == 2357


@pytest.mark.parametrize("unit", ["D", "W"])
def test_equals_lifetimes(unit):
    lifetimes_utils = pytest.importorskip("lifetimes.utils")
    sim = clv.simulate(2000, rng=7, time_unit="W", duration="1y")
    tx = sim.transactions
    log = clv.read_transactions(tx, amount="amount", observation_end=sim.end)  # the simulation's end, declared
    ours = clv.rfm_summary(log, time_unit="D")
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", observation_period_end=sim.end, freq="D")
    theirs = theirs.sort_index()
    assert ours.index.equals(theirs.index)
    for col in ["frequency", "recency", "T", "monetary_value"]:
        np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-9, atol=1e-9, err_msg=col)
    if unit == "W":  # the week unit is the day unit / 7 (lifetimes' own "W" counts calendar weeks instead)
        weekly = clv.rfm_summary(log, time_unit="W")
        np.testing.assert_allclose(weekly["recency"] * 7, ours["recency"], rtol=1e-12)


def test_summary_without_amounts(small_log):
    rfm = clv.rfm_summary(small_log.drop(columns="amount"), time_unit="D")
    assert list(rfm.columns) == ["frequency", "recency", "T", "litt"]
    assert rfm.loc["a"].tolist() == [1, 7.0, 35.0, np.log(7.0)]


def test_small_log_by_hand(small_log):
    rfm = clv.rfm_summary(small_log, observation_end="2024-02-05", time_unit="D")
    # columns frequency, recency, T, litt (log of each gap between purchase days), monetary_value
    assert rfm.loc["a"].tolist() == [1, 7.0, 35.0, np.log(7.0), 12.0]   # repeat day: 5 + 7
    assert rfm.loc["b"].tolist() == [0, 0.0, 33.0, 0.0, 0.0]
    assert rfm.loc["c"].tolist() == [1, 31.0, 31.0, np.log(31.0), 6.0]
    monthly = clv.rfm_summary(small_log, observation_end="2024-02-05", time_unit="M")
    assert monthly.loc["a", "T"] == pytest.approx(35 / (365.25 / 12), rel=1e-15)
    # a cut-off before customer c's repeat purchase, and before c was born
    assert clv.rfm_summary(small_log, observation_end="2024-01-04", time_unit="D").index.tolist() == ["a", "b"]


def test_bad_cutoffs(small_log):
    with pytest.raises(DataError, match="before the first purchase"):
        clv.rfm_summary(small_log, observation_end="2023-01-01")
    with pytest.raises(DataError, match="must be after"):
        clv.calibration_holdout(small_log, "2024-01-10", "2024-01-05")
    # no holdout end given: the log's end is the holdout's, and the message names it, not the option
    with pytest.raises(DataError, match=r"leaves no holdout: the log ends on 2024-02-05") as caught:
        clv.calibration_holdout(small_log, "2024-02-05")
    assert "holdout_end" not in str(caught.value)
    with pytest.raises(DataError, match="after the end of the log"):
        clv.calibration_holdout(small_log, "2024-01-10", "2024-06-01")
    with pytest.raises(DataError, match="not a date"):
        clv.rfm_summary(small_log, observation_end="someday")
    with pytest.raises(ValueError, match="time_unit"):
        clv.rfm_summary(small_log, time_unit="Y")


# --- properties on random logs -------------------------------------------------------------------

logs = st.builds(lambda seed, n, rows: make_log(np.random.default_rng(seed), n, rows),
                 st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 200))


def repeats_warned(df):
    """Reading a generated log warns about rows that repeat an earlier row exactly when, and only when, it
    has such rows (amounts rounded to cents make them rare, not impossible)."""
    if df.duplicated().any():
        return pytest.warns(clv.DataWarning, match="repeat an earlier row exactly")
    return contextlib.nullcontext()


def test_a_generated_log_with_a_repeated_row_is_read_with_the_warning():
    df = make_log(np.random.default_rng(132), 1, 131)  # (a case hypothesis found: one exact repeat)
    assert df.duplicated().sum() == 1
    with repeats_warned(df):
        summary = clv.rfm_summary(df, time_unit="D")
    assert summary.loc[df["customer_id"].iloc[0], "frequency"] == df["date"].nunique() - 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=logs, cut=st.integers(0, 399), unit=st.sampled_from(["D", "W", "M"]))
def test_invariants(df, cut, unit):
    cut_date = pd.Timestamp("2023-01-01") + pd.Timedelta(days=cut)
    if cut_date < df["date"].min():
        return
    with repeats_warned(df):
        log = clv.read_transactions(df, amount="amount")
    n_days = df.groupby("customer_id")["date"].nunique()
    full = clv.rfm_summary(log, time_unit=unit)
    # frequency <= transactions - 1 (same-day merging can only lower it), recency <= T
    assert (full["frequency"] <= df.groupby("customer_id").size().loc[full.index] - 1).all()
    assert (full["frequency"] == n_days.loc[full.index] - 1).all()
    assert (full["recency"] <= full["T"] + 1e-12).all() and (full["recency"] >= 0).all()
    assert ((full["frequency"] == 0) == (full["monetary_value"] == 0) | (full["frequency"] == 0)).all()
    # litt: the sum of the logs of the gaps between a customer's purchase days, in the unit
    days = df.assign(day=df["date"].dt.normalize()).drop_duplicates(["customer_id", "day"]).sort_values("day")
    gaps = days.groupby("customer_id")["day"].diff().dt.days / unit_days(unit)
    litt = np.log(gaps).groupby(days["customer_id"]).sum().loc[full.index]
    np.testing.assert_allclose(full["litt"], litt, rtol=1e-12, atol=1e-12)
    # calibration + holdout purchase days add up to the full count of each customer
    if cut_date.date() < log.observation_end:
        cal = clv.calibration_holdout(log, cut_date, time_unit=unit)
        total = cal["frequency"] + 1 + cal["holdout_frequency"]
        assert (total == n_days.loc[cal.index]).all()
        spend = df.groupby("customer_id")["amount"].sum().loc[cal.index]
        first_day_spend = (df[df.groupby("customer_id")["date"].transform("min") == df["date"]]
                           .groupby("customer_id")["amount"].sum().loc[cal.index])
        np.testing.assert_allclose(first_day_spend + cal["monetary_value"] * cal["frequency"]
                                   + cal["holdout_spend"], spend, rtol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=logs, seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(df, seed):
    shuffled = df.sample(frac=1.0, random_state=np.random.default_rng(seed)).reset_index(drop=True)
    with repeats_warned(df):
        a = clv.rfm_summary(df, time_unit="W")
    with repeats_warned(df):
        b = clv.rfm_summary(shuffled, time_unit="W")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(df=logs)
def test_input_format_does_not_matter(tmp_path_factory, df):
    folder = tmp_path_factory.mktemp("fmt")
    df.to_csv(folder / "log.csv", index=False)
    df.to_parquet(folder / "log.parquet")
    with repeats_warned(df):
        from_df = clv.rfm_summary(df, time_unit="D")
    with repeats_warned(df):
        from_parquet = clv.rfm_summary(folder / "log.parquet", time_unit="D")
    with repeats_warned(df):
        from_csv = clv.rfm_summary(folder / "log.csv", time_unit="D")
    pd.testing.assert_frame_equal(from_df, from_parquet, check_exact=False, rtol=1e-12)
    # CSV ids are read as text so that codes such as "007" survive; values are otherwise identical
    from_csv.index = from_csv.index.astype("int64")
    from_csv = from_csv.sort_index()  # text ids sort as text
    pd.testing.assert_frame_equal(from_df, from_csv, check_exact=False, rtol=1e-12)


def test_repeat_spend_is_summed_without_the_first_day():
    # "total minus first" cancels: 1e17 + 5 + 7 - 1e17 is 16 in doubles, not 12
    df = pd.DataFrame({"customer_id": [1, 1, 1, 2, 2], "amount": [1e17, 5.0, 7.0, 3.0, 1e-300],
                       "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02"]})
    rfm = clv.rfm_summary(df, time_unit="D")
    assert rfm["monetary_value"].tolist() == [6.0, 1e-300]
    cal = clv.calibration_holdout(df.assign(date=["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-01",
                                                  "2024-01-02"]), "2024-01-03", time_unit="D")
    assert cal.loc[1, "monetary_value"] == 5.0 and cal.loc[1, "holdout_spend"] == 7.0


def test_sums_that_overflow_are_refused():
    df = pd.DataFrame({"customer_id": [1, 1, 1], "amount": [1.0, 1e308, 1e308],
                       "date": ["2024-01-01", "2024-01-02", "2024-01-03"]})
    with pytest.raises(DataError, match="amounts too large .* customer 1 "):
        clv.rfm_summary(df, time_unit="D")


def test_an_observation_end_past_the_log_warns_once_unless_declared(small_log):
    with pytest.warns(clv.DataWarning, match=r"observation_end 2024-03-06 is 30 days after the last purchase "
                                             r"in the log \(2024-02-05\)") as record:
        stretched = clv.rfm_summary(small_log, observation_end="2024-03-06", time_unit="D")
    assert len(record) == 1 and "read_transactions(..., observation_end='2024-03-06')" in str(record[0].message)
    assert stretched.loc["a", "T"] == 65.0
    log = clv.read_transactions(small_log, amount="amount", observation_end="2024-03-31")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clv.rfm_summary(log, observation_end="2024-03-06", time_unit="D").loc["a", "T"] == 65.0
        assert clv.rfm_summary(log, time_unit="D").loc["a", "T"] == 90.0  # the declared end
    with pytest.raises(DataError, match="after the end declared for the log"):
        clv.rfm_summary(log, observation_end="2024-04-01")
