"""Customer value per horizon, and saving/loading models as JSON."""

import json
import math

import numpy as np
import pytest

import clvmodels as clv
from clvmodels import DataError


@pytest.fixture(scope="module")
def fitted(cdnow_tx):
    rfm = clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="W")
    return rfm, clv.BetaGeo().fit(rfm), clv.GammaGamma().fit(rfm)


def test_customer_value_columns_and_undiscounted_identity(fitted):
    rfm, bg, gg = fitted
    v0 = clv.customer_value(bg, gg, rfm, horizons=["1y", "2y", "3y"], annual_discount_rate=0.0)
    assert list(v0.columns) == ["p_alive", "expected_spend", "expected_purchases_1y", "value_1y",
                                "expected_purchases_2y", "value_2y", "expected_purchases_3y", "value_3y"]
    np.testing.assert_allclose(v0["expected_purchases_2y"], bg.expected_purchases(rfm, "2y"), rtol=1e-12)
    np.testing.assert_allclose(v0["value_3y"], v0["expected_spend"] * v0["expected_purchases_3y"], rtol=1e-12)
    assert (v0["value_1y"] <= v0["value_2y"]).all() and (v0["value_2y"] <= v0["value_3y"]).all()


def test_discounting_matches_a_daily_midpoint_sum(fitted):
    rfm, bg, gg = fitted
    sub = rfm.iloc[:100]
    value = clv.customer_value(bg, gg, sub, horizons=["3y"], annual_discount_rate=0.10)
    # midpoint sum over days: purchases of each day discounted at mid-day
    days = np.arange(0, 1096) / 7
    cum = np.column_stack([np.zeros(len(sub))] + [bg.expected_purchases(sub, float(t)).to_numpy() for t in days[1:]]
                          + [bg.expected_purchases(sub, 1095.75 / 7).to_numpy()])
    edges = np.append(days, 1095.75 / 7)
    delta = math.log(1.1) * 7 / 365.25
    mid = (edges[1:] + edges[:-1]) / 2
    daily = (np.diff(cum, axis=1) * np.exp(-delta * mid)).sum(axis=1) * value["expected_spend"].to_numpy()
    np.testing.assert_allclose(value["value_3y"], daily, rtol=2e-7)
    undiscounted = clv.customer_value(bg, gg, sub, horizons=["3y"], annual_discount_rate=0.0)
    ratio = (value["value_3y"] / undiscounted["value_3y"]).to_numpy()
    # discounting at 10% a year over 3 years lowers value by between 1/1.1^3 and 1
    assert np.all((ratio > 1 / 1.1**3) & (ratio < 1))


def test_flat_purchase_rate_discounts_exactly():
    # A purchase model whose customers buy at a constant rate c per unit: value = m c (1 - e^-dH) / d.
    from clvmodels.models._base import Predictor

    class Flat(Predictor):  # (a model of the contract: parameters as draws, kernels over them)
        required_columns, time_unit_, role = ("frequency",), "W", "purchase"

        def param_draws(self, interval=None, max_draws=1000):
            return np.array([[[0.5]]])

        @staticmethod
        def expected_purchases_kernel(theta, x, times, seg):
            return theta[0][..., None] * np.asarray(times) + 0 * x[..., None]

        @staticmethod
        def p_alive_kernel(theta, x, seg=None):
            return np.ones_like(theta[0] * x)

    class Spend(Flat):
        time_dependent, role = False, "spend"

        def param_draws(self, interval=None, max_draws=1000):
            return np.array([[[20.0]]])

        @staticmethod
        def expected_spend_kernel(theta, x, seg=None):
            return theta[0] + 0 * x

    import pandas as pd

    s = pd.DataFrame({"frequency": [1, 2]})
    out = clv.customer_value(Flat(), Spend(), s, horizons=["1y"], annual_discount_rate=0.2)
    d = math.log(1.2) * 7 / 365.25
    H = 365.25 / 7
    assert out["value_1y"].iloc[0] == pytest.approx(20 * 0.5 * (1 - math.exp(-d * H)) / d, rel=1e-12)


def test_save_and_load_round_trip(tmp_path, fitted):
    rfm, bg, gg = fitted
    path = tmp_path / "models.json"
    clv.save_models({"bgnbd": bg, "gamma-gamma": gg}, path)
    loaded = clv.load_models(path)
    assert set(loaded) == {"bgnbd", "gamma-gamma"}
    b2 = loaded["bgnbd"]
    assert b2.params_ == bg.params_ and b2.time_unit_ == "W" and b2.fingerprint_ == bg.fingerprint_
    np.testing.assert_array_equal(b2.result_.cov, bg.result_.cov)
    np.testing.assert_array_equal(b2.expected_purchases(rfm, "1y"), bg.expected_purchases(rfm, "1y"))
    assert b2.summary() == bg.summary()
    assert loaded["gamma-gamma"].frequency_spend_correlation_ == gg.frequency_spend_correlation_
    content = json.loads(path.read_text())
    assert content["package_version"] == clv.__version__ and content["format_version"] == 1
    single = tmp_path / "bg.json"
    bg.save(single)
    assert clv.BetaGeo.load(single).params_ == bg.params_
    with pytest.raises(DataError, match="exactly one GammaGamma"):
        clv.GammaGamma.load(single)


def test_tampered_and_newer_files_are_refused(tmp_path, fitted):
    _, bg, _ = fitted
    path = tmp_path / "bg.json"
    bg.save(path)
    content = json.loads(path.read_text())
    content["models"]["bgnbd"]["params"]["r"] = 0.5
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match="modified"):
        clv.load_model(path)
    content = json.loads(path.read_text())
    content["format_version"] = 99
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match="newer"):
        clv.load_model(path)
    path.write_text("not json")
    with pytest.raises(DataError, match="not JSON"):
        clv.load_model(path)


def test_nan_in_an_edited_file_is_refused(tmp_path, fitted):
    _, bg, _ = fitted
    path = tmp_path / "bg.json"
    bg.save(path)
    path.write_text(path.read_text().replace('"loglik": -9582', '"loglik": NaN, "x": -9582', 1))
    with pytest.raises(DataError, match="modified"):
        clv.load_model(path)


def test_numpy_options_save(tmp_path, fitted):
    rfm, _, _ = fitted
    bg = clv.BetaGeo(maxiter=np.int64(500)).fit(rfm)
    bg.save(tmp_path / "m.json")
    assert clv.BetaGeo.load(tmp_path / "m.json").maxiter == 500


def test_value_refuses_a_unit_other_than_the_models(fitted):
    rfm, bg, gg = fitted
    with pytest.raises(ValueError, match="fitted in 'W'"):
        clv.customer_value(bg, gg, rfm, ["1y"], time_unit="D")


def test_draw_quantiles_equal_numpy():
    from clvmodels.draws import draw_quantiles

    rng = np.random.default_rng(4)
    for shape in [(1, 5), (7, 3), (1000, 40), (4, 2, 3)]:
        v = rng.standard_normal(shape)
        v[:, 0] = 1.0  # a constant column
        np.testing.assert_allclose(draw_quantiles(v, [0.05, 0.5, 0.95]), np.quantile(v, [0.05, 0.5, 0.95], axis=0),
                                   rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("rate", [math.inf, math.nan, -1.0, -2.0])
def test_value_refuses_an_impossible_discount_rate(fitted, rate):
    rfm, bg, gg = fitted
    with pytest.raises(ValueError, match="annual discount rate"):
        clv.customer_value(bg, gg, rfm.head(), ["1y"], annual_discount_rate=rate)


def test_value_refuses_a_summary_in_another_unit(fitted, cdnow_tx):
    rfm, bg, gg = fitted
    days = clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="D")
    with pytest.raises(DataError, match="time unit 'D'.*fitted in 'W'"):
        clv.customer_value(bg, gg, days, ["1y"])
