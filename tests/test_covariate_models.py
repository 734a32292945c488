"""Models with static customer covariates (Fader & Hardie 2007, "Incorporating time-invariant covariates
into the Pareto/NBD and BG/NBD models"): the likelihood per covariate pattern equals the per-customer
formula, its gradient is exact, the fit recovers simulated coefficients, the likelihood-ratio test, the
predictions with per-customer parameters, and model files."""

import json

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError
from clvmodels.data.covariates import CovariateDesign
from clvmodels.data.processes import draw_purchases
from clvmodels.models import bgnbd
from clvmodels.models.covariate_effects import CovariateEffects, patterns

#: The BG/NBD's CDNOW-sample estimates (Fader, Hardie & Lee 2005), per week: the reference customers'.
BASE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
#: True coefficients of the simulations: channel web and partner against direct (the first level, so the
#: reference), and a numeric age (decades).
TRUE = {"alpha: channel[partner]": 0.5, "alpha: channel[web]": -0.4, "alpha: age": 0.3,
        "a: channel[partner]": -0.5, "a: channel[web]": 0.0, "a: age": 0.0,
        "b: channel[partner]": 0.0, "b: channel[web]": 0.4, "b: age": -0.2}


def simulate(n: int, seed: int, coefficients: dict = TRUE, model: str = "bgnbd", k: int = 1) -> pd.DataFrame:
    """BG/NBD (or MBG/NBD, or with ``model="bgcnbd"`` Erlang-k gaps) customers whose parameters follow
    covariates by FH (2007): alpha_i = alpha exp(-c'z), a_i = a exp(c'z), b_i = b exp(c'z); ages T uniform
    on 20-78 weeks. With k > 1, alpha is the Erlang phases' rate: the base alpha over k."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["direct", "web", "partner"], n, p=[0.5, 0.3, 0.2])
    age = rng.integers(2, 8, n).astype(float)
    Z = np.stack([channel == "partner", channel == "web", age], axis=1).astype(float)
    names = ["channel[partner]", "channel[web]", "age"]
    c = {p: np.array([coefficients.get(f"{p}: {k}", 0.0) for k in names]) for p in ("alpha", "a", "b")}
    alpha = BASE["alpha"] / k * np.exp(-Z @ c["alpha"])
    a, b = BASE["a"] * np.exp(Z @ c["a"]), BASE["b"] * np.exp(Z @ c["b"])
    truth = {"lambda_": rng.gamma(BASE["r"], 1.0 / alpha), "p_dropout": rng.beta(a, b)}
    T = rng.uniform(20.0, 78.0, n)
    state, idx, times = draw_purchases(model, truth, {**BASE, "k": k}, T, rng)
    last = np.zeros(n)
    np.maximum.at(last, idx, times)
    # litt: the sum of the logs of each customer's inter-purchase times (idx and times in purchase order)
    order = np.lexsort([times, idx])
    idx, times = idx[order], times[order]
    gaps = np.diff(times)
    repeat = idx[1:] == idx[:-1]
    litt = np.bincount(idx[1:][repeat], weights=np.log(gaps[repeat]), minlength=n)
    return pd.DataFrame({"frequency": state["n_repeat"].astype(float), "recency": last, "T": T, "litt": litt,
                         "channel": channel, "age": age},
                        index=pd.RangeIndex(n, name="customer_id"))


@pytest.fixture(scope="module")
def customers():
    return simulate(20_000, seed=7)


@pytest.fixture(scope="module")
def fitted(customers):
    return clv.BetaGeo(covariates=["channel", "age"]).fit(customers, time_unit="W")


def assert_gradient(fun, full: np.ndarray) -> None:
    """``fun(full)``'s gradient against central differences of its value."""
    h = 1e-6
    numeric = [(fun(full + h * e)[0] - fun(full - h * e)[0]) / (2 * h) for e in np.eye(len(full))]
    np.testing.assert_allclose(fun(full)[1], numeric, rtol=1e-5, atol=1e-4)


def objective(summary: pd.DataFrame, columns: list[str], dropout_at_zero: bool = False):
    """The covariate model's log-likelihood and gradient in every estimated quantity, from the public pieces."""
    design = CovariateDesign(columns).fit(summary)
    Zu, codes = patterns(design.matrix(summary))
    effects = CovariateEffects(bgnbd.PARAMS, clv.BetaGeo.covariate_signs, design.names_)
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    data = bgnbd.Prepared(x, t_x, T, np.ones(len(x)), dropout_at_zero, group=codes)

    def fun(full):
        theta_g = effects.group_params(full, Zu)
        ll, grad_g = bgnbd.group_loglik_and_grad(theta_g, data)
        return ll, effects.gradient(grad_g, theta_g, full, Zu)

    return fun, effects, design, Zu, codes


@pytest.mark.parametrize("dropout_at_zero", [False, True])
def test_the_pattern_likelihood_is_the_per_customer_formula_and_its_gradient_exact(dropout_at_zero):
    summary = simulate(600, seed=3)
    fun, effects, design, Zu, codes = objective(summary, ["channel", "age"], dropout_at_zero)
    rng = np.random.default_rng(0)
    full = np.concatenate([list(BASE.values()), rng.normal(0, 0.3, len(effects.coefficient_names))])
    ll, grad = fun(full)
    # the per-customer formula with each customer's own parameters (FHL 2005 eq. 6 / MBG/NBD)
    theta_i = effects.group_params(full, Zu)[codes]
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    direct = bgnbd.loglik_terms(*theta_i.T, x, t_x, T, dropout_at_zero=dropout_at_zero).sum()
    assert ll == pytest.approx(direct, rel=1e-12)
    # central differences
    assert_gradient(fun, full)


def test_the_fit_recovers_the_simulated_coefficients(fitted):
    table = fitted.estimates()
    truth = {**BASE, **TRUE}
    assert list(table.index) == list(truth)
    for name, value in truth.items():
        est, se = table.loc[name, "estimate"], table.loc[name, "se"]
        assert abs(est - value) < 4 * se, (name, est, value, se)
    # the coefficients' intervals are Wald intervals on their own scale (they may be negative)
    name = "alpha: channel[web]"
    lo, hi = table.loc[name, "lower 95%"], table.loc[name, "upper 95%"]
    est, se = table.loc[name, "estimate"], table.loc[name, "se"]
    assert lo < 0 and lo == pytest.approx(est - 1.959964 * se) and hi == pytest.approx(est + 1.959964 * se)


def test_the_likelihood_ratio_test_against_the_model_without_covariates(customers, fitted):
    plain = clv.BetaGeo().fit(customers, time_unit="W")
    test = fitted.likelihood_ratio_test()
    assert test["df"] == 9
    assert test["statistic"] == pytest.approx(2 * (fitted.loglik_ - plain.loglik_), rel=1e-9)
    assert test["p_value"] < 1e-10
    assert "LR test vs no covariates" in fitted.summary() and "reference 'direct'" in fitted.summary()
    # a covariate that does nothing: the test does not reject it
    noise = customers.assign(coin=np.random.default_rng(5).choice(["heads", "tails"], len(customers)))
    null = clv.BetaGeo(covariates=["coin"]).fit(noise, time_unit="W")
    assert null.loglik_ >= plain.loglik_ - 1e-6
    assert null.likelihood_ratio_test()["p_value"] > 0.01


def test_predictions_use_each_customers_parameters(customers, fitted):
    head = customers.iloc[:300]
    Zu, codes = patterns(fitted.design_.matrix(head))
    effects = fitted._effects(fitted.design_)
    full = np.array([fitted.params_[n] for n in effects.names])
    theta_i = effects.group_params(full, Zu)[codes].T
    x, t_x, T = (head[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(fitted.expected_purchases(head, 26),
                               bgnbd.conditional_expected_purchases(*theta_i, x, t_x, T, 26.0), rtol=1e-12)
    np.testing.assert_allclose(fitted.p_alive(head), bgnbd.p_alive(*theta_i, x, t_x, T), rtol=1e-12)
    # customers differing only in channel get different forecasts; the interval brackets the estimate
    pair = pd.DataFrame({"frequency": [2.0, 2.0], "recency": [30.0, 30.0], "T": [52.0, 52.0],
                         "channel": ["direct", "partner"], "age": [4.0, 4.0]})
    ci = fitted.expected_purchases(pair, "1y", interval=0.9)
    assert ci.iloc[1, 0] > ci.iloc[0, 0]
    assert np.all((ci.iloc[:, 1] < ci.iloc[:, 0]) & (ci.iloc[:, 0] < ci.iloc[:, 2]))


def test_the_estimates_say_what_each_coefficient_multiplies_its_parameter_by(fitted):
    # a web customer of age 0 against the reference (direct, age 0): each parameter times its multiplier
    table = fitted.estimates()
    web = pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [52.0], "channel": ["web"], "age": [0.0]})
    direct = web.assign(channel="direct")
    (theta_web,), _ = fitted.group_draws(web)
    (theta_ref,), _ = fitted.group_draws(direct)
    for k, p in enumerate(fitted.param_names):
        multiplier = table.loc[f"{p}: channel[web]", "multiplier"] if p in ("alpha", "a", "b") else 1.0
        np.testing.assert_allclose(theta_web[0, k], theta_ref[0, k] * multiplier, rtol=1e-12)
    assert table.loc[list(fitted.param_names), "multiplier"].isna().all()
    statement = fitted.fit_statement()
    assert "reference 'direct'" in statement and "alpha x exp(-c'z)" in statement and "LR test" not in statement
    assert "likelihood-ratio test against the model without covariates: chi2 = " in statement


def test_interval_draws_follow_the_estimates_sampling_distribution(fitted):
    draws = fitted._estimate_draws(0.9, 4000)
    work = fitted.result_.from_working
    assert draws.shape == (4000, 13)
    is_linear = np.array([n in fitted.result_.linear for n in fitted.result_.param_names])
    working = np.where(is_linear, draws, np.log(np.where(is_linear, 1.0, draws)))
    np.testing.assert_allclose(working.mean(axis=0), fitted.result_.working(), atol=0.1 * np.sqrt(np.diag(fitted.result_.cov_log)).max())
    np.testing.assert_allclose(np.cov(working.T), fitted.result_.cov_log, atol=0.1 * np.abs(fitted.result_.cov_log).max())
    assert work(fitted.result_.working()) == pytest.approx([fitted.params_[n] for n in fitted.result_.param_names])


def test_weights_give_the_same_fit_as_expanded_rows():
    summary = simulate(3000, seed=11)
    summary[["recency", "T"]] = np.ceil(summary[["recency", "T"]])  # whole weeks, as a weekly log gives
    cols = ["frequency", "recency", "T", "channel", "age"]
    counted = summary.groupby(cols).size().rename("n").reset_index()
    assert len(counted) < 0.8 * len(summary)
    expanded = clv.BetaGeo(covariates=["channel", "age"]).fit(summary)
    weighted = clv.BetaGeo(covariates=["channel", "age"]).fit(counted, weights="n")
    for name, value in expanded.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-6, abs=1e-8), name


def test_the_mbg_nbd_takes_covariates_too():
    summary = simulate(5000, seed=4, model="mbgnbd")
    model = clv.ModifiedBetaGeo(covariates=["channel"]).fit(summary)
    assert model.result_.linear == ("alpha: channel[partner]", "alpha: channel[web]", "a: channel[partner]",
                                    "a: channel[web]", "b: channel[partner]", "b: channel[web]")
    assert model.params_["alpha: channel[partner]"] > 0  # partner customers buy more often (alpha 0.5 in the truth)
    assert np.all(model.p_alive(summary.head(50)) < 1)


def test_population_quantities_are_refused_with_covariates(fitted):
    reference = fitted.param_draws()  # the reference customers' (z = 0)
    assert reference.shape == (1, 1, 4) and reference[0, 0, 1] == fitted.params_["alpha"]
    with pytest.raises(ValueError, match="differ by customer"):
        fitted.expected_purchases_new(10)
    with pytest.raises(ValueError, match="differ by customer"):
        fitted.purchase_probabilities_new(10)


def test_predictions_need_the_covariates_and_refuse_unseen_levels(customers, fitted):
    with pytest.raises(DataError, match="covariate columns are not in the summary") as caught:
        fitted.expected_purchases(customers.drop(columns="age").head(), 10)
    assert caught.value.columns == ("age",)
    other = customers.head(4).copy()
    other.loc[2, "channel"] = "catalogue"
    with pytest.raises(DataError, match="'catalogue' was not seen in fitting.*customers 2"):
        fitted.p_alive(other)
    assert fitted.input_columns() == ["frequency", "recency", "T", "channel", "age"]


def test_model_files_keep_the_design_and_refuse_an_edited_one(tmp_path, customers, fitted):
    path = tmp_path / "cov.json"
    fitted.save(path)
    loaded = clv.BetaGeo.load(path)
    assert loaded.design_.to_dict() == fitted.design_.to_dict()
    assert loaded.result_.linear == fitted.result_.linear
    head = customers.head(200)
    pd.testing.assert_frame_equal(loaded.expected_purchases(head, 52, interval=0.9),
                                  fitted.expected_purchases(head, 52, interval=0.9))
    content = json.loads(path.read_text())
    content["models"]["bgnbd"]["covariates"]["levels"]["channel"] = ["app"]
    content.pop("sha256")
    content["sha256"] = clv.models.persistence.checksum(content)
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=r"covariates\.levels\.channel must be a list of at least two levels"):
        clv.BetaGeo.load(path)


def test_the_command_line_carries_a_channel_from_the_log_into_the_fit_and_the_scores(tmp_path):
    from tests.cli_run import run_cli

    sim = clv.simulate(3000, rng=9, segments={"web": (0.5, {"alpha": 2.0}), "store": (0.5, {"alpha": 8.0})})
    log = sim.transactions.rename(columns={"customer_id": "cust", "date": "day", "segment": "channel"})
    log.to_csv(tmp_path / "log.csv", index=False)
    out = run_cli("summarize", tmp_path / "log.csv", "--customer", "cust", "--date", "day", "--amount", "amount",
                  "--attributes", "channel", "-o", tmp_path / "s.csv")
    assert out.returncode == 0, out.stderr
    summary = pd.read_csv(tmp_path / "s.csv", index_col=0)
    assert summary["channel"].value_counts().to_dict() == {"store": 1500, "web": 1500}
    out = run_cli("fit", tmp_path / "s.csv", "--time-unit", "W", "--covariates", "channel", "-o", tmp_path / "m.json")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("LR test vs no covariates") == 2  # BG/NBD's and Gamma-Gamma's
    model = clv.load_models(tmp_path / "m.json")["bgnbd"]
    # web customers' alpha is a quarter of store's: the coefficient on the purchase rate is ln 4
    coef, se = model.params_["alpha: channel[web]"], model.result_.se["alpha: channel[web]"]
    assert abs(coef - np.log(4.0)) < 4 * se
    out = run_cli("predict", tmp_path / "m.json", tmp_path / "s.csv", "--time-unit", "W", "--horizons", "1y",
                  "--annual-discount-rate", "0.1", "-o", tmp_path / "scores.csv")
    assert out.returncode == 0, out.stderr
    scores = pd.read_csv(tmp_path / "scores.csv", index_col=0).join(summary["channel"])
    means = scores.groupby("channel")["expected_purchases_1y"].mean()
    assert means["web"] > 1.5 * means["store"]
    # a summary without the column, and bad flags: one line each, exit 2
    summary.drop(columns="channel").to_csv(tmp_path / "bare.csv")
    for args in [("predict", tmp_path / "m.json", tmp_path / "bare.csv", "--time-unit", "W", "-o", tmp_path / "x.csv"),
                 ("fit", tmp_path / "s.csv", "--time-unit", "W", "--covariates", "region", "-o", tmp_path / "x.json"),
                 ("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "nbd", "--covariates", "channel",
                  "-o", tmp_path / "x.json"),
                 ("summarize", tmp_path / "log.csv", "--customer", "cust", "--date", "day", "--attributes",
                  "channel:often", "-o", tmp_path / "x.csv")]:
        out = run_cli(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (args, out.stderr)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.json").exists()


def spend_summary(n: int, seed: int, effect: float = 0.7) -> pd.DataFrame:
    """Gamma-Gamma spend (FHL 2005 JMR): zbar of x ~ Poisson + 1 purchases, each Gamma(p, nu), nu ~ Gamma(q,
    rate gamma_i), gamma_i = gamma exp(effect [channel = web]); CDNOW's p, q, gamma."""
    rng = np.random.default_rng(seed)
    p, q, gamma = 6.25, 3.74, 15.44
    channel = rng.choice(["direct", "web"], n)
    gamma_i = gamma * np.exp(effect * (channel == "web"))
    nu = rng.gamma(q, 1.0 / gamma_i)
    x = rng.poisson(2.0, n).astype(float)
    zbar = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-9), 1.0 / (np.maximum(x, 1) * nu)), 0.0)
    return pd.DataFrame({"frequency": x, "monetary_value": zbar, "channel": channel},
                        index=pd.RangeIndex(n, name="customer_id"))


def test_gamma_gamma_with_covariates_scales_each_customers_spend():
    from clvmodels.models import gamma_gamma

    summary = spend_summary(8000, seed=2)
    model = clv.GammaGamma(covariates=["channel"]).fit(summary)
    coef, se = model.params_["gamma: channel[web]"], model.result_.se["gamma: channel[web]"]
    assert abs(coef - 0.7) < 4 * se and se < 0.1
    assert model.likelihood_ratio_test()["p_value"] < 1e-6
    # the pattern likelihood is the per-customer formula; its gradient exact
    repeat = summary[summary["frequency"] > 0]
    design = CovariateDesign(["channel"]).fit(summary)
    Zu, codes = patterns(design.matrix(repeat))
    effects = CovariateEffects(gamma_gamma.PARAMS, clv.GammaGamma.covariate_signs, design.names_)
    x, m = repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)
    (pair_group, xu), inv = np.unique(np.stack([codes, x]), axis=1, return_inverse=True)
    pairs = (xu, inv.ravel(), pair_group.astype(np.int64))

    def fun(full):
        theta_g = effects.group_params(full, Zu)
        ll, grad_g = gamma_gamma.group_loglik_and_grad(theta_g, x, m, np.ones(len(x)), pairs)
        return ll, effects.gradient(grad_g, theta_g, full, Zu)

    full = np.array([5.0, 3.0, 12.0, 0.4])
    theta_i = effects.group_params(full, Zu)[codes].T
    assert fun(full)[0] == pytest.approx(gamma_gamma.loglik_terms(*theta_i, x, m).sum(), rel=1e-12)
    assert_gradient(fun, full)
    # predictions: eq. (5) with each customer's gamma
    head = summary.head(100)
    Zh, ch = patterns(model.design_.matrix(head))
    est = np.array([model.params_[n] for n in effects.names])
    expected = gamma_gamma.conditional_expected_spend(*effects.group_params(est, Zh)[ch].T,
                                                      head["frequency"].to_numpy(float), head["monetary_value"].to_numpy(float))
    np.testing.assert_allclose(model.expected_spend(head), expected, rtol=1e-12)


@pytest.mark.slow  # (2-4 s: the fast tier keeps the others of this file)
def test_customer_value_combines_two_models_with_covariates(customers, fitted):
    rng = np.random.default_rng(8)
    with_spend = customers.assign(monetary_value=np.where(customers["frequency"] > 0, rng.gamma(6.0, 5.0, len(customers)), 0.0))
    spend = clv.GammaGamma(covariates=["channel"]).fit(with_spend)
    head = with_spend.head(400)
    value = clv.customer_value(fitted, spend, head, ["1y"], annual_discount_rate=0.1, interval=0.8)
    discount = 1 / 1.1  # a purchase within the year is worth at least this share of its spend today, at 10%
    assert np.all(value["value_1y"] <= value["expected_purchases_1y"] * value["expected_spend"] + 1e-9)
    assert np.all(value["value_1y"] >= discount * value["expected_purchases_1y"] * value["expected_spend"] - 1e-9)
    np.testing.assert_allclose(value["expected_spend"], spend.expected_spend(head), rtol=1e-12)
    np.testing.assert_allclose(value["expected_purchases_1y"], fitted.expected_purchases(head, "1y"), rtol=1e-12)
    assert np.all(value["value_1y lower 80%"] <= value["value_1y upper 80%"])


def pareto_summary(n: int, seed: int) -> pd.DataFrame:
    """Pareto/NBD customers (FHL 2005's CDNOW estimates) whose alpha and beta follow a channel by FH
    (2007): alpha_i = alpha exp(-0.6 [web]), beta_i = beta exp(-0.8 [web])."""
    rng = np.random.default_rng(seed)
    params = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.67}
    channel = rng.choice(["direct", "web"], n)
    web = (channel == "web").astype(float)
    lam = rng.gamma(params["r"], 1.0 / (params["alpha"] * np.exp(-0.6 * web)))
    mu = rng.gamma(params["s"], 1.0 / (params["beta"] * np.exp(-0.8 * web)))
    truth = {"lambda_": lam, "mu_": mu, "lifetime": rng.exponential(1.0 / mu)}
    T = rng.uniform(30.0, 78.0, n)
    state, idx, times = draw_purchases("pnbd", truth, params, T, rng)
    last = np.zeros(n)
    np.maximum.at(last, idx, times)
    return pd.DataFrame({"frequency": state["n_repeat"].astype(float), "recency": last, "T": T,
                         "channel": channel}, index=pd.RangeIndex(n, name="customer_id"))


@pytest.mark.slow  # (2-4 s: the fast tier keeps the others of this file)
def test_pareto_nbd_with_covariates():
    from clvmodels.models import pnbd

    summary = pareto_summary(20_000, seed=5)
    model = clv.ParetoNBD(covariates=["channel"]).fit(summary, time_unit="W")
    for name, truth in (("alpha: channel[web]", 0.6), ("beta: channel[web]", 0.8)):
        assert abs(model.params_[name] - truth) < 4 * model.result_.se[name], (name, model.params_[name])
    assert model.likelihood_ratio_test()["p_value"] < 1e-6
    # the pattern likelihood is the per-customer formula, its gradient exact (a small sample)
    small = summary.head(400)
    design = CovariateDesign(["channel"]).fit(small)
    Zu, codes = patterns(design.matrix(small))
    effects = CovariateEffects(pnbd.PARAMS, clv.ParetoNBD.covariate_signs, design.names_)
    x, t_x, T = (small[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    data = pnbd.Prepared(x, t_x, T, np.ones(len(x)), group=codes)

    def fun(full):
        theta_g = effects.group_params(full, Zu)
        ll, grad_g = pnbd.group_loglik_and_grad(theta_g, data)
        return ll, effects.gradient(grad_g, theta_g, full, Zu)

    full = np.array([0.5, 9.0, 0.7, 8.0, 0.9, -0.3])  # alpha and beta cross over: both sides of the integral
    theta_i = effects.group_params(full, Zu)[codes].T
    assert fun(full)[0] == pytest.approx(pnbd.loglik_terms(*theta_i, x, t_x, T).sum(), rel=1e-12)
    assert_gradient(fun, full)
    # predictions with each customer's own parameters
    head = summary.head(200)
    Zh, ch = patterns(model.design_.matrix(head))
    est = np.array([model.params_[n] for n in effects.names])
    theta_h = effects.group_params(est, Zh)[ch].T
    xh, txh, Th = (head[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(model.p_alive(head), pnbd.p_alive(*theta_h, xh, txh, Th), rtol=1e-12)
    np.testing.assert_allclose(model.expected_purchases(head, 39),
                               pnbd.conditional_expected_purchases(*theta_h, xh, txh, Th, 39.0), rtol=1e-10)


def test_the_cnbd_k_takes_covariates_at_the_k_chosen_without_them():
    from clvmodels.models import cnbd

    summary = simulate(8000, seed=12, model="bgcnbd", k=2)
    model = clv.BetaGeoCNBD(covariates=["channel"]).fit(summary, time_unit="W")
    assert model.k_ == 2 and model.result_.extra["k chosen"].startswith("by likelihood")
    for name in ("alpha: channel[partner]", "alpha: channel[web]"):
        assert abs(model.params_[name] - TRUE[name]) < 4 * model.result_.se[name], (name, model.params_[name])
    # the pattern likelihood is the per-customer formula, its gradient exact
    small = summary.head(500)
    design = CovariateDesign(["channel", "age"]).fit(small)
    Zu, codes = patterns(design.matrix(small))
    effects = CovariateEffects(cnbd.PARAMS, clv.BetaGeoCNBD.covariate_signs, design.names_)
    x, t_x, T, litt = (small[c].to_numpy(float) for c in ("frequency", "recency", "T", "litt"))
    timing = float(np.sum(litt - x * np.log(1.0)))  # k = 2: (k - 1) litt - x log((k - 1)!)
    data = cnbd.CNBDData(x, t_x, T, np.ones(len(x)), 2, False, timing, group=codes)

    def fun(full):
        theta_g = effects.group_params(full, Zu)
        ll, grad_g = cnbd.group_loglik_and_grad(theta_g, data)
        return ll, effects.gradient(grad_g, theta_g, full, Zu)

    full = np.array([0.3, 2.0, 0.8, 2.5, 0.4, -0.3, 0.2, -0.4, 0.1, 0.05, 0.2, 0.3, -0.1])
    theta_i = effects.group_params(full, Zu)[codes].T
    assert fun(full)[0] == pytest.approx(cnbd.loglik_terms(*theta_i, x, t_x, T, litt, k=2).sum(), rel=1e-12)
    assert_gradient(fun, full)
    # predictions with each customer's own parameters
    head = summary.head(150)
    Zh, ch = patterns(model.design_.matrix(head))
    names = model._effects(model.design_).names
    est = np.array([model.params_[n] for n in names])
    theta_h = model._effects(model.design_).group_params(est, Zh)[ch].T
    xh, txh, Th = (head[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(model.expected_purchases(head, 26),
                               cnbd.conditional_expected_purchases(*theta_h, xh, txh, Th, 26.0, k=2), rtol=1e-9)


def test_backtests_score_candidates_with_covariates_from_the_logs_attributes():
    from clvmodels.backtest import Candidate

    sim = clv.simulate(2000, rng=9, segments={"web": (0.5, {"alpha": 2.0}), "store": (0.5, {"alpha": 8.0})})
    log = clv.read_transactions(sim.transactions.rename(columns={"segment": "channel"}), amount="amount",
                                attributes=["channel"])
    res = clv.backtest(log, calibration_end="2021-01-01", horizons=["26W"],
                       models=[Candidate("BG/NBD + channel", clv.BetaGeo(covariates=["channel"]),
                                         clv.GammaGamma(covariates=["channel"])),
                               Candidate("BG/NBD", clv.BetaGeo(), clv.GammaGamma())])
    assert res.failures.empty
    m = res.metrics.set_index(["model", "target", "metric"])["value"]
    for model in ("BG/NBD + channel", "BG/NBD"):
        assert np.isfinite(m[(model, "purchases", "cumulative_error_pct")]) and np.isfinite(m[(model, "spend", "mae")])
    # the population's tracking curve is the sum of each channel's, each at its own parameters (FHL 2005 eq. 9)
    cal = clv.calibration_holdout(log, "2021-01-01")
    covariate = clv.BetaGeo(covariates=["channel"]).fit(cal)
    birth, times = -cal["T"].to_numpy(), np.array([10.0, 26.0])
    by_channel = 0.0
    for channel in ("store", "web"):
        z = np.array([float(channel == "web")])
        theta = covariate._effects(covariate.design_).group_params(
            np.array([covariate.params_[n] for n in covariate.result_.param_names]), z[None, :])[0]
        ages = times[:, None] - birth[cal["channel"].to_numpy() == channel][None, :]
        by_channel = by_channel + bgnbd.expected_purchases_new(*theta, np.maximum(ages, 0.0)).sum(axis=1)
    total = covariate.expected_cumulative_purchases(birth, times, summary=cal)
    np.testing.assert_allclose(total, by_channel, rtol=1e-12)
    plain = clv.BetaGeo().fit(cal)
    np.testing.assert_allclose(plain.expected_cumulative_purchases(birth, times, summary=cal),
                               plain.expected_cumulative_purchases(birth, times), rtol=1e-12)
    with pytest.raises(ValueError, match="differ by customer"):
        covariate.expected_cumulative_purchases(birth, times)
