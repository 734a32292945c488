"""The NBD model (Poisson purchasing, gamma rates, no dropout), added in one module (clvmodels/models/nbd.py):
its formulas checked against independent ones, its fit against simulated truth, and its place in every
layer above the models, which it reaches through the contract and the registry alone."""


import numpy as np
import pandas as pd
import pytest
from scipy import stats

import clvmodels as clv
from tests.cli_run import run_cli
from clvmodels.models import nbd as N


def test_loglik_is_the_negative_binomial_of_the_counts_on_the_time_scale():
    # the count x ~ NB(r, alpha / (alpha + T)); the purchase times' likelihood differs by T^x / x!
    r, alpha = 0.7, 9.0
    x, T = np.array([0.0, 1, 5, 40]), np.array([30.0, 12.0, 52.0, 78.0])
    counts = stats.nbinom.logpmf(x, r, alpha / (alpha + T))
    minus_log_factorial = stats.poisson.logpmf(x, 1.0) + 1.0  # log P(x | mean 1) = -1 - log x!
    np.testing.assert_allclose(N.loglik_terms(r, alpha, x, T), counts - minus_log_factorial - x * np.log(T), rtol=1e-12)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, T, w = rng.poisson(3, 50).astype(float), rng.uniform(5, 80, 50), rng.integers(1, 4, 50).astype(float)
    theta = np.array([0.8, 11.0])
    _, grad = N.loglik_and_grad(theta, x, T, w)
    for j in range(2):
        step = np.zeros(2)
        step[j] = 1e-6 * theta[j]
        fd = (N.loglik_and_grad(theta + step, x, T, w)[0] - N.loglik_and_grad(theta - step, x, T, w)[0]) / (2 * step[j])
        assert grad[j] == pytest.approx(fd, rel=1e-6)


def test_cdf_and_expectation_agree_with_the_negative_binomial():
    r, alpha, x, T, t = 0.7, 9.0, np.array([0.0, 3.0]), np.array([30.0, 40.0]), 26.0
    p = (alpha + T) / (alpha + T + t)
    want = stats.nbinom.cdf(np.arange(61)[None, :], (r + x)[:, None], p[:, None])
    np.testing.assert_allclose(N.conditional_cdf(r, alpha, x, T, t, 60), want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(N.conditional_expected_purchases(r, alpha, x, T, t),
                               stats.nbinom.mean((r + x), p), rtol=1e-12)


def simulated(n=20_000, r=0.8, alpha=10.0, seed=3):
    rng = np.random.default_rng(seed)
    T = rng.uniform(20, 80, n)
    x = rng.poisson(rng.gamma(r, 1 / alpha, n) * T).astype(float)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)  # (the last of x uniform times)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T}, index=pd.RangeIndex(n, name="customer_id"))


def test_fit_recovers_simulated_parameters_within_their_intervals():
    model = clv.NBD().fit(simulated(), time_unit="W")
    ci = model.result_.conf_int(0.99)
    for name, truth in (("r", 0.8), ("alpha", 10.0)):
        assert ci[name][0] < truth < ci[name][1], (name, model.params_[name])
    assert model.p_alive(simulated().iloc[:5]).eq(1.0).all()


@pytest.mark.slow  # (3-5 s) fast: test_report.py's default backtest and report, test_contract.py's customer_value[NBD]
def test_value_backtest_and_report_take_the_nbd(cal, cdnow_tx, tmp_path):
    nbd, gg = clv.NBD().fit(cal), clv.GammaGamma().fit(cal)
    value = clv.customer_value(nbd, gg, cal, horizons=["1y"])
    np.testing.assert_allclose(value["expected_purchases_1y"], nbd.expected_purchases(cal, "1y"), rtol=1e-12)
    from clvmodels.backtest import default_candidates

    res = clv.backtest(cdnow_tx, calibration_end="1997-09-30", horizons=["39W"],
                       models=default_candidates(["nbd", "bgnbd"]))
    rmse = res.table("rmse")
    assert {"NBD + Gamma-Gamma", "BG/NBD + Gamma-Gamma"} <= set(rmse.index)
    nbd_metrics = set(res.metrics.loc[res.metrics.model == "NBD + Gamma-Gamma", "metric"])
    assert {"coverage", "pit_coverage", "cumulative_error_pct"} <= nbd_metrics
    assert "NBD + Gamma-Gamma" in res.tracking.columns  # (its tracking curve: E[X(t)] = r t / alpha)
    assert nbd.expected_purchases_new(52) == pytest.approx(nbd.params_["r"] * 52 / nbd.params_["alpha"], rel=1e-12)
    res.to_html(tmp_path / "report.html", models={"NBD": nbd})
    assert "NBD: maximum-likelihood estimates" in (tmp_path / "report.html").read_text()


def test_cli_fits_saves_and_predicts_the_nbd(cal, tmp_path):
    cal[["frequency", "recency", "T", "monetary_value"]].to_csv(tmp_path / "s.csv")

    run = run_cli

    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "nbd,gamma-gamma", "-o", tmp_path / "m.json",
               "-q")
    assert proc.returncode == 0, proc.stderr
    models = clv.load(tmp_path / "m.json")
    assert isinstance(models["nbd"], clv.NBD)
    proc = run("predict", tmp_path / "m.json", tmp_path / "s.csv", "--time-unit", "W", "--horizons", "1y",
               "-o", tmp_path / "p.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(tmp_path / "p.csv", index_col=0, dtype={0: str})
    want = clv.customer_value(models["nbd"], models["gamma-gamma"], cal, horizons=["1y"])
    np.testing.assert_allclose(got["value_1y"], want["value_1y"], rtol=1e-9)
    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "nbd", "--bayes", "-o", tmp_path / "b.json")
    assert proc.returncode == 2 and "--bayes fits bgnbd, gamma-gamma, pnbd" in proc.stderr, proc.stderr
    assert proc.stderr.rstrip().endswith(", not nbd"), proc.stderr
    # two purchase models in one file could not be predicted from: refused at fit
    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "nbd,bgnbd", "-o", tmp_path / "two.json")
    assert proc.returncode == 2 and "names 2 purchase models: fit one per file" in proc.stderr, proc.stderr
