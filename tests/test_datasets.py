"""The simulator: reproducible, faithful to its truth, and readable by the summaries."""

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv


def test_simulate_needs_an_explicit_rng():
    with pytest.raises(ValueError, match="explicit rng"):
        clv.simulate(10)


def test_simulate_is_reproducible():
    a = clv.datasets.simulate(500, rng=3)
    b = clv.datasets.simulate(500, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    c = clv.datasets.simulate(500, rng=4)
    assert not a.transactions.equals(c.transactions)


def test_simulated_log_matches_its_truth():
    sim = clv.simulate(3000, rng=11, acquisition="12W", duration="2y", time_unit="W")
    tx = sim.transactions
    assert tx["customer_id"].nunique() == 3000
    assert tx["date"].max() <= sim.end and (tx["amount"] > 0).all()
    rfm = clv.rfm_summary(clv.read_transactions(tx, amount="amount", observation_end=sim.end), time_unit="W")
    truth = sim.customers.loc[rfm.index]
    # merging same-day purchases can only lower the repeat count
    assert (rfm["frequency"] <= truth["n_repeat"]).all()
    assert (rfm["frequency"] == truth["n_repeat"]).mean() > 0.95
    expected_T = (sim.end - truth["first_purchase"]).dt.days / 7
    np.testing.assert_allclose(rfm["T"], expected_T)
    # dead customers never buy after their dropout
    dead = truth["dropout_time"].notna()
    assert (rfm.loc[dead, "recency"] <= truth.loc[dead, "dropout_time"] + 1e-9).all()


def test_simulated_spend_follows_gamma_gamma_means():
    # E[z | nu] = p / nu, so over customers the mean transaction value is p * gamma / (q - 1)
    params = dict(clv.datasets.CDNOW_PARAMS)
    sim = clv.simulate(20000, params, rng=5, duration="1y")
    nu = sim.customers.loc[sim.transactions["customer_id"], "nu"].to_numpy()
    ratio = sim.transactions["amount"].to_numpy() * nu / params["p"]
    assert ratio.mean() == pytest.approx(1.0, abs=0.02)
    per_customer = params["p"] / sim.customers["nu"]
    assert per_customer.mean() == pytest.approx(params["p"] * params["gamma"] / (params["q"] - 1), rel=0.05)


def test_segments():
    sim = clv.simulate(1000, rng=2, segments={"web": (0.7, {"r": 0.5}), "store": (0.3, {"alpha": 2.0})})
    counts = sim.customers["segment"].value_counts()
    assert counts.to_dict() == {"web": 700, "store": 300}
    assert sim.params["web"]["r"] == 0.5 and sim.params["store"]["alpha"] == 2.0
    assert set(sim.transactions["segment"]) == {"web", "store"}
    with pytest.raises(ValueError, match="sum to 1"):
        clv.simulate(10, rng=1, segments={"a": (0.5, {})})
