"""Bayesian BG/NBD: agrees with the MLE on CDNOW, converges, predicts with intervals; hierarchical runs."""

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

import clvmodels as clv  # noqa: E402
from tests.cli_run import run_cli  # noqa: E402
from clvmodels import DataError, NotFittedError  # noqa: E402

# every test samples with nutpie; short chains on purpose: the sampler-diagnostics warning is expected here
# (tests/test_bayes_divergences.py holds it)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::clvmodels.SamplingWarning")]


@pytest.fixture(scope="module")
def pooled(cal):
    return clv.BayesBetaGeo(draws=500, tune=500, chains=4, random_seed=7).fit(cal)


def test_cdnow_posterior_agrees_with_the_mle_and_converges(pooled):
    diag = pooled.diagnostics()
    for name in ["r", "alpha", "a", "b"]:
        mean, sd = diag.loc[name, "mean"], diag.loc[name, "sd"]
        assert abs(mean - pooled.mle_.params_[name]) < 2 * sd, name
    assert (diag["r_hat"] <= 1.01).all()
    assert pooled.divergences_ == 0
    assert "R-hat" not in pooled.summary() and "r_hat" in pooled.summary()


def test_predictions_have_intervals_around_the_mle(pooled, cal):
    e = pooled.expected_purchases(cal, 39, interval=0.9)
    assert list(e.columns) == ["expected_purchases_39W", "expected_purchases_39W lower 90%",
                               "expected_purchases_39W upper 90%"]
    lo, mid, hi = (e.iloc[:, k].to_numpy() for k in (1, 0, 2))
    assert (lo <= mid).all() and (mid <= hi).all() and (hi > lo).any()
    mle = pooled.mle_.expected_purchases(cal, 39).to_numpy()
    np.testing.assert_allclose(mid, mle, rtol=0.1, atol=1e-6)  # (some customers expect ~1e-10 purchases)
    inside = (mle >= lo - 1e-9) & (mle <= hi + 1e-9)
    assert inside.mean() > 0.95
    pa = pooled.p_alive(cal)
    assert ((pa.to_numpy() >= 0) & (pa.to_numpy() <= 1)).all()


def test_hierarchical_segments_run_and_shrink():
    sim = clv.simulate(1500, rng=3, segments={"web": (0.6, {"r": 0.6}), "store": (0.35, {"r": 0.3}),
                                              "phone": (0.05, {"r": 0.3})})
    log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
    rfm = clv.rfm_summary(log, time_unit="W")
    rfm["channel"] = sim.customers.loc[rfm.index, "segment"]
    hb = clv.BayesBetaGeo(segment="channel", draws=300, tune=500, chains=2, random_seed=1).fit(rfm)
    assert hb.segments_ == ["phone", "store", "web"]
    r = hb.idata_.posterior["r"].mean(("chain", "draw")).to_numpy()
    assert r[2] > r[1]  # web (true r 0.6) above store (true r 0.3)
    e = hb.expected_purchases(rfm, "1y")
    assert e.notna().all() and len(e) == len(rfm)
    table = hb.shrinkage(rfm)
    assert len(table) == 3 * 4 and set(table["segment"]) == {"phone", "store", "web"}
    r_rows = table[table.parameter == "r"].set_index("segment")
    assert r_rows.loc["phone", "customers"] == 75
    from matplotlib.figure import Figure

    from clvmodels.plots import plot_forest

    ax = plot_forest(table, "r", ax=Figure().subplots())
    assert len(ax.get_yticklabels()) == 3 and len(ax.collections) == 1  # one set of interval lines
    from clvmodels.plots import plot_posterior

    ax = plot_posterior(hb, "r", ax=Figure().subplots())
    assert len(ax.patches) == 3 and [t.get_text() for t in ax.get_legend().get_texts()][:3] == hb.segments_
    from clvmodels.report import build_report

    rep = build_report(rfm, models={"Bayesian BG/NBD by channel": hb}, shrinkage={"Bayesian BG/NBD by channel": table})
    figures = [b[1] for s in rep.sections for b in s.blocks if b[0] == "figure"]
    assert len(figures) == 8 and "posterior_bayesian_bg_nbd_by_channel_alpha.png" in figures  # 4 posterior + 4 forest
    with pytest.raises(DataError, match="segment not seen"):
        hb.expected_purchases(rfm.assign(channel="fax"), "1y")
    with pytest.raises(DataError, match="no segment column"):
        clv.BayesBetaGeo(segment="region").fit(rfm)


def test_unfitted():
    with pytest.raises(NotFittedError):
        clv.BayesBetaGeo().p_alive(pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]}))


def test_backtest_scores_posterior_predictive_coverage(pooled, cdnow_tx):
    from clvmodels.backtest import Candidate, backtest

    class Fitted:  # the pooled fit above, reused as a candidate (fit is a no-op)
        def __init__(self, model):
            self.model = model

        def fit(self, summary, time_unit=None):
            return self.model

    res = backtest(cdnow_tx, "1997-09-30", horizons=["39W"], show_progress=False,
                   models=[Candidate("Bayes BG/NBD + Gamma-Gamma", Fitted(pooled), clv.GammaGamma())])
    m = res.metrics.set_index(["target", "metric"])["value"]
    assert 0.9 <= m[("purchases", "coverage")] <= 0.97
    assert 0.87 <= m[("purchases", "pit_coverage")] <= 0.93
    assert m[("purchases", "aggregate_error_pct")] == pytest.approx(-12.1, abs=1.0)


def test_posterior_predictive_interval_is_the_mixture_over_draws(pooled, cal):
    # the grouped, capped computation against the plain one: conditional_pmf per draw, averaged
    from clvmodels.models.bgnbd import conditional_pmf

    part = cal.iloc[::40]
    x, t_x, T = (part[c].to_numpy() for c in ("frequency", "recency", "T"))
    draws = pooled.param_draws(max_draws=25)[:, 0, :]
    pmf = np.mean([conditional_pmf(*d, x, t_x, T, 39.0, 400) for d in draws], axis=0)
    cdf = np.cumsum(pmf, axis=1)
    iv = pooled.purchase_interval(part, 39, level=0.8, max_draws=25)
    np.testing.assert_array_equal(iv["lower"], (cdf < 0.1 - 1e-12).sum(axis=1))
    np.testing.assert_array_equal(iv["upper"], (cdf < 0.9 - 1e-12).sum(axis=1))
    y = part["holdout_frequency"].to_numpy()
    pc = pooled.purchase_cdf(part, 39, y, max_draws=25)
    np.testing.assert_allclose(pc["at_most"], cdf[np.arange(len(y)), y], atol=1e-12)


def test_save_and_load(pooled, cal, tmp_path):
    import json

    files = pooled.save(tmp_path / "hb.json")
    assert files[0].name == "hb.json" and re.fullmatch(r"hb\.posterior\.[0-9a-f]{16}\.nc", files[1].name)
    back = clv.BayesBetaGeo.load(tmp_path / "hb.json")
    pd.testing.assert_frame_equal(back.expected_purchases(cal, 39, interval=0.9),
                                  pooled.expected_purchases(cal, 39, interval=0.9))
    assert back.mle_.params_ == pooled.mle_.params_ and back.get_params() == pooled.get_params()
    content = json.loads((tmp_path / "hb.json").read_text())
    content["time_unit"] = "D"
    (tmp_path / "hb.json").write_text(json.dumps(content))
    with pytest.raises(DataError, match="modified"):
        clv.BayesBetaGeo.load(tmp_path / "hb.json")
    _, nc = pooled.save(tmp_path / "hb.json")
    with open(nc, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match="not the one saved"):
        clv.BayesBetaGeo.load(tmp_path / "hb.json")


def test_cli_fit_bayes_and_predict_with_intervals(tmp_path, cal):

    summary = cal[["frequency", "recency", "T", "monetary_value"]]
    summary.to_csv(tmp_path / "s.csv")

    run = run_cli

    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--bayes", "--draws", "200", "--tune", "300",
               "--chains", "2", "--seed", "3", "-o", tmp_path / "hb.json", "-q")
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("hb.posterior.*.nc"))) == 1
    proc = run("predict", tmp_path / "hb.json", tmp_path / "s.csv", "--horizons", "1y", "--interval", "0.9",
               "-o", tmp_path / "p.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(tmp_path / "p.csv")
    assert {"p_alive", "p_alive lower 90%", "expected_purchases_1y", "expected_purchases_1y upper 90%"} <= set(
        scores.columns)
    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--segment", "x", "-o", tmp_path / "m.json")
    assert proc.returncode == 2 and "--segment needs --bayes" in proc.stderr
    # the spend model, to its own file, and its scores with intervals
    proc = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--bayes", "--model", "gamma-gamma", "--draws", "200",
               "--tune", "300", "--chains", "2", "-o", tmp_path / "hg.json", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run("predict", tmp_path / "hg.json", tmp_path / "s.csv", "--interval", "0.9", "-o", tmp_path / "g.csv",
               "-q")
    assert proc.returncode == 0, proc.stderr
    spend = pd.read_csv(tmp_path / "g.csv")
    assert {"expected_spend", "expected_spend lower 90%", "expected_spend upper 90%"} <= set(spend.columns)


def test_bayes_gamma_gamma_agrees_with_the_mle(cal, tmp_path):
    gg = clv.BayesGammaGamma(draws=1000, tune=1000, chains=4, random_seed=2).fit(cal)
    diag = gg.diagnostics()
    for name in ["p", "q", "gamma"]:
        assert abs(diag.loc[name, "mean"] - gg.mle_.params_[name]) < 2 * diag.loc[name, "sd"], name
    assert (diag["r_hat"] <= 1.01).all()
    spend = gg.expected_spend(cal, interval=0.9)
    mle = gg.mle_.expected_spend(cal).to_numpy()
    assert ((spend.iloc[:, 1] <= mle * 1.05) & (spend.iloc[:, 2] >= mle * 0.95)).mean() > 0.95
    gg.save(tmp_path / "gg.json")
    back = clv.BayesGammaGamma.load(tmp_path / "gg.json")
    pd.testing.assert_frame_equal(back.expected_spend(cal, interval=0.9), spend)
    with pytest.raises(DataError, match="not a BayesBetaGeo"):
        clv.BayesBetaGeo.load(tmp_path / "gg.json")


def test_customer_value_with_credible_intervals(pooled, cal):
    gg = clv.GammaGamma().fit(cal)
    sub = cal.iloc[:300]
    value = clv.customer_value(pooled, gg, sub, horizons=["1y", "2y"], annual_discount_rate=0.1, max_draws=100,
                               interval=0.9)
    assert {"value_1y", "value_1y lower 90%", "value_1y upper 90%", "p_alive upper 90%"} <= set(value.columns)
    assert (value["value_1y lower 90%"] <= value["value_1y"]).all()
    assert (value["value_1y"] <= value["value_1y upper 90%"]).all()
    assert (value["value_2y"] >= value["value_1y"]).all()
    point = clv.customer_value(pooled.mle_, gg, sub, horizons=["1y", "2y"], annual_discount_rate=0.1)
    # the posterior mean of value is near the plug-in value at the MLE
    np.testing.assert_allclose(value["value_2y"], point["value_2y"], rtol=0.15, atol=0.5)


def test_bad_interval_is_refused(pooled, cal):
    with pytest.raises(ValueError, match="interval must be between 0 and 1"):
        pooled.p_alive(cal, interval=1.5)
    with pytest.raises(ValueError, match="interval must be between 0 and 1"):
        clv.customer_value(pooled, clv.GammaGamma().fit(cal), cal, interval=0.0)


def test_weights_give_the_same_chains_as_the_expanded_rows(cal):
    """A summary fitted whole, or as its distinct rows with counts (what clvmodels.spark.fit collects),
    is the same data: the same prior, the same start, the same seed, hence the same draws."""
    cols = ["frequency", "recency", "T"]
    distinct = cal.groupby(cols).size().rename("n").reset_index()
    opts = dict(draws=100, tune=100, chains=2, random_seed=3)
    whole = clv.BayesBetaGeo(**opts).fit(cal)
    counted = clv.BayesBetaGeo(**opts).fit(distinct, weights="n", time_unit="W")
    np.testing.assert_allclose(counted.idata_.posterior["r"].to_numpy(), whole.idata_.posterior["r"].to_numpy(),
                               rtol=1e-9)


def test_weighted_median_is_the_median_of_the_expanded_rows():
    from clvmodels.models._mle import weighted_median

    rng = np.random.default_rng(0)
    for n in range(1, 60):
        values, counts = rng.integers(0, 12, n).astype(float), rng.integers(0, 4, n)
        if counts.sum():
            assert weighted_median(values, counts.astype(float)) == np.median(np.repeat(values, counts))


def test_centred_where_segments_differ_more_than_their_estimates_vary():
    """Six large segments whose purchase rates differ a lot but share the dropout process: r is pinned by
    each segment's data well inside the spread between segments (centred in all); a and b are the same
    everywhere (non-centred). With three segments the spread is too uncertain: nothing is centred."""
    rates = {"s0": 0.2, "s1": 0.5, "s2": 1.0, "s3": 2.0, "s4": 3.0, "s5": 5.0}
    sim = clv.simulate(6000, rng=8, segments={k: (1 / 6, {"r": r, "alpha": 4.0 * r}) for k, r in rates.items()})
    log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
    rfm = clv.rfm_summary(log, time_unit="W")
    rfm["seg"] = sim.customers.loc[rfm.index, "segment"]
    model = clv.BayesBetaGeo(segment="seg")
    model.mle_ = clv.BetaGeo().fit(rfm)
    seg, labels = model._segments(rfm)
    estimates, centred = model._centring(rfm, seg, len(labels), None, "W")
    assert np.isfinite(estimates).all()
    assert centred[:, 0].all() and not centred[:, 2:].any()
    three = rfm[rfm["seg"].isin(["s0", "s2", "s5"])]
    seg3, labels3 = model._segments(three)
    assert not model._centring(three, seg3, len(labels3), None, "W")[1].any()
