"""One loader: the command line reads every model file the API writes, and the API every file the command
line writes (maximum-likelihood and Bayesian, alone or combined)."""


import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from tests.cli_run import run_cli


def run(*args):
    proc = run_cli(*args)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def fitted(cdnow_tx):
    cal = clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30", time_unit="W")
    return cal, clv.BetaGeo().fit(cal), clv.GammaGamma().fit(cal)


@pytest.fixture()
def summary_csv(tmp_path, fitted):
    path = tmp_path / "s.csv"
    fitted[0].iloc[:200][["frequency", "recency", "T", "monetary_value"]].to_csv(path)
    return path


def scores(path):
    return pd.read_csv(path, index_col=0, dtype={0: str})


def test_the_command_line_reads_models_saved_from_python(tmp_path, fitted, summary_csv):
    cal, bg, gg = fitted
    part = cal.iloc[:200]
    assert bg.save(tmp_path / "bg.json") == [tmp_path / "bg.json"]
    code, err = run("predict", tmp_path / "bg.json", summary_csv, "--time-unit", "W", "--horizons", "1y",
                    "-o", tmp_path / "p.csv", "-q")
    assert code == 0, err
    np.testing.assert_allclose(scores(tmp_path / "p.csv")["expected_purchases_1y"],
                               bg.expected_purchases(part, "1y"), rtol=1e-12)
    clv.save({"purchases": bg, "spend": gg}, tmp_path / "both.json")  # any names: the roles decide
    code, err = run("predict", tmp_path / "both.json", summary_csv, "--time-unit", "W", "--horizons", "1y",
                    "--interval", "0.8", "-o", tmp_path / "v.csv", "-q")
    assert code == 0, err
    got = scores(tmp_path / "v.csv")
    want = clv.customer_value(bg, gg, part, horizons=["1y"], interval=0.8)
    np.testing.assert_allclose(got[want.columns], want, rtol=1e-9)
    gg.save(tmp_path / "gg.json")
    code, err = run("predict", tmp_path / "bg.json", summary_csv, "--spend-model", tmp_path / "gg.json",
                    "--time-unit", "W", "--horizons", "1y", "-o", tmp_path / "w.csv", "-q")
    assert code == 0, err
    np.testing.assert_allclose(scores(tmp_path / "w.csv")["value_1y"], want["value_1y"], rtol=1e-9)
    # two purchase models: refused, naming them
    code, err = run("predict", tmp_path / "bg.json", summary_csv, "--spend-model", tmp_path / "bg.json",
                    "-o", tmp_path / "x.csv")
    assert code == 2 and "2 purchase models (BetaGeo, BetaGeo)" in err


def test_python_reads_models_saved_by_the_command_line(tmp_path, fitted, summary_csv):
    cal, bg, gg = fitted
    cal[["frequency", "recency", "T", "monetary_value"]].to_csv(tmp_path / "all.csv")
    code, err = run("fit", tmp_path / "all.csv", "--time-unit", "W", "-o", tmp_path / "m.json", "-q")
    assert code == 0, err
    models = clv.load(tmp_path / "m.json")
    assert sorted(models) == ["bgnbd", "gamma-gamma"]
    for mine, theirs in ((models["bgnbd"], bg), (models["gamma-gamma"], gg)):
        for name, value in theirs.params_.items():
            assert mine.params_[name] == pytest.approx(value, rel=1e-6)


def test_bayesian_files_round_trip_through_save_and_load(tmp_path, fitted, summary_csv):
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    cal, bg, gg = fitted
    rng = np.random.default_rng(2)
    hb = clv.BayesBetaGeo(chains=2)
    hb.idata_ = az.from_dict(posterior={n: v * np.exp(rng.normal(0.0, 0.05, (2, 50))) for n, v in bg.params_.items()})
    hb.segments_, hb.time_unit_, hb.mle_ = ["all"], "W", bg
    written = clv.save(hb, tmp_path / "hb.json")
    assert [p.suffix for p in written] == [".json", ".nc"]
    back = clv.load(tmp_path / "hb.json")["BayesBetaGeo"]
    part = cal.iloc[:200]
    pd.testing.assert_series_equal(back.p_alive(part), hb.p_alive(part))
    with pytest.raises(clv.DataError, match="saved alone"):
        clv.save({"hb": hb, "gg": gg}, tmp_path / "x.json")
    # a Bayesian purchase model with a maximum-likelihood spend model, from the command line
    gg.save(tmp_path / "gg.json")
    code, err = run("predict", tmp_path / "hb.json", summary_csv, "--spend-model", tmp_path / "gg.json",
                    "--time-unit", "W", "--horizons", "1y", "--interval", "0.9", "-o", tmp_path / "v.csv", "-q")
    assert code == 0, err
    want = clv.customer_value(hb, gg, part, horizons=["1y"], interval=0.9)
    np.testing.assert_allclose(scores(tmp_path / "v.csv")[want.columns], want, rtol=1e-9)
