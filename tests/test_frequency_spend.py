"""Spend that depends on purchasing (clvmodels.FrequencyGammaGamma): gamma_i = gamma (1 + x)^c. It
recovers the dependence from data simulated with it, matches Gamma-Gamma where spend is independent of
frequency, forecasts spend better than Gamma-Gamma out of sample where it is not, over seeds, and takes a
log whose returns were netted."""

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels.models import gamma_gamma

#: CDNOW's Gamma-Gamma estimates (FHL 2005, JMR) and the BG/NBD purchase rates' gamma (r, alpha per week).
P, Q, GAMMA = 6.25, 3.74, 15.44
R, ALPHA = 0.5, 10.0


def customers(n: int, seed: int, c: float, latent: bool = False, weeks: float = 52.0) -> pd.DataFrame:
    """Calibration summary (frequency x and mean repeat spend) and what the customers spend in a holdout
    of the same length. Each spends Gamma(p, nu) per purchase, nu ~ Gamma(q, gamma_i): gamma_i = gamma
    (1 + x)^c (the model itself), or with ``latent`` gamma (1 + lambda weeks)^c, the dependence running
    through the purchase rate lambda rather than the count x."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(R, 1.0 / ALPHA, n)
    x = rng.poisson(lam * weeks).astype(float)
    scale = GAMMA * (1.0 + (lam * weeks if latent else x)) ** c
    nu = rng.gamma(Q, 1.0 / scale)
    zbar = np.where(x > 0, rng.gamma(np.maximum(P * x, 1e-9), 1.0 / (np.maximum(x, 1.0) * nu)), 0.0)
    x_next = rng.poisson(lam * weeks)
    spend_next = np.where(x_next > 0, rng.gamma(np.maximum(P * x_next, 1e-9), 1.0 / nu), 0.0)
    return pd.DataFrame({"frequency": x, "monetary_value": zbar, "holdout_frequency": x_next,
                         "holdout_spend": spend_next}, index=pd.RangeIndex(n, name="customer_id"))


def test_the_dependence_is_recovered_from_data_simulated_with_it():
    for seed in range(3):
        model = clv.FrequencyGammaGamma().fit(customers(6000, seed, c=0.4))
        c, se = model.params_["gamma: log(1 + frequency)"], model.result_.se["gamma: log(1 + frequency)"]
        assert abs(c - 0.4) < 4 * se and se < 0.1, (seed, c, se)
        assert model.likelihood_ratio_test()["p_value"] < 1e-4
        for name, truth in (("p", P), ("q", Q), ("gamma", GAMMA)):
            assert abs(np.log(model.params_[name] / truth)) < 4 * model.result_.se[name] / model.params_[name]


def test_it_matches_gamma_gamma_where_spend_is_independent():
    rejected = 0
    for seed in range(3):
        summary = customers(6000, seed, c=0.0)
        model, plain = clv.FrequencyGammaGamma().fit(summary), clv.GammaGamma().fit(summary)
        c, se = model.params_["gamma: log(1 + frequency)"], model.result_.se["gamma: log(1 + frequency)"]
        assert abs(c) < 4 * se
        rejected += model.likelihood_ratio_test()["p_value"] < 0.05
        repeat = summary[summary["frequency"] > 0]
        np.testing.assert_allclose(model.expected_spend(repeat), plain.expected_spend(repeat), rtol=0.05)
    assert rejected <= 1


def test_it_beats_gamma_gamma_out_of_sample_where_spend_follows_the_purchase_rate():
    gains = []
    for seed in range(5):
        summary = customers(6000, 10 + seed, c=0.5, latent=True)
        model = clv.FrequencyGammaGamma().fit(summary)  # (no warning: this model lets spend follow frequency)
        with pytest.warns(clv.DataWarning, match="correlated.*FrequencyGammaGamma"):
            plain = clv.GammaGamma().fit(summary)
        # the holdout spend of the customers who buy in it: the number of purchases times the spend per purchase
        buyers = summary[summary["holdout_frequency"] > 0]
        errors = {name: np.abs(buyers["holdout_frequency"] * m.expected_spend(buyers) - buyers["holdout_spend"]).mean()
                  for name, m in (("frequency", model), ("plain", plain))}
        gains.append(1 - errors["frequency"] / errors["plain"])
    assert all(g > 0.02 for g in gains) and np.mean(gains) > 0.05, gains  # measured: 7-10% each


def test_predictions_are_eq_5_with_each_customers_gamma_and_x0_gets_the_reference():
    summary = customers(4000, 3, c=0.4)
    model = clv.FrequencyGammaGamma().fit(summary)
    p, q, gamma, c = (model.params_[n] for n in ("p", "q", "gamma", "gamma: log(1 + frequency)"))
    x, m = summary["frequency"].to_numpy(), summary["monetary_value"].to_numpy()
    np.testing.assert_allclose(model.expected_spend(summary),
                               gamma_gamma.conditional_expected_spend(p, q, gamma * (1 + x) ** c, x, m), rtol=1e-12)
    assert model.expected_spend(summary[summary["frequency"] == 0]).iloc[0] == pytest.approx(p * gamma / (q - 1))


@pytest.mark.slow  # (2-4 s: the fast tier keeps the others of this file)
def test_a_log_with_netted_returns_fits_and_scores():
    sim = clv.simulate(1500, rng=2)
    tx = sim.transactions.copy()
    returns = tx.sample(150, random_state=1).assign(amount=lambda d: -0.5 * d["amount"])
    log = clv.read_transactions(pd.concat([tx, returns]), amount="amount", returns="net")
    assert log.n_returns == 150
    summary = clv.rfm_summary(log)
    model = clv.FrequencyGammaGamma().fit(summary)
    bg = clv.BetaGeo().fit(summary)
    value = clv.customer_value(bg, model, summary, ["1y"], interval=0.8)
    assert np.all(np.isfinite(value.to_numpy())) and (value["expected_spend"] > 0).all()
