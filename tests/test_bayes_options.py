"""The Bayesian models' sampler options: checked at fit (before any work), and refused by the CLI with
one line naming the flag."""

import pandas as pd
import pytest

pytest.importorskip("pymc")

import clvmodels as clv  # noqa: E402
from clvmodels.cli import main  # noqa: E402

SUMMARY = pd.DataFrame({"frequency": [0, 2, 1, 3], "recency": [0.0, 20.0, 5.0, 30.0], "T": [40.0, 38.0, 30.0, 39.0],
                        "monetary_value": [0.0, 20.0, 12.0, 31.0]})

BAD = [("draws", 0), ("draws", -5), ("draws", 2.5), ("draws", True), ("draws", "100"), ("tune", -1), ("tune", 0),
       ("chains", 0), ("chains", -2), ("target_accept", 0.0), ("target_accept", 1.0), ("target_accept", 1.5),
       ("target_accept", float("nan")), ("target_accept", "0.9"), ("random_seed", -1), ("random_seed", 1.5)]


@pytest.mark.parametrize("cls", ["BayesBetaGeo", "BayesGammaGamma"])
@pytest.mark.parametrize(("option", "value"), BAD)
def test_bad_sampler_options_are_refused_at_fit_naming_the_option(cls, option, value, monkeypatch):
    model = getattr(clv, cls)(**{option: value})  # (scikit-learn style: the constructor only stores)
    # refused before anything is fitted or sampled
    monkeypatch.setattr("clvmodels.models.bgnbd.BetaGeo.fit", lambda *a, **k: pytest.fail("fitted"))
    monkeypatch.setattr("clvmodels.models.gamma_gamma.GammaGamma.fit", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(ValueError, match=rf"^{option} must be .*, got {value!r}"):
        model.fit(SUMMARY, time_unit="W")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--tune", "-1", "argument --tune: must be a positive integer, got -1"),
    ("--tune", "0", "argument --tune: must be a positive integer, got 0"),
    ("--chains", "0", "argument --chains: must be a positive integer, got 0"),
    ("--draws", "0", "argument --draws: must be a positive integer, got 0"),
    ("--draws", "1e3", "argument --draws: must be a positive integer, got 1e3"),
    ("--target-accept", "1", "argument --target-accept: must be between 0 and 1 (exclusive), got 1"),
    ("--target-accept", "0", "argument --target-accept: must be between 0 and 1 (exclusive), got 0"),
    ("--target-accept", "nan", "argument --target-accept: must be between 0 and 1 (exclusive), got nan"),
    ("--target-accept", "x", "argument --target-accept: must be between 0 and 1 (exclusive), got x"),
])
def test_cli_refuses_bad_sampler_options_in_one_line_naming_the_flag(tmp_path, capsys, flag, value, message):
    SUMMARY.to_csv(tmp_path / "s.csv")
    code = main(["fit", str(tmp_path / "s.csv"), "--time-unit", "W", "--bayes", flag, value, "-o",
                 str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(("flag", "value"), [("--draws", "0"), ("--chains", "-1"), ("--target-accept", "2")])
def test_demo_refuses_bad_sampler_options(tmp_path, capsys, flag, value):
    code = main(["demo", "-o", str(tmp_path / "demo"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"argument {flag}:" in err, err
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("cls", ["BayesBetaGeo", "BayesGammaGamma"])
def test_segment_labels_a_model_file_would_change_are_refused_at_fit(cls, monkeypatch):
    # a date cohort saved as text would match no customer after loading: refused before any work
    monkeypatch.setattr("clvmodels.models.bgnbd.BetaGeo.fit", lambda *a, **k: pytest.fail("fitted"))
    monkeypatch.setattr("clvmodels.models.gamma_gamma.GammaGamma.fit", lambda *a, **k: pytest.fail("fitted"))
    dated = SUMMARY.assign(cohort=pd.to_datetime(["1997-01-01", "1997-01-01", "1997-02-01", "1997-02-01"]))
    with pytest.raises(clv.DataError, match=r"segment labels must be text, numbers or booleans.*not Timestamp.*strftime"):
        getattr(clv, cls)(segment="cohort").fit(dated, time_unit="W")
