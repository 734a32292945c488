"""The Bayesian BG/NBD's posterior-predictive count distribution has no fixed support: its interval and
PIT cdf reach a very frequent buyer's counts, as the maximum-likelihood model's do (issue 12, item 11).
Built from known draws, without sampling."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("arviz")

import clvmodels as clv  # noqa: E402
from clvmodels.models.bgnbd import conditional_pmf  # noqa: E402

PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # CDNOW, FHL (2005)


@pytest.fixture(scope="module")
def posterior(cdnow_tx):
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    rng = np.random.default_rng(3)
    model = clv.BayesBetaGeo(chains=2)
    model.idata_ = az.from_dict(posterior={n: v * np.exp(rng.normal(0.0, 0.03, (2, 10))) for n, v in PARAMS.items()})
    model.mle_ = clv.BetaGeo().fit(clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="W"))
    model.segments_, model.time_unit_ = ["all"], "W"
    return model


def test_posterior_interval_covers_a_very_frequent_buyer(posterior):
    one = pd.DataFrame({"frequency": [5000.0], "recency": [39.0], "T": [39.0]}, index=["heavy"])
    draws = posterior.param_draws()[:, 0, :]
    pmf = np.mean([conditional_pmf(*d, 5000.0, 39.0, 39.0, 39.0, 20_000) for d in draws], axis=0)
    cdf = np.cumsum(pmf)
    assert cdf[-1] > 1 - 1e-9
    iv = posterior.purchase_interval(one, 39, level=0.9)
    assert iv["lower"].iloc[0] == (cdf < 0.05 - 1e-12).sum()
    assert iv["upper"].iloc[0] == (cdf < 0.95 - 1e-12).sum() > 3000
    pc = posterior.purchase_cdf(one, 39, [4000])
    assert pc["at_most"].iloc[0] == pytest.approx(cdf[4000], rel=1e-9)


@pytest.mark.parametrize("call", [
    lambda m, s: m.expected_purchases(s, 39), lambda m, s: m.p_alive(s),
    lambda m, s: m.purchase_interval(s, 39), lambda m, s: m.purchase_cdf(s, 39, [1]),
])
def test_posterior_predictions_refuse_a_summary_in_another_time_unit(posterior, call):
    days = pd.DataFrame({"frequency": [2.0], "recency": [100.0], "T": [200.0]}, index=["c"])
    days.attrs["time_unit"] = "D"
    with pytest.raises(clv.DataError, match="time unit 'D' but"):
        call(posterior, days)
