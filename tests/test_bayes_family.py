"""The Bayesian buy-till-you-die family (clvmodels.bayes.family): each maximum-likelihood purchase model has a
Bayesian twin with its predictions over posterior draws; a pooled posterior agrees with the
maximum-likelihood fit (weak priors, thousands of customers); a hierarchy separates segments that differ;
model files round-trip; the CLI fits them with --bayes."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from tests.cli_run import run_cli

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from clvmodels.bayes.persistence import BAYES_MODELS  # noqa: E402
from clvmodels.models import MODEL_REGISTRY  # noqa: E402
from clvmodels.models.persistence import checksum  # noqa: E402

# short chains on purpose: the sampler-diagnostics warning is expected here (tests/test_bayes_divergences.py holds it)
pytestmark = pytest.mark.filterwarnings("ignore::clvmodels.SamplingWarning")

SHORT = {"bgnbd": "BayesBetaGeo", "mbgnbd": "BayesModifiedBetaGeo", "pnbd": "BayesParetoNBD",
         "bgcnbd": "BayesBetaGeoCNBD", "mbgcnbd": "BayesModifiedBetaGeoCNBD", "bgbb": "BayesBetaGeoBetaBinom"}
QUICK = {"draws": 500, "tune": 300, "chains": 2, "random_seed": 7}  # (bulk ESS above 100 a chain)


def test_every_dropout_model_has_a_bayesian_twin_with_its_predictions():
    twins = {cls.mle_class.short_name: cls for cls in BAYES_MODELS.values()}
    assert {name: twins[name].__name__ for name in SHORT} == SHORT
    for name, bayes in SHORT.items():
        mle = next(c for c in MODEL_REGISTRY.values() if getattr(c, "short_name", None) == name)
        cls = getattr(clv, bayes)
        assert cls.mle_class is mle
        assert cls.param_names == mle.param_names
        # the same kernels (one formula): the Bayesian class inherits the model's predictions
        assert cls.p_alive_kernel.__qualname__ == mle.p_alive_kernel.__qualname__
        assert cls.discrete_time == mle.discrete_time
        assert getattr(cls, "dropout_at_zero", False) == getattr(mle, "dropout_at_zero", False)


def _agrees_with_mle(model, sds: float = 3.0):
    """Each parameter's posterior mean within ``sds`` posterior sd of the maximum-likelihood estimate."""
    diag = model.diagnostics()
    for name in model.param_names:
        mean, sd = diag.loc[name, "mean"], diag.loc[name, "sd"]
        assert abs(mean - model.mle_.params_[name]) < sds * sd, (name, mean, sd, model.mle_.params_[name])
    assert model.divergences_ == 0


@pytest.mark.slow   # (samples: 13-26 s; the fast tier holds the twins and their likelihoods)
def test_bgbb_on_the_donations_agrees_with_the_published_fit(tmp_path):
    donations = clv.load_donations()
    model = clv.BayesBetaGeoBetaBinom(**QUICK).fit(donations, weights="weights")
    # FHS (2010) / ../shared/reference/cdnow.md: alpha, beta, gamma, delta = 1.204, 0.750, 0.657, 2.783
    assert model.mle_.params_["alpha"] == pytest.approx(1.20352, rel=1e-4)
    _agrees_with_mle(model)
    pa = model.p_alive(donations.head(20), interval=0.9)
    assert ((pa.iloc[:, 1] <= pa.iloc[:, 0]) & (pa.iloc[:, 0] <= pa.iloc[:, 2])).all()
    # the posterior's point prediction is close to the maximum-likelihood one
    np.testing.assert_allclose(model.expected_purchases(donations, 5), model.mle_.expected_purchases(donations, 5),
                               rtol=0.05)
    # a model file round-trips to the same predictions (and keeps the period)
    model.save(tmp_path / "bgbb.json")
    back = clv.BayesBetaGeoBetaBinom.load(tmp_path / "bgbb.json")
    assert back.time_unit_ == "Y" and back.time_unit_ == model.time_unit_
    pd.testing.assert_series_equal(back.expected_purchases(donations, 5), model.expected_purchases(donations, 5))
    # a file whose options the class does not take is refused (here the CNBD-k's k), not a TypeError
    content = json.loads((tmp_path / "bgbb.json").read_text())
    content["options"]["k"] = 2
    del content["sha256"]
    content["sha256"] = checksum(content)
    (tmp_path / "bgbb.json").write_text(json.dumps(content))
    with pytest.raises(clv.DataError, match="options"):
        clv.BayesBetaGeoBetaBinom.load(tmp_path / "bgbb.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["BayesParetoNBD", "BayesModifiedBetaGeo", "BayesBetaGeoCNBD",
                                  "BayesModifiedBetaGeoCNBD"])
def test_pooled_posterior_agrees_with_maximum_likelihood_on_cdnow(name, cal, tmp_path):
    options = {"k": 2} if "CNBD" in name else {}
    # (MBG/NBD's a and b mix more slowly: bulk ESS 125 at 2 x 500 draws)
    settings = {**QUICK, "draws": 1000} if name == "BayesModifiedBetaGeo" else QUICK
    model = getattr(clv, name)(**options, **settings).fit(cal)
    _agrees_with_mle(model)
    if options:
        assert model.k_ == 2 and model.mle_.k_ == 2
    e = model.expected_purchases(cal.head(50), "39W", interval=0.9)
    assert ((e.iloc[:, 1] <= e.iloc[:, 0]) & (e.iloc[:, 0] <= e.iloc[:, 2])).all()
    np.testing.assert_allclose(e.iloc[:, 0], model.mle_.expected_purchases(cal.head(50), "39W"), rtol=0.15, atol=0.02)
    path = tmp_path / "m.json"
    model.save(path)
    back = type(model).load(path)
    assert json.loads(path.read_text())["options"].get("k") == options.get("k")
    pd.testing.assert_series_equal(back.p_alive(cal.head(50)), model.p_alive(cal.head(50)))


@pytest.mark.slow
def test_a_cnbd_refit_takes_its_k_option_not_the_previous_fit(cal):
    model = clv.BayesBetaGeoCNBD(draws=100, tune=100, chains=1, random_seed=1, k=2)
    with warnings.catch_warnings():   # (100 draws: the diagnostics warn, as they should)
        warnings.simplefilter("ignore", clv.SamplingWarning)
        assert model.fit(cal).k_ == 2
        assert model.set_params(k=1).fit(cal).k_ == 1
        assert model.set_params(k=None).fit(cal).k_ == model.mle_.k_ == clv.BetaGeoCNBD().fit(cal).k_
    with pytest.raises(TypeError):
        clv.BayesBetaGeoCNBD("cohort", 1000, 1000, 4, "nutpie", None, None, 2)   # k only by keyword


def _simulate_bgbb(n, alpha, beta, gamma, delta, opportunities, rng):
    """BG/BB customers (FHS 2010): while alive, a customer transacts at each opportunity with probability
    p ~ Beta(alpha, beta) and then drops out with probability theta ~ Beta(gamma, delta); the summary by
    period (x transactions, the last at t_x, n opportunities)."""
    p, theta = rng.beta(alpha, beta, n), rng.beta(gamma, delta, n)
    alive = np.ones(n, dtype=bool)
    x, t_x = np.zeros(n), np.zeros(n)
    for t in range(1, opportunities + 1):
        alive &= rng.uniform(size=n) >= theta   # (dropout at the start of each opportunity)
        buy = alive & (rng.uniform(size=n) < p)
        x += buy
        t_x[buy] = t
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": float(opportunities)})


@pytest.mark.slow
def test_hierarchical_bgbb_separates_segments_that_transact_at_different_rates():
    rng = np.random.default_rng(3)
    truth = {"often": (3.0, 2.0), "seldom": (2.0, 3.0)}   # (alpha, beta): mean transaction probability 0.6, 0.4
    summary = pd.concat([_simulate_bgbb(3000, *ab, 0.7, 3.0, 8, rng).assign(channel=label)
                         for label, ab in truth.items()], ignore_index=True)
    summary.attrs["time_unit"] = "Y"
    model = clv.BayesBetaGeoBetaBinom(segment="channel", **QUICK).fit(summary)
    assert model.segments_ == ["often", "seldom"] and model.divergences_ == 0
    post = model.idata_.posterior
    mean_p = (post["alpha"] / (post["alpha"] + post["beta"])).stack(sample=("chain", "draw"))
    often, seldom = (mean_p.sel(segment=s).to_numpy() for s in ("often", "seldom"))
    assert np.mean(often > seldom) > 0.99
    for label, draws in (("often", often), ("seldom", seldom)):   # each segment's truth in its 98% interval
        a, b = truth[label]
        assert np.quantile(draws, 0.01) < a / (a + b) < np.quantile(draws, 0.99), label
    # the same history is predicted with each segment's own parameters
    same = pd.DataFrame({"frequency": [5.0, 5.0], "recency": [8.0, 8.0], "T": [8.0, 8.0], "channel": ["often", "seldom"]})
    e = model.expected_purchases(same, 4)
    assert e.iloc[0] > e.iloc[1]


@pytest.mark.slow   # (the CLI's --bayes path for BG/NBD: tests/test_bayes.py)
def test_cli_fits_a_bayesian_family_model(tmp_path):
    path = tmp_path / "donations.csv"
    d = clv.load_donations()
    donors = d.loc[d.index.repeat(d["weights"]), ["frequency", "recency", "T"]].reset_index(drop=True)
    donors.rename_axis("customer_id").to_csv(path)   # one row per donor
    proc = run_cli("fit", path, "--model", "bgbb", "--bayes", "--draws", "100", "--tune", "100", "--chains", "2",
                   "--seed", "1", "--time-unit", "Y", "-o", tmp_path / "m.json", "-q")
    assert proc.returncode == 0, proc.stderr
    assert [type(m) for m in clv.load(tmp_path / "m.json").values()] == [clv.BayesBetaGeoBetaBinom]
