"""The README's Python blocks that use only bundled data run as written."""

import re
from pathlib import Path

import numpy as np
import pytest

from clvmodels import DataWarning

#: The README's examples read the CDNOW sample, which repeats 21 rows exactly: users see this warning too.
CDNOW_REPEATS = "21 of 6,919 rows"

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_quick_start_and_model_blocks_run(tmp_path, monkeypatch):
    import clvmodels as clv

    monkeypatch.chdir(tmp_path)  # the blocks save models
    namespace: dict = {}
    quick = next(b for b in BLOCKS if "In five lines" in README.split(b)[0][-200:] or "customer_value(bg, gg, cal" in b)
    with pytest.warns(DataWarning, match=CDNOW_REPEATS):
        exec(compile(quick, "README quick start", "exec"), namespace)
    assert len(namespace["value"]) == 2357 and "value_3y" in namespace["value"].columns
    models = next(b for b in BLOCKS if "bg.summary()" in b)
    exec(compile(models, "README models", "exec"), namespace)
    assert namespace["bg"].params_["r"] > 0 and {p.name for p in tmp_path.iterdir()} == {"bgnbd.json", "models.json"}
    contract = next(b for b in BLOCKS if 'interval=0.9)   # DataFrame' in b)
    exec(compile(contract, "README contract", "exec"), namespace)
    family = next(b for b in BLOCKS if "clv.ParetoNBD().fit(cal)" in b)
    exec(compile(family, "README family", "exec"), namespace)
    assert namespace["cn"].k_ == 1 and namespace["pn"].loglik_ == pytest.approx(-9594.98, abs=0.01)
    covariates = next(b for b in BLOCKS if 'clv.BetaGeo(covariates=["cohort"])' in b)
    exec(compile(covariates, "README covariates", "exec"), namespace)
    bg, gg = namespace["bg"], namespace["gg"]
    test = bg.likelihood_ratio_test()
    assert (round(test["statistic"], 2), test["df"], round(test["p_value"], 3)) == (2.56, 6, 0.862)
    assert round(bg.params_["alpha: cohort[1997-02]"], 3) == 0.099
    assert round(bg.result_.se["alpha: cohort[1997-02]"], 3) == 0.128
    assert round(gg.likelihood_ratio_test()["p_value"], 3) == 0.789
    frequency = next(b for b in BLOCKS if "clv.FrequencyGammaGamma().fit(cal)" in b)
    exec(compile(frequency, "README frequency spend", "exec"), namespace)
    fg, cal = namespace["fg"], namespace["cal"]
    assert round(fg.params_["gamma: log(1 + frequency)"], 3) == 0.225
    assert round(fg.result_.se["gamma: log(1 + frequency)"], 3) == 0.041
    assert f"{fg.likelihood_ratio_test()['p_value']:.1e}" == "3.4e-08"
    buyers = cal[cal["holdout_frequency"] > 0]
    mae = {name: round(float(np.abs(buyers["holdout_frequency"] * m.expected_spend(buyers)
                                    - buyers["holdout_spend"]).mean()), 2)
           for name, m in (("frequency", fg), ("plain", clv.GammaGamma().fit(cal)))}
    assert mae == {"frequency": 40.19, "plain": 40.06}
    selection = next(b for b in BLOCKS if "clv.select_model(clv.load_cdnow()" in b)
    with pytest.warns(DataWarning, match=CDNOW_REPEATS):
        exec(compile(selection, "README selection", "exec"), namespace)
    ranking = namespace["chosen"].ranking_
    purchase, spend = ranking[ranking["role"] == "purchase"], ranking[ranking["role"] == "spend"]
    assert list(purchase.index[:2]) == ["BG/NBD", "BG/CNBD-k"] and list(spend.index) == [
        "Gamma-Gamma with frequency", "Gamma-Gamma"]
    shown = {name: round(purchase.loc[name, "log_score"], 4) for name in ("BG/NBD", "MBG/NBD", "Pareto/NBD", "NBD")}
    assert shown == {"BG/NBD": -0.4911, "MBG/NBD": -0.4911, "Pareto/NBD": -0.4953, "NBD": -0.5157}
    assert [round(v, 2) for v in spend["spend_mae"]] == [25.31, 25.43]


def test_printed_summary_in_readme_is_current():
    import clvmodels as clv

    with pytest.warns(clv.DataWarning, match=CDNOW_REPEATS):
        cal = clv.calibration_holdout(clv.load_cdnow(), calibration_end="1997-09-30", holdout_end="1998-06-30")
    actual = clv.BetaGeo().fit(cal).summary().splitlines()
    params = ("r", "alpha", "a", "b")
    shown = [line[2:] for line in README.splitlines()
             if line.startswith(("# log-likelihood", "# AIC") + tuple(f"# {p} " for p in params))]
    assert len(shown) == 6
    for line in shown:
        name = line.split()[0]
        if name not in params:
            assert line in actual, line
            continue
        (fitted,) = [a for a in actual if a.split()[:1] == [name]]
        estimate, *rest = map(float, line.split()[1:])
        got_estimate, *got_rest = map(float, fitted.split()[1:])
        assert line.split()[1] == fitted.split()[1], line  # the estimate, to every printed digit
        # standard errors and bounds come from a finite-difference Hessian: about 5 digits are stable
        # across releases of the dependencies (the sixth moved by one between two fresh installs)
        np.testing.assert_allclose(got_rest, rest, rtol=2e-5, err_msg=line)


@pytest.mark.slow
def test_report_and_value_table_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the block writes values.xlsx, report.html, backtest.html
    block = next(b for b in BLOCKS if "build_report(summary" in b)
    namespace: dict = {"clv": __import__("clvmodels")}
    with pytest.warns(DataWarning, match=CDNOW_REPEATS):
        exec(compile(block, "README report", "exec"), namespace)
    assert {"values.xlsx", "report.html", "report.md", "backtest.html"} <= {p.name for p in tmp_path.iterdir()}
    assert "net_value_3y" in namespace["table"].columns
    # the conclusion quoted in the README is the one the report generates
    from clvmodels.report import conclusions

    quoted = README.split('"Over 39W, trust')[1].split('" Then the customers')[0]
    assert conclusions(namespace["res"])[1].startswith(("Over 39W, trust" + quoted).replace("\n", " "))
