"""Gamma-Gamma: the published CDNOW fit, gradient, invariances and bad data."""

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError, DataWarning
from clvmodels.models import gamma_gamma as G

# Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves", JMR 42(4); acceptance values in
# shared/reference/cdnow.md: the 946 CDNOW sample customers with x > 0, on x and zbar.
REF = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}


@pytest.fixture(scope="module")
def rfm(cdnow_tx):
    return clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="W")


@pytest.fixture(scope="module")
def gg(rfm):
    return clv.GammaGamma().fit(rfm)


def test_cdnow_fit(gg, rfm):
    for k, v in REF.items():
        assert gg.params_[k] == pytest.approx(v, rel=2e-3)
    assert gg.loglik_ == pytest.approx(-4055.92, abs=0.01)
    assert gg.n_customers_ == 946
    repeat = rfm[rfm["frequency"] > 0]["monetary_value"]
    assert repeat.mean() == pytest.approx(35.0786, abs=1e-3) and repeat.max() == pytest.approx(299.63, abs=0.01)


def test_population_mean_and_conditional_spend(gg, rfm):
    assert G.conditional_expected_spend(6.25, 3.74, 15.44, 0, 0.0) == pytest.approx(35.22, abs=0.01)
    p, q, gamma = (gg.params_[k] for k in G.PARAMS)
    spend = gg.expected_spend(rfm)
    x, z = rfm["frequency"], rfm["monetary_value"]
    np.testing.assert_allclose(spend, (gamma + z * x) * p / (p * x + q - 1), rtol=1e-12)
    assert spend[x == 0].nunique() == 1 and spend[x == 0].iloc[0] == pytest.approx(gg.population_mean_spend())
    # a weighted mean of the population mean and the customer's own mean: between the two
    own = z[x > 0]
    lo, hi = np.minimum(own, gg.population_mean_spend()), np.maximum(own, gg.population_mean_spend())
    assert ((spend[x > 0] >= lo - 1e-9) & (spend[x > 0] <= hi + 1e-9)).all()


def test_gradient_matches_finite_differences(rfm):
    sub = rfm[rfm["frequency"] > 0]
    x, z = sub["frequency"].to_numpy(float), sub["monetary_value"].to_numpy(float)
    theta = np.array([5.0, 3.0, 12.0])
    _, grad = G.loglik_and_grad(theta, x, z, np.ones_like(x))
    for i in range(3):
        h = 1e-6 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd = (G.loglik_and_grad(up, x, z, np.ones_like(x))[0] - G.loglik_and_grad(down, x, z, np.ones_like(x))[0]) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5)


def test_weights_equal_expanded_rows(rfm):
    sub = rfm[rfm["frequency"] > 0].iloc[:300]
    w = np.random.default_rng(1).integers(1, 4, len(sub))
    a = clv.GammaGamma().fit(sub, weights=w)
    b = clv.GammaGamma().fit(sub.loc[sub.index.repeat(w)].reset_index(drop=True))
    for k in G.PARAMS:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-6)


def test_rescaling_money_rescales_gamma(rfm, gg):
    cents = rfm.assign(monetary_value=rfm["monetary_value"] * 100)
    gc = clv.GammaGamma().fit(cents)
    assert gc.params_["gamma"] == pytest.approx(gg.params_["gamma"] * 100, rel=1e-5)
    np.testing.assert_allclose(gc.expected_spend(cents), gg.expected_spend(rfm) * 100, rtol=1e-5)


def test_recovers_simulated_parameters():
    truth = {"r": 0.9, "alpha": 10.0, "a": 0.5, "b": 4.0, "p": 6.0, "q": 3.7, "gamma": 15.0}
    for seed in range(3):
        sim = clv.simulate(6000, truth, rng=100 + seed, duration="2y")
        log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
        rfm = clv.rfm_summary(log, time_unit="W")
        fit = clv.GammaGamma().fit(rfm)
        for k in G.PARAMS:
            assert abs(fit.params_[k] - truth[k]) < 3 * fit.result_.se[k], (seed, k, fit.params_)


def test_warns_when_spend_depends_on_frequency():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, 500)
    frame = pd.DataFrame({"frequency": x, "monetary_value": 5.0 * x * rng.gamma(5, 0.2, 500)})
    with pytest.warns(DataWarning, match="correlated"):
        clv.GammaGamma().fit(frame)


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"frequency": [0, 0, 1], "monetary_value": [0.0, 0.0, 5.0]}), "at least two customers with repeat"),
    (pd.DataFrame({"frequency": [2, 1, 3], "monetary_value": [10.0, 0.0, 5.0]}), "must be positive"),
    (pd.DataFrame({"frequency": [2, 1, 3], "monetary_value": [10.0, -4.0, 5.0]}), "must be positive"),
    (pd.DataFrame({"frequency": [2, 1, 3], "monetary_value": [10.0, np.inf, 5.0]}), "NaN or infinite"),
    (pd.DataFrame({"frequency": [2, 1, 3], "monetary_value": [7.0, 7.0, 7.0]}), "same mean spend"),
])
def test_bad_spend_data(frame, match):
    with pytest.raises(DataError, match=match):
        clv.GammaGamma().fit(frame)


def test_constant_spend_is_refused_before_fitting():
    # every purchase costs 0.10: the running sums of 3 and of 7 purchases differ in their last bit only
    x = np.array([1, 2, 3, 7, 0, 4] * 10, dtype=float)
    m = np.array([sum([0.1] * int(k)) / k if k else 0.0 for k in x])
    assert np.unique(m[x > 0]).size > 1
    frame = pd.DataFrame({"frequency": x, "monetary_value": m})
    with pytest.raises(DataError, match="same mean spend.*--model bgnbd"):
        clv.GammaGamma().fit(frame)


def test_near_constant_spend_fails_cleanly():
    # nearly every mean is the same: the spread within customers is nil and p runs away; a clear error,
    # and no numpy overflow on the way (the suite runs with warnings as errors)
    x = np.array([1, 2, 3, 7, 4] * 40, dtype=float)
    m = np.full(len(x), 10.0)
    m[:3] = [15.0, 20.0, 12.5]
    frame = pd.DataFrame({"frequency": x, "monetary_value": m})
    with pytest.raises(clv.ConvergenceError, match="Gamma-Gamma"):
        clv.GammaGamma().fit(frame)


def test_the_dependence_check_is_spearmans_rank_correlation():
    from scipy.stats import spearmanr

    from clvmodels.models.gamma_gamma import spearman

    rng = np.random.default_rng(8)
    x = rng.poisson(2.0, 3_000).astype(float) + 1    # many ties
    m = np.round(rng.gamma(2.0, 10.0, 3_000) * (1 + 0.1 * x), 0)
    assert spearman(x, m) == pytest.approx(spearmanr(x, m).statistic, rel=1e-12)
    assert spearman(m + 0.5, x) == pytest.approx(spearmanr(m + 0.5, x).statistic, rel=1e-12)  # (no counts)
