"""The heuristic CLV formulas: inputs measured as documented, horizon curves as documented."""

import math

import numpy as np
import pandas as pd
import pytest

from clvmodels import DataError, NotFittedError
from clvmodels.models.heuristics import AovFrequencyLifespan, ChurnRateFormula, RetentionFormula, RunRate


@pytest.fixture()
def summary():
    # weeks; period 13 weeks. Customers: T >= 13 for a, b, c, d (eligible); e is too young.
    df = pd.DataFrame({
        "frequency": [4, 1, 0, 2, 1],
        "recency": [20.0, 2.0, 0.0, 30.0, 1.0],
        "T": [26.0, 26.0, 20.0, 40.0, 5.0],
        "monetary_value": [10.0, 30.0, 0.0, 20.0, 50.0],
    }, index=pd.Index(list("abcde"), name="customer_id"))
    df.attrs["time_unit"] = "W"
    return df


def test_measured_inputs(summary):
    h = RunRate(period="13W").fit(summary)
    assert h.mean_rate_ == pytest.approx(np.mean([4 / 26, 1 / 26, 0, 2 / 40, 1 / 5]))
    assert h.mean_aov_ == pytest.approx(np.mean([10, 30, 20, 50]))
    # eligible a, b, c, d; bought within the last 13 weeks: a (26-20=6), d (40-30=10); b (24), c (20) did not
    assert h.retention_ == pytest.approx(0.5)
    assert h.churn_rate_ == pytest.approx(-math.log(0.5) / 13)
    assert h.lifespan_ == pytest.approx(np.mean([2.0, 0.0]))  # lost: b and c


def test_horizon_curves(summary):
    t = 52.0
    rr = RunRate(period="13W").fit(summary)
    np.testing.assert_allclose(rr.expected_purchases(summary, t), summary["frequency"] / summary["T"] * t)
    life = AovFrequencyLifespan(period="13W").fit(summary)
    np.testing.assert_allclose(life.expected_purchases(summary, t), summary["frequency"] / summary["T"] * 1.0)
    churn = ChurnRateFormula(period="13W").fit(summary)
    c = math.log(2) / 13
    np.testing.assert_allclose(churn.expected_purchases(summary, t),
                               summary["frequency"] / summary["T"] * (1 - math.exp(-c * t)) / c)
    # long horizons tend to the formula value rate / churn
    far = churn.expected_purchases(summary, 1e6)
    np.testing.assert_allclose(far, summary["frequency"] / summary["T"] / c, rtol=1e-9)
    ret = RetentionFormula(period="13W").fit(summary)
    np.testing.assert_allclose(ret.expected_purchases(summary, t),
                               summary["frequency"] / summary["T"] * 13 * (0.5 + 0.25 + 0.125 + 0.0625))
    np.testing.assert_allclose(ret.expected_purchases(summary, 19.5),
                               summary["frequency"] / summary["T"] * 13 * (0.5 + 0.5 * 0.25))


def test_spend_and_population_form(summary):
    per = RunRate(period="13W").fit(summary)
    assert per.expected_spend(summary).tolist() == [10.0, 30.0, 27.5, 20.0, 50.0]  # c: mean AOV
    pop = RunRate(per_customer=False, period="13W").fit(summary)
    assert pop.expected_spend(summary).nunique() == 1 and pop.expected_purchases(summary, 10).nunique() == 1
    assert pop.expected_purchases(summary, 10).sum() == pytest.approx(per.expected_purchases(summary, 10).sum())


def test_acquisition_cost(summary):
    ret = RetentionFormula(period="13W", acquisition_cost=pd.Series({"a": 5.0, "b": 1.0})).fit(summary)
    gross = ret.expected_purchases(summary, 26) * ret.expected_spend(summary)
    np.testing.assert_allclose(ret.net_value(summary, 26), gross - [5.0, 1.0, 0, 0, 0])


def test_errors(summary):
    with pytest.raises(NotFittedError):
        RunRate().expected_purchases(summary, 1)
    young = summary.assign(T=[1.0, 1.0, 1.0, 1.0, 1.0], recency=[0.5, 0.5, 0, 0.5, 0.5])
    with pytest.raises(DataError, match="retention cannot be measured"):
        ChurnRateFormula(period="13W").fit(young)
    RunRate(period="13W").fit(young)  # the run-rate needs no retention
    with pytest.raises(ValueError, match="non-negative"):
        RunRate(period="13W").fit(summary).expected_purchases(summary, -5)
    wrong_ids = RetentionFormula(period="13W", acquisition_cost=pd.Series({1: 5.0})).fit(summary)
    with pytest.raises(DataError, match="none of which"):
        wrong_ids.net_value(summary, 26)
    plain = pd.DataFrame(summary.to_dict())  # a summary read back from CSV: no time unit attached
    assert not plain.attrs
    with pytest.raises(ValueError, match="time unit"):
        RunRate().fit(plain)
