"""Customer attributes carried from a transaction log into its summaries (read_transactions(attributes=)):
the first, last and most frequent value per customer, taken from the transactions up to each summary's
end, so that a calibration summary never sees the holdout."""

import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError


@pytest.fixture()
def log():
    return pd.DataFrame({
        "customer_id": [1, 1, 1, 2, 2, 3, 3, 3, 3],
        "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-01-05", "2024-01-05",
                                "2024-01-02", "2024-01-03", "2024-04-01", "2024-05-01"]),
        "amount": [10.0, 20, 30, 5, 6, 7, 8, 9, 10],
        "channel": ["web", "store", "store", "web", "app", None, "web", "store", "store"],
        "age": [30, 30, 31, 40, 40, 50, 50, 50, 50]})


def test_first_last_and_mode_up_to_the_summary_end(log):
    early = clv.rfm_summary(log, observation_end="2024-03-15", attributes={"channel": "first", "age": "last"})
    assert early["channel"].tolist() == ["web", "app", "web"]  # 2: same day, in order of value; 3: missing skipped
    assert early["age"].tolist() == [31, 40, 50] and early["age"].dtype.kind == "i"
    late = clv.rfm_summary(log, observation_end="2024-05-01", attributes={"channel": "mode"})
    assert late["channel"].tolist() == ["store", "app", "store"]  # 2: a tie, to the value seen first (by value)
    assert list(late.columns[-1:]) == ["channel"]


def test_a_calibration_summary_does_not_see_the_holdout(log):
    cal = clv.calibration_holdout(log, "2024-03-15", attributes={"channel": "last"})
    assert cal["channel"].tolist() == ["store", "app", "web"]  # customer 3 switches to store in the holdout
    by_month = clv.period_summary(log, "M", calibration_end="2024-03-31", observation_end="2024-04-30",
                                  attributes={"channel": "last"})
    assert by_month["channel"].tolist() == ["store", "app", "web"]


def test_bad_attributes_are_refused(log):
    with pytest.raises(DataError, match="missing column") as caught:
        clv.rfm_summary(log, attributes=["region"])
    assert caught.value.columns == ("region",)
    with pytest.raises(DataError, match="cannot be the customer, date or amount column"):
        clv.rfm_summary(log.rename(columns={"channel": "frequency"}), attributes=["frequency"])
    with pytest.raises(ValueError, match="must be one of first, last, mode"):
        clv.rfm_summary(log, attributes={"channel": "often"})
    with pytest.raises(ValueError, match="not the string"):
        clv.rfm_summary(log, attributes="channel")


def test_a_day_cancelled_by_its_returns_gives_no_attribute(log):
    # customer 1's first day is bought on the web and returned the same day (returns="net" removes the
    # day): their first channel is the one of the purchases that remain
    cancelled = pd.DataFrame({"customer_id": [1], "date": pd.to_datetime(["2024-01-01"]), "amount": [-10.0],
                              "channel": ["web"], "age": [30]})
    netted = clv.read_transactions(pd.concat([log, cancelled]), amount="amount", returns="net",
                                   attributes=["channel"])
    assert netted.n_cancelled_days == 1
    summary = clv.rfm_summary(netted, observation_end="2024-03-15")
    assert summary.loc[1, "channel"] == "store"
