"""Backtests: the CDNOW holdout, simulated truth, metrics, unavailable horizons, plots, CLI."""

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels.backtest import Candidate, backtest, default_candidates, score
from tests.cli_run import run_cli

matplotlib.use("Agg")


#: BG/NBD against the formulas (the family's default backtest is in tests/test_report.py).
BG_AND_FORMULAS = default_candidates(["bgnbd", "run-rate", "aov-frequency-lifespan", "churn-rate", "retention"])


@pytest.fixture(scope="module")
def cdnow_result(cdnow_tx):
    with pytest.warns(clv.DataWarning, match=r"Not scored .*: 1y after 1997-09-30\."):  # the log ends 1998-06-30
        return backtest(cdnow_tx, "1997-09-30", horizons=["13W", "39W", "1y"], time_unit="W", show_progress=False,
                        models=BG_AND_FORMULAS)


def value(res, model, horizon, metric, target="purchases"):
    m = res.metrics
    sel = m[(m.model == model) & (m.horizon == horizon) & (m.metric == metric) & (m.target == target)]
    assert len(sel) == 1
    return float(sel["value"].iloc[0])


BG = "BG/NBD + Gamma-Gamma"


def test_cdnow_holdout_reproduces_the_paper(cdnow_result):
    res = cdnow_result
    # FHL (2005) figure 3: cumulative repeat purchases at week 78, -3.9% (4,171.4 vs 4,339) at the paper's
    # rounded parameters, week 78 counted from 1997-01-01; here from each customer's first purchase to the
    # holdout end (77.86 weeks), at the MLE: -4.1%.
    assert value(res, BG, "39W", "cumulative_error_pct") == pytest.approx(-3.9, abs=0.5)
    # the customer-level holdout total is the sum of the paper's figure-4 conditional expectations:
    # 1,653.4 predicted for 1,882 actual repeat purchases in weeks 40-78
    assert value(res, BG, "39W", "aggregate_error_pct") == pytest.approx(100 * (1653.4 - 1882) / 1882, abs=0.05)
    p = res.predictions
    p = p[(p.model == BG) & (p.horizon == "39W")]
    table = p.groupby(p["frequency"].clip(upper=7))[["predicted_purchases", "actual_purchases"]].mean()
    np.testing.assert_allclose(table["predicted_purchases"], [.225, .523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157],
                               atol=5e-4)
    np.testing.assert_allclose(table["actual_purchases"], [.237, .697, 1.393, 1.560, 2.532, 2.947, 3.862, 6.359],
                               atol=5e-4)
    assert res.unavailable[["cutoff", "horizon"]].values.tolist() == [["1997-09-30", "1y"]]
    # 90% predictive intervals from P(Y = n | history); counts are discrete, so coverage is at least 90%
    assert 0.9 <= value(res, BG, "39W", "coverage") <= 0.97
    # the randomised PIT scores the level itself when calibrated (measured: 0.889)
    assert 0.87 <= value(res, BG, "39W", "pit_coverage") <= 0.93
    assert "coverage" not in set(res.metrics[res.metrics.model != BG]["metric"])
    assert "1y" not in set(res.metrics["horizon"])


@pytest.fixture(scope="module")
def bg(cal):
    """BG/NBD fitted to the CDNOW calibration summary (once for the module; the tests only call it)."""
    return clv.BetaGeo().fit(cal)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9])
def test_coverage_from_the_cdf_equals_coverage_of_purchase_interval(level, cal, bg):
    # two routes to the same number: backtest scores coverage from P(Y < y), P(Y <= y)
    from clvmodels.backtest import interval_coverage

    y = cal["holdout_frequency"].to_numpy()
    iv = bg.purchase_interval(cal, 39, level=level)
    pc = bg.purchase_cdf(cal, 39, y)
    inside = (y >= iv["lower"]) & (y <= iv["upper"])
    assert interval_coverage(pc["below"], pc["at_most"], level) == inside.mean()
    # P(Y <= y) - P(Y < y) is the pmf at y
    probs = bg.purchase_probabilities(cal, 39, n_max=int(y.max()))
    np.testing.assert_allclose(pc["at_most"] - pc["below"], probs.to_numpy()[np.arange(len(y)), y], atol=1e-12)


def test_pit_coverage_is_the_level_for_draws_from_the_forecast():
    from clvmodels.backtest import pit_coverage

    rng = np.random.default_rng(5)
    mu = rng.gamma(0.5, 2.0, 20_000)
    y = rng.poisson(mu)  # counts drawn from the forecast distribution itself
    from scipy.stats import poisson

    below, at_most = poisson.cdf(y - 1, mu), poisson.cdf(y, mu)
    for level in (0.5, 0.9):
        assert pit_coverage(below, at_most, level) == pytest.approx(level, abs=0.01)
    # a forecast twice too high puts too many PIT values low: coverage falls below the level
    assert pit_coverage(poisson.cdf(y - 1, 2 * mu), poisson.cdf(y, 2 * mu), 0.9) < 0.85


def test_cdnow_bgnbd_against_every_heuristic(cdnow_result):
    res = cdnow_result
    heuristics = [m for m in res.metrics["model"].unique() if m != BG]
    assert len(heuristics) == 8
    for h in ["13W", "39W"]:
        for target in ["purchases", "spend"]:
            ours = value(res, BG, h, "rmse", target)
            assert all(ours < value(res, m, h, "rmse", target) for m in heuristics), (h, target)
        ours = abs(value(res, BG, h, "aggregate_error_pct"))
        assert all(ours < abs(value(res, m, h, "aggregate_error_pct")) for m in heuristics)
    # On MAE, BG/NBD does NOT beat every heuristic: heuristics that forecast almost nothing (-70% to -90%
    # in total) score lower MAE on a holdout where most customers buy nothing. Recorded, not hidden:
    mae = {m: value(res, m, "39W", "mae") for m in res.metrics["model"].unique()}
    assert mae[BG] == pytest.approx(0.785, abs=1e-3)
    assert min(mae.values()) < mae[BG]
    assert res.summary().query("horizon == '39W'").iloc[0]["model"] == BG  # ranked first by RMSE


def _simulated_backtest(seed, models=None):
    sim = clv.simulate(50_000, rng=seed, acquisition="1y", duration="5y", time_unit="W")
    log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
    cut = pd.Timestamp("2020-01-01") + pd.Timedelta(days=731)  # 2 years of calibration, 3 of holdout
    res = backtest(log, cut, horizons=["1y", "2y", "3y"], models=models, show_progress=False)
    assert res.unavailable.empty
    return res


@pytest.mark.slow
def test_simulated_truth_bgnbd_within_3_percent():
    # 50k simulated customers per run, 5 seeds fixed in advance (2020-2024). Single runs scatter by about
    # +-2 points around a small positive bias of about +1.5 points whose cause is not established yet
    # (suspects: times rounded to days, same-day purchases merged), so the acceptance is on the mean over
    # the seeds; every single run must stay within 5%.
    errors = {t: [] for t in ("purchases", "spend")}
    for seed in range(2020, 2025):
        res = _simulated_backtest(seed, default_candidates(["bgnbd"]) if seed != 2024 else None)
        for target in errors:
            row = [value(res, BG, h, "aggregate_error_pct", target) for h in ["1y", "2y", "3y"]]
            assert max(abs(v) for v in row) < 5, (seed, target, row)
            errors[target].append(row)
    for target, rows in errors.items():
        assert (np.abs(np.mean(rows, axis=0)) < 3).all(), (target, np.mean(rows, axis=0))
    # the last run had every candidate: each formula is off by more than 30%, and BG/NBD's RMSE is the lowest
    # (the family's other models, fitted to BG/NBD customers, come within 1%: BG/CNBD-k chooses k = 1)
    table = res.table("aggregate_error_pct")
    formulas = [m for m in table.index if res.roles[m] == "formula"]
    assert (table.loc[formulas].abs() > 30).all().all()
    rmse = res.table("rmse")
    assert (rmse.loc[BG] <= rmse.min() * 1.01).all() and (rmse.idxmin().map(res.roles) == "purchase").all()


def test_score_metrics_by_hand():
    m = score(np.array([1.0, 2.0, 0.0, 5.0]), np.array([0.0, 2.0, 1.0, 3.0]))
    assert m["aggregate_error_pct"] == pytest.approx(100 * (8 - 6) / 6)
    assert m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(np.sqrt(1.5))
    assert m["wape"] == pytest.approx(4 / 6)
    assert m["top_decile_share"] == pytest.approx(3 / 6)  # one customer: the highest forecast
    const = score(np.ones(10), np.arange(10.0))
    assert const["top_decile_share"] == pytest.approx(0.1) and np.isnan(const["spearman"])


def test_rolling_cutoffs_give_a_spread(cdnow_tx):
    res = backtest(cdnow_tx, "1997-06-30", horizons=["13W"], cutoffs="3M", time_unit="W",
                   models=default_candidates(["bgnbd", "run-rate"]), show_progress=False)
    assert sorted(res.metrics["cutoff"].unique()) == ["1997-06-30", "1997-09-29", "1997-12-29", "1998-03-30"]
    assert "mae_sd" in res.summary(by="mae").columns
    with pytest.raises(clv.DataError, match="no horizon fits"):
        backtest(cdnow_tx, "1998-06-01", horizons=["1y"], show_progress=False)


def test_outputs(tmp_path, cdnow_result):
    cdnow_result.to_json(tmp_path / "m.json")
    content = json.loads((tmp_path / "m.json").read_text())
    assert {"metrics", "calibration", "unavailable", "horizons"} <= set(content)
    cdnow_result.to_csv(tmp_path / "m.csv")
    back = pd.read_csv(tmp_path / "m.csv")
    assert list(back.columns) == ["cutoff", "model", "horizon", "target", "metric", "value"]
    assert len(back) == len(cdnow_result.metrics)


def test_plots_have_their_artists(cdnow_result, tmp_path):
    from matplotlib.figure import Figure

    from clvmodels import plots

    ax = plots.plot_frequency_holdout(cdnow_result, horizon="39W", ax=Figure().subplots())
    assert len(ax.patches) == 8 and len(ax.lines) == 9  # 8 frequency bars; one line per model
    ax = plots.plot_tracking(cdnow_result, ax=Figure().subplots())
    assert [line.get_label() for line in ax.lines] == ["actual", BG, "calibration end"]
    actual = ax.lines[0].get_ydata()
    assert actual[-1] == 4339  # cumulative repeat purchases to 1998-06-30
    ax = plots.plot_error_by_horizon(cdnow_result, ax=Figure().subplots())
    assert len(ax.patches) == 9 * 2  # models x available horizons
    ax = plots.plot_decile_lift(cdnow_result, model=BG, horizon="39W", ax=Figure().subplots())
    assert len(ax.patches) == 20
    files = plots.save_figures(cdnow_result, tmp_path / "figs")
    assert len(files) == 5 and all(f.stat().st_size > 10_000 for f in files)
    assert plots.plot_tracking(cdnow_result).figure is not None  # ax=None makes its own


def test_custom_candidate_and_bad_models(cdnow_tx):
    only = [Candidate("BG/NBD alone", clv.BetaGeo(), clv.GammaGamma())]
    res = backtest(cdnow_tx, "1997-09-30", horizons=["39W"], models=only, show_progress=False)
    assert set(res.metrics["model"]) == {"BG/NBD alone"}
    with pytest.raises(ValueError, match="unknown model"):
        default_candidates(["pareto"])
    with pytest.raises(ValueError, match=r"bgbb \(BG/BB\) is fitted on summaries by period.*summarize --period"):
        default_candidates(["bgnbd", "bgbb"])


@pytest.mark.slow
def test_cli_backtest(tmp_path, cdnow_df):
    cdnow_df.to_csv(tmp_path / "tx.csv", index=False)
    cmd = ["backtest", tmp_path / "tx.csv", "--customer", "customer_id",
           "--date", "date", "--amount", "amount", "--calibration-end", "1997-09-30", "--horizons", "39W,1y",
           "--models", "bgnbd,run-rate", "-o", tmp_path / "m.json", "--csv", tmp_path / "m.csv",
           "--figures", tmp_path / "figs"]
    proc = run_cli(*cmd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Not scored") == 1  # once, as a warning line
    assert "clvmodels: warning: Not scored (the log ends 1998-06-30, nothing is extrapolated): 1y after 1997-09-30." \
        in proc.stderr
    assert len(list((tmp_path / "figs").glob("*.png"))) == 5
    metrics = pd.read_csv(tmp_path / "m.csv")
    assert set(metrics["model"]) == {BG, "run-rate (per customer)", "run-rate (population)"}
    report = run_cli(*cmd[:-6], "-o", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    assert report.stdout.split() == [str(tmp_path / "r.html"), str(tmp_path / "r.md")]
    html = (tmp_path / "r.html").read_text()
    assert "<h2>Conclusion</h2>" in html and "<h2>Backtest</h2>" in html and "<h2>Data overview</h2>" not in html
    bad = run_cli(*cmd[:-6], "-o", tmp_path / "r.pdf")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and ".html" in bad.stderr
    assert not (tmp_path / "r.pdf").exists()
    bad = run_cli(*cmd[:2], "--customer", "nope", *cmd[4:])
    assert bad.returncode == 2 and "missing column" in bad.stderr


def test_a_candidate_that_cannot_fit_is_reported_and_the_rest_scored(cdnow_tx):
    # six weeks into acquisition: nobody is a quarter old (no retention), BG/NBD cannot be identified
    res = backtest(cdnow_tx, "1997-02-15", horizons=["13W"], show_progress=False, models=BG_AND_FORMULAS)
    assert set(res.failures["model"]) == {c.label for c in BG_AND_FORMULAS} - {
        "run-rate (per customer)", "run-rate (population)"}
    assert set(res.metrics["model"]) == {"run-rate (per customer)", "run-rate (population)"}
    assert res.summary(by="spearman")["rank"].tolist() == [1, 2]  # NaN (constant forecast) ranks last


def test_summary_by_any_metric_and_repeated_horizons(cdnow_result):
    for metric in ["mae", "spearman", "coverage", "cumulative_error_pct", "aggregate_error_pct"]:
        ranked = cdnow_result.summary(by=metric)
        assert (ranked.groupby("horizon", observed=True)["rank"].min() == 1).all(), metric
    by_error = cdnow_result.summary(by="aggregate_error_pct")
    assert by_error.query("horizon == '39W'").iloc[0]["model"] == BG  # smallest |error|
    with pytest.raises(ValueError, match="repeat"):
        backtest(pd.DataFrame(), "1997-09-30", horizons=[13, "13W"])


def test_tied_forecasts_share_a_decile():
    from clvmodels.backtest import _deciles

    table = _deciles(np.ones(100), np.arange(100.0))
    assert len(table) == 1 and table["actual"].iloc[0] == pytest.approx(49.5)
    table = _deciles(np.arange(100.0), np.arange(100.0))
    assert table["decile"].tolist() == list(range(1, 11)) and table["actual"].tolist() == [
        4.5 + 10 * k for k in range(10)]


def test_rolling_cutoffs_use_the_same_rule_as_availability():
    # a log of exactly 400 days; cut-offs every 35 days from day 0; a 1y horizon (365 whole days) fits
    # after the cut-offs at days 0 and 35, not 70
    days = pd.date_range("2021-01-01", periods=401, freq="D")
    rng = np.random.default_rng(0)
    tx = pd.DataFrame({"customer_id": rng.integers(0, 300, 3000), "date": rng.choice(days[:30], 3000),
                       "amount": 10.0})
    tx.loc[0, "date"] = days[-1]
    extra = pd.DataFrame({"customer_id": rng.integers(0, 300, 3000), "date": rng.choice(days, 3000), "amount": 5.0})
    with pytest.warns(clv.DataWarning, match="rows in the DataFrame repeat an earlier row"):
        log = clv.read_transactions(pd.concat([tx, extra]), amount="amount")
    res = backtest(log, "2021-01-01", horizons=["1y"], cutoffs="35D", models=default_candidates(["run-rate"]),
                   show_progress=False)
    assert sorted(res.metrics["cutoff"].unique()) == ["2021-01-01", "2021-02-05"]


def test_horizons_past_the_log_warn_once_and_the_report_says_what_was_scored(cdnow_tx, tmp_path):
    log = cdnow_tx  # the log ends 1998-06-30
    with pytest.warns(clv.DataWarning) as record:
        res = backtest(log, "1997-09-30", horizons=["13W", "39W", "2y"], models=default_candidates(["run-rate"]),
                       cutoffs=["1998-01-31"], show_progress=False)
    messages = [str(w.message) for w in record if issubclass(w.category, clv.DataWarning)]
    assert len(messages) == 1
    assert all(s in messages[0] for s in ("39W after 1998-01-31", "2y after 1997-09-30 and 1998-01-31",
                                          "shorter horizons", "earlier calibration end"))
    assert "13W after" not in messages[0].split("Scored:")[0]
    report = res.to_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    md = (tmp_path / "r.md").read_text()
    for text in (html, md):
        assert "Scored: 13W after 1997-09-30 and 1998-01-31; 39W after 1997-09-30." in text
        assert "Not scored (the log ends 1998-06-30, nothing is extrapolated): 39W after 1998-01-31; 2y after " \
               "1997-09-30 and 1998-01-31." in text
        assert "over the horizons 13W, 39W, 2y" not in text
    assert report


def test_summary_ranks_coverage_by_its_distance_from_the_level():
    from clvmodels.backtest import BacktestResult

    rows = [{"cutoff": "1997-09-30", "model": model, "horizon": "1y", "target": "purchases", "metric": metric,
             "value": value}
            for model, cov in (("under", 0.55), ("close", 0.88), ("over", 0.99))
            for metric, value in (("coverage", cov), ("pit_coverage", cov), ("rmse", 1.0))]
    empty = pd.DataFrame()
    result = BacktestResult(metrics=pd.DataFrame(rows), calibration=empty, predictions=empty, unavailable=empty,
                            tracking=empty, failures=empty, time_unit="W", horizons=["1y"], interval=0.9)
    for by in ("coverage", "pit_coverage"):
        ranked = result.summary(by=by)
        assert ranked["model"].tolist() == ["close", "over", "under"], ranked


def test_models_equal_but_for_rounding_tie_in_the_candidates_order():
    """A CNBD-k whose k is 1 is the BG/NBD: RMSEs apart by the optimiser's tolerance (seen on the demo:
    0.7579 and 0.7579 ranked 2 and 3) share a rank, listed as the candidates were given, whichever came
    out lower."""
    from clvmodels.backtest import BacktestResult

    rmse = 1.607982
    rows = [{"cutoff": "1997-09-30", "model": model, "horizon": "39W", "target": "purchases", "metric": "rmse",
             "value": value}
            for model, value in (("worse", rmse * 1.001), ("BG/NBD", rmse * (1 + 4e-11)), ("BG/CNBD-k", rmse),
                                 ("best", rmse * 0.99))]
    empty = pd.DataFrame()
    result = BacktestResult(metrics=pd.DataFrame(rows), calibration=empty, predictions=empty, unavailable=empty,
                            tracking=empty, failures=empty, time_unit="W", horizons=["39W"], interval=0.9)
    ranked = result.summary()
    assert ranked["model"].tolist() == ["best", "BG/NBD", "BG/CNBD-k", "worse"], ranked
    assert ranked["rank"].tolist() == [1, 2, 2, 4]
