"""Bayesian models with static customer covariates (Fader & Hardie 2007's parametrisation, as the
maximum-likelihood fits'): the posterior agrees with the maximum-likelihood estimate on plenty of data,
predictions read each customer's parameters from the posterior draws, segments are pooled alongside, and
model files keep it all."""

import numpy as np
import pytest

import clvmodels as clv
from clvmodels.models import bgnbd
from clvmodels.models.covariate_effects import patterns
from tests.test_covariate_models import simulate

# (short chains on purpose: the diagnostics warning is expected and not the subject here)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::clvmodels.SamplingWarning")]


@pytest.fixture(scope="module")
def customers():
    return simulate(4000, seed=7)


@pytest.fixture(scope="module")
def pooled(customers):
    return clv.BayesBetaGeo(covariates=["channel"], draws=300, tune=300, chains=2, random_seed=1).fit(
        customers, time_unit="W")


def test_the_posterior_agrees_with_maximum_likelihood(pooled):
    table = pooled.diagnostics()
    mle = pooled.mle_
    assert mle.get_params()["covariates"] == ["channel"]
    for name in mle.result_.linear:
        row = table.loc[f"coef[{name}]"]
        assert abs(row["mean"] - mle.params_[name]) < 0.3 * row["sd"], name
        assert row["sd"] == pytest.approx(mle.result_.se[name], rel=0.3)
    for name in ("r", "alpha", "a", "b"):
        assert table.loc[name, "mean"] == pytest.approx(mle.params_[name], rel=0.1)


def test_predictions_read_each_customers_parameters_from_the_draws(customers, pooled, tmp_path):
    head = customers.head(300)
    post = pooled.idata_.posterior
    base = np.stack([post[n].to_numpy().ravel() for n in ("r", "alpha", "a", "b")], axis=1)
    coef = post["coef"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
    Zu, codes = patterns(pooled.design_.matrix(head))
    # each draw's per-customer parameters by FH (2007), alpha_i = alpha exp(-c'z), a_i, b_i = exp(c'z)
    c = coef.reshape(len(coef), 3, -1)
    z = Zu[codes]
    alpha = base[:, 1:2] * np.exp(-c[:, 0] @ z.T)
    a, b = base[:, 2:3] * np.exp(c[:, 1] @ z.T), base[:, 3:4] * np.exp(c[:, 2] @ z.T)
    x, t_x, T = (head[k].to_numpy(float) for k in ("frequency", "recency", "T"))
    expected = bgnbd.conditional_expected_purchases(base[:, :1], alpha, a, b, x, t_x, T, 26.0).mean(axis=0)
    np.testing.assert_allclose(pooled.expected_purchases(head, 26), expected, rtol=1e-10)
    pooled.save(tmp_path / "hb.json")
    loaded = clv.BayesBetaGeo.load(tmp_path / "hb.json")
    assert loaded.design_.to_dict() == pooled.design_.to_dict()
    np.testing.assert_array_equal(loaded.p_alive(head, interval=0.9), pooled.p_alive(head, interval=0.9))
    with pytest.raises(ValueError, match="differ by customer"):
        pooled.expected_purchases_new(10)


def test_segments_are_pooled_alongside_the_covariates(customers):
    summary = customers.head(1500).assign(region=np.where(np.arange(1500) % 3 == 0, "north", "south"))
    model = clv.BayesBetaGeo(segment="region", covariates=["channel"], draws=150, tune=150, chains=2,
                             random_seed=2).fit(summary, time_unit="W")
    draws, codes = model.group_draws(summary.head(60))
    assert draws.shape[1] == len(np.unique(codes)) <= 6 and draws.shape[2] == 4
    # a north and a south customer of the same channel differ by their segments' parameters only
    pair = summary.head(2).assign(channel="web", region=["north", "south"])
    groups, pair_codes = model.group_draws(pair)
    post = model.idata_.posterior
    for j, name in enumerate(("r", "alpha", "a", "b")):
        ratio = groups[:, pair_codes[0], j] / groups[:, pair_codes[1], j]
        segments = (post[name].sel(segment="north") / post[name].sel(segment="south")).to_numpy().ravel()
        np.testing.assert_allclose(np.sort(ratio), np.sort(segments), rtol=1e-12)
    assert "coef[alpha: channel[web]]" in model.diagnostics().index


def test_the_spend_twin_takes_covariates_too(customers):
    # (the other purchase twins share BayesBetaGeo's code path; their likelihoods take per-group parameters
    # as the hierarchies' segments do, tests/test_bayes_family.py)
    summary = customers.assign(monetary_value=np.where(
        customers["frequency"] > 0, np.random.default_rng(3).gamma(6.0, 4.0, len(customers))
        * np.where(customers["channel"] == "web", 1.5, 1.0), 0.0))
    model = clv.BayesGammaGamma(covariates=["channel"], draws=300, tune=300, chains=2, random_seed=4).fit(summary)
    table = model.diagnostics()
    for coefficient in model.mle_.result_.linear:
        row = table.loc[f"coef[{coefficient}]"]
        assert abs(row["mean"] - model.mle_.params_[coefficient]) < 0.3 * row["sd"], coefficient
    row = table.loc["coef[gamma: channel[web]]"]  # web customers spend 1.5 times as much: log 1.5 = 0.405
    assert abs(row["mean"] - np.log(1.5)) < 3 * row["sd"]
