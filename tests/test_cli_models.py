"""The command line's fit and predict on data the models cannot use as given: what is kept, what exits 2."""


import pandas as pd
import pytest

import clvmodels as clv
from clvmodels.cli import main
from clvmodels.data.datasets import CDNOW_PARAMS, simulate


def _summary(tmp_path, tx, name="s.parquet", unit="W"):
    log_path, out = tmp_path / f"{name}.tx.csv", tmp_path / name
    tx.to_csv(log_path, index=False)
    assert main(["summarize", str(log_path), "--customer", "customer_id", "--date", "date", "--amount", "amount",
                 "--time-unit", unit, "-o", str(out), "-q"]) == 0
    return out


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and "internal error" not in err, err
    return err


def test_fit_keeps_the_purchase_model_when_spend_is_constant(tmp_path, capsys):
    tx = simulate(400, None, rng=2).transactions.drop_duplicates(["customer_id", "date"])
    tx["amount"] = 10.0
    summary = _summary(tmp_path, tx)
    out = tmp_path / "m.json"
    assert main(["fit", str(summary), "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Gamma-Gamma" in err and "--model bgnbd" in err and "overflow" not in err
    assert list(clv.load_models(out)) == ["bgnbd"]
    # asked for the spend model alone: nothing can be fitted, exit 2 with one line
    assert main(["fit", str(summary), "--model", "gamma-gamma", "-o", str(tmp_path / "g.json"), "-q"]) == 2
    assert "same mean spend" in _one_line_error(capsys)
    assert not (tmp_path / "g.json").exists()


def test_a_model_the_data_cannot_identify_exits_2(tmp_path, capsys):
    summary = _summary(tmp_path, simulate(5, None, rng=3).transactions)
    out = tmp_path / "m.json"
    assert main(["fit", str(summary), "-o", str(out), "-q"]) == 2
    assert "BG/NBD" in _one_line_error(capsys)
    assert not out.exists()


# the fast tier fits the smaller data set of each kind (dropout the same for everyone; r = 0.05, few repeat
# buyers); the larger one of each kind is in the full suite only
@pytest.mark.parametrize("params, n, seed", [(dict(CDNOW_PARAMS, a=50.0, b=1.0), 300, 0),
                                             pytest.param(dict(CDNOW_PARAMS, a=50.0, b=1.0), 1000, 1,
                                                          marks=pytest.mark.slow),
                                             pytest.param(dict(CDNOW_PARAMS, r=0.05), 100, 2, marks=pytest.mark.slow),
                                             (dict(CDNOW_PARAMS, r=0.05), 30, 0)])
def test_fits_on_hard_simulated_data_succeed_or_exit_2(tmp_path, capsys, params, n, seed):
    summary = _summary(tmp_path, simulate(n, params, rng=seed).transactions)
    code = main(["fit", str(summary), "--model", "bgnbd", "-o", str(tmp_path / "m.json"), "-q"])
    if code == 0:
        assert list(clv.load_models(tmp_path / "m.json")) == ["bgnbd"]
    else:
        assert code == 2
        err = _one_line_error(capsys)
        if params["a"] == 50.0:  # dropout the same for everyone: the message says so
            assert "same probability" in err


@pytest.fixture(scope="module")
def weekly_model(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("weekly")
    tx = simulate(300, None, rng=5).transactions
    tx.to_csv(tmp_path / "tx.csv", index=False)
    for unit in ("W", "D"):
        for suffix in ("parquet", "csv"):
            assert main(["summarize", str(tmp_path / "tx.csv"), "--customer", "customer_id", "--date", "date",
                         "--amount", "amount", "--time-unit", unit, "-o", str(tmp_path / f"s{unit}.{suffix}"),
                         "-q"]) == 0
    assert main(["fit", str(tmp_path / "sW.parquet"), "-o", str(tmp_path / "m.json"), "-q"]) == 0
    return tmp_path


def test_predict_refuses_a_summary_in_another_time_unit(weekly_model, capsys):
    d = weekly_model
    assert main(["predict", str(d / "m.json"), str(d / "sD.parquet"), "--horizons", "1y", "-o",
                 str(d / "p.csv"), "-q"]) == 2
    assert "time unit 'D'" in _one_line_error(capsys)
    # a CSV summary does not say its unit: --time-unit says it, and is checked the same way
    assert main(["predict", str(d / "m.json"), str(d / "sD.csv"), "--time-unit", "D", "--horizons", "1y", "-o",
                 str(d / "p.csv"), "-q"]) == 2
    assert "time unit 'D'" in _one_line_error(capsys)
    assert main(["predict", str(d / "m.json"), str(d / "sW.parquet"), "--time-unit", "D", "--horizons", "1y",
                 "-o", str(d / "p.csv"), "-q"]) == 2
    assert "--time-unit D" in _one_line_error(capsys)
    assert not (d / "p.csv").exists()
    assert main(["predict", str(d / "m.json"), str(d / "sW.csv"), "--time-unit", "W", "--horizons", "1y", "-o",
                 str(d / "p.csv"), "-q"]) == 0
    right = pd.read_csv(d / "p.csv", index_col=0)
    assert main(["predict", str(d / "m.json"), str(d / "sW.parquet"), "--horizons", "1y", "-o",
                 str(d / "p2.csv"), "-q"]) == 0
    pd.testing.assert_frame_equal(right, pd.read_csv(d / "p2.csv", index_col=0))


@pytest.mark.parametrize("rate", ["inf", "nan", "-1", "-1.5", "abc"])
def test_predict_refuses_an_impossible_discount_rate(weekly_model, capsys, rate):
    d = weekly_model
    assert main(["predict", str(d / "m.json"), str(d / "sW.parquet"), f"--annual-discount-rate={rate}",
                 "-o", str(d / "rate.csv"), "-q"]) == 2
    err = _one_line_error(capsys)
    assert "--annual-discount-rate" in err and "annual_discount_rate" not in err
    assert not (d / "rate.csv").exists()


def test_fit_with_nearly_constant_spend_keeps_the_purchase_model_without_numpy_noise(tmp_path, capsys):
    # every purchase costs 10, but purchases on one day add up: a few customers' means differ, and
    # Gamma-Gamma's p runs off (no spread within customers); no overflow on the way (warnings are errors)
    tx = simulate(500, None, rng=2).transactions
    tx["amount"] = 10.0
    summary = _summary(tmp_path, tx)
    assert "repeat an earlier row" in capsys.readouterr().err  # summarize says so, as a warning line
    out = tmp_path / "m.json"
    assert main(["fit", str(summary), "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cost the same each time" in err and "overflow" not in err
    assert list(clv.load_models(out)) == ["bgnbd"]
