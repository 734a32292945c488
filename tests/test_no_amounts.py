"""Spend is optional: a log without amounts (visits, orders without prices) is summarised, fitted,
predicted, backtested (purchases scored, spend absent and said so) and reported, in Python and from the
command line."""


import pandas as pd
import pytest

import clvmodels as clv
from tests.cli_run import run_cli


@pytest.fixture(scope="module")
def visits():
    sim = clv.simulate(600, rng=2)
    return sim.transactions.drop(columns=["amount"]), sim.end


def run(*args):
    proc = run_cli(*args)
    return proc.returncode, proc.stderr


def test_backtest_scores_purchases_only_and_says_so(visits, tmp_path):
    tx, end = visits
    log = clv.read_transactions(tx, observation_end=end)
    cut = (pd.Timestamp(end) - pd.Timedelta(days=200)).date().isoformat()
    with pytest.warns(clv.DataWarning, match="no amounts: the backtest scores purchases only"):
        res = clv.backtest(log, calibration_end=cut, horizons=["13W"])
    assert res.targets == ("purchases",) and set(res.metrics["target"]) == {"purchases"}
    models = set(res.summary()["model"])  # (the models fitted, named without a spend model they never fitted)
    assert "BG/NBD" in models and not any("Gamma-Gamma" in m for m in models)
    with pytest.raises(ValueError, match="spend was not scored"):
        res.summary(target="spend")
    assert not any("spend" in c for c in res.predictions.columns)
    res.to_html(tmp_path / "report.html")
    assert "only purchases were scored" in (tmp_path / "report.html").read_text()


def test_the_command_line_runs_without_amounts(visits, tmp_path):
    tx, end = visits
    tx.to_csv(tmp_path / "visits.csv", index=False)
    code, err = run("summarize", tmp_path / "visits.csv", "--customer", "customer_id", "--date", "date",
                    "--log-end", end.date().isoformat(), "--time-unit", "W", "-o", tmp_path / "s.parquet")
    assert code == 0, err
    code, err = run("fit", tmp_path / "s.parquet", "-o", tmp_path / "m.json")
    assert code == 0 and "no amounts (monetary_value): fitting the purchase model only" in err, err
    assert list(clv.load(tmp_path / "m.json")) == ["bgnbd"]
    code, err = run("predict", tmp_path / "m.json", tmp_path / "s.parquet", "--horizons", "1y",
                    "-o", tmp_path / "p.csv", "-q")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["customer_id", "p_alive", "expected_purchases_1y"]
    cut = (pd.Timestamp(end) - pd.Timedelta(days=200)).date().isoformat()
    code, err = run("backtest", tmp_path / "visits.csv", "--customer", "customer_id", "--date", "date",
                    "--log-end", end.date().isoformat(), "--calibration-end", cut, "--horizons", "13W",
                    "-o", tmp_path / "report.html", "-q")
    assert code == 0 and "scores purchases only" in err, err
    assert (tmp_path / "report.html").exists()
