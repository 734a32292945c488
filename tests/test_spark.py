"""clvmodels.spark in local mode: summaries, fits and scores equal the DuckDB/pandas path (to 1e-9), and bad
input raises the same DataErrors."""

import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark")

import clvmodels as clv  # noqa: E402
from clvmodels import DataError, spark as cs  # noqa: E402
from clvmodels.scoring import score_customers  # noqa: E402

# Spark in local mode (a JVM per session, about 2 minutes); short chains on purpose: the sampler-diagnostics warning is expected here
# (tests/test_bayes_divergences.py holds it)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::clvmodels.SamplingWarning")]

PAST_END = "after the last purchase"  # the warning for an observation end past the log (both engines)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the Python workers run this interpreter
    session = (SparkSession.builder.master("local[2]").appName("clvmodels-tests")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "2g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def cdnow(spark, cdnow_df):
    return spark.createDataFrame(cdnow_df[["customer_id", "date", "amount"]])


def same(spark_df, expected: pd.DataFrame):
    got = spark_df.toPandas().set_index("customer_id").sort_index()
    assert list(got.columns) == list(expected.columns)
    assert [got[c].dtype.kind for c in got] == [expected[c].dtype.kind for c in expected]
    assert got.index.equals(expected.index)
    for col in expected.columns:
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-9, atol=1e-12,
                                   err_msg=col)
    return got


def test_cdnow_summaries_equal_duckdb(spark, cdnow, cdnow_tx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (CDNOW repeats 21 rows exactly; both paths warn)
        same(cs.rfm_summary(cdnow, "1997-09-30"), clv.rfm_summary(cdnow_tx, "1997-09-30"))
        cal = same(cs.calibration_holdout(cdnow, "1997-09-30", "1998-06-30"),
                   clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30"))
    # FHL (2005) CDNOW: 2,357 customers, 1,411 without repeat purchases in the calibration period
    assert len(cal) == 2357 and (cal["frequency"] == 0).sum() == 1411


@pytest.mark.parametrize("unit", ["D", "W", "M"])
def test_simulated_logs_equal_duckdb_in_every_unit(spark, unit):
    sim = clv.simulate(3000, rng=11, time_unit="W")
    tx = sim.transactions
    sdf = spark.createDataFrame(tx).repartition(3)  # several partitions, rows out of order
    end = sim.end - pd.Timedelta(days=200)
    same(cs.calibration_holdout(sdf, end, time_unit=unit), clv.calibration_holdout(tx, end, time_unit=unit))
    same(cs.rfm_summary(sdf, time_unit=unit), clv.rfm_summary(tx, time_unit=unit))


def test_text_dates_with_format_returns_and_no_amounts(spark):
    tx = pd.DataFrame({"cust": ["a", "a", "a", "b", "b", "b", "c"],
                       "day": ["20240101", "20240105", "20240105", "20240103", "20240103", "20240110", "20240110"],
                       "value": ["10.5", "4", "-1.5", "7", "-7", "2", "3"]})
    sdf = spark.createDataFrame(tx)
    for returns in ("drop", "net"):
        kw = dict(customer="cust", date="day", amount="value", date_format="%Y%m%d", returns=returns)
        same(cs.rfm_summary(sdf, "2024-01-10", "D", **kw), clv.rfm_summary(tx, "2024-01-10", "D", **kw))
    stamped = pd.DataFrame({"customer_id": [1, 1, 2, 2],
                            "date": ["2024-01-01T23:30:00+05:00", "2024-01-03 08:00", "2024-01-02T10:00:00Z",
                                     "2024-01-09"], "amount": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(clv.DataWarning, match=PAST_END):  # the log ends 2024-01-09
        same(cs.rfm_summary(spark.createDataFrame(stamped), "2024-01-10", "D"),
             clv.rfm_summary(stamped, "2024-01-10", "D"))
    kw = dict(date="date", date_format="%Y-%m-%dT%H:%M")
    with_t = stamped.assign(date=["2024-01-01T23:30", "2024-01-03T08:00", "2024-01-02T10:00", "2024-01-09T00:00"])
    with pytest.warns(clv.DataWarning, match=PAST_END):
        same(cs.rfm_summary(spark.createDataFrame(with_t), "2024-01-10", "D", **kw),
             clv.rfm_summary(with_t, "2024-01-10", "D", **kw))
    kw = dict(customer="cust", date="day", amount=None, date_format="%Y%m%d")
    got = same(cs.rfm_summary(sdf, "2024-01-10", "D", **kw), clv.rfm_summary(tx, "2024-01-10", "D", **kw))
    assert "monetary_value" not in got


@pytest.mark.parametrize("frame, kwargs", [
    (pd.DataFrame({"customer_id": [1, 2], "when": ["2024-01-01", "2024-01-02"]}), {}),
    (pd.DataFrame({"customer_id": ["a", None, "c", " "], "date": ["2024-01-01"] * 4, "amount": [1.0] * 4}), {}),
    (pd.DataFrame({"customer_id": [1, 2, 3], "date": ["2024-01-01", "soon", "2024-13-01"], "amount": [1.0] * 3}), {}),
    (pd.DataFrame({"customer_id": [1, 2, 3], "date": ["2024-3-1", "2024", "2024-03"], "amount": [1.0] * 3}), {}),
    (pd.DataFrame({"customer_id": [1, 2, 3], "date": ["2024-01-01"] * 3, "amount": [1.0, -2.0, np.inf]}), {}),
    (pd.DataFrame({"customer_id": [1, 2], "date": ["20240101", "2024"], "amount": ["1", "x"]}), {"date_format": "%Y%m%d"}),
    (pd.DataFrame({"customer_id": [1, 1], "date": ["2024-01-01", "2024-01-01"], "amount": [1.0, -3.0]}), {"returns": "net"}),
    (pd.DataFrame({"customer_id": [1], "date": [20240101], "amount": [1.0]}), {}),
    (pd.DataFrame({"customer_id": ["a", " a", "b "], "date": ["2024-01-01"] * 3, "amount": [1.0] * 3}), {}),
    (pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "date": ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"],
                   "amount": [1e308, 1e308, 1.0, 1e200]}), {}),
    (pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2024-01-01 10:00 Europe/Paris", "2024-01-01T10:00+0100",
                                                      "2024-01-01 10:00 UTC"], "amount": [1.0] * 3}), {}),
])
def test_bad_input_raises_the_same_error(spark, frame, kwargs):
    with pytest.raises(DataError) as duck:
        clv.rfm_summary(frame, "2024-06-30", **kwargs)
    with pytest.raises(DataError) as spk:
        cs.rfm_summary(spark.createDataFrame(frame), "2024-06-30", **kwargs)
    expected = str(duck.value).replace("the DataFrame", "the Spark DataFrame")
    assert str(spk.value) == expected
    assert spk.value.columns == duck.value.columns and spk.value.rows == duck.value.rows


def test_bad_dates_for_the_split_raise_the_same_error(spark, cdnow, cdnow_tx):
    for args in [("1997-09-30", "1997-09-01"), ("1997-09-30", "1999-01-01"), ("1996-01-01", "1997-06-30")]:
        with pytest.raises(DataError) as duck:
            clv.calibration_holdout(cdnow_tx, *args)
        with pytest.raises(DataError) as spk, pytest.warns(clv.DataWarning, match="21 of 6,919 rows"):
            cs.calibration_holdout(cdnow, *args)
        assert str(spk.value) == str(duck.value)
    assert not [t for t in spark.catalog.listTables() if t.name.startswith("clvmodels")]  # no view left behind


def test_strptime_patterns():
    assert cs.strptime_to_spark("%Y%m%d") == "yyyyMMdd"
    assert cs.strptime_to_spark("%d/%m/%Y %H:%M") == "dd/MM/yyyy HH:mm"
    assert cs.strptime_to_spark("%Y-%m-%dT%H") == "yyyy-MM-dd'T'HH"
    with pytest.raises(DataError, match="%a"):
        cs.strptime_to_spark("%a %Y")
    with pytest.raises(DataError, match="%y"):  # Spark reads 98 as 2098, Python as 1998
        cs.strptime_to_spark("%d.%m.%y")


@pytest.fixture(scope="module")
def cal_pair(spark, cdnow, cdnow_tx):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdf = cs.calibration_holdout(cdnow, "1997-09-30", "1998-06-30").cache()
        pdf = clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30")
    return sdf, pdf


def test_mle_fits_and_scores_equal_pandas(cal_pair):
    sdf, pdf = cal_pair
    bg, gg = cs.fit(clv.BetaGeo(), sdf), cs.fit(clv.GammaGamma(), sdf)
    bg_p, gg_p = clv.BetaGeo().fit(pdf), clv.GammaGamma().fit(pdf)
    assert bg.time_unit_ == "W"
    for name in bg.params_:
        assert bg.params_[name] == pytest.approx(bg_p.params_[name], rel=1e-9)
    for name in gg.params_:
        assert gg.params_[name] == pytest.approx(gg_p.params_[name], rel=1e-9)
    # FHL (2005) CDNOW estimates: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
    assert bg.params_["r"] == pytest.approx(0.243, abs=5e-4)
    expected = score_customers(pdf, bg_p, gg_p, ("1y", "2y", "3y"))
    same(cs.score(sdf, bg, gg), expected)
    same(cs.score(sdf, bg, horizons=["39W"]), score_customers(pdf, bg_p, horizons=["39W"]))


@pytest.mark.parametrize("name, interval", [("NBD", 0.9), ("ModifiedBetaGeo", None), ("ParetoNBD", 0.9),
                                            ("BetaGeoCNBD", None), ("ModifiedBetaGeoCNBD", None)])
def test_a_model_added_in_one_module_fits_and_scores_equal_pandas(cal_pair, name, interval):
    # every model of the family, each in its own module, reaches Spark through the contract (the CNBD-k's
    # litt column too)
    sdf, pdf = cal_pair
    cls = getattr(clv, name)
    model, model_p, gg_p = cs.fit(cls(), sdf), cls().fit(pdf), clv.GammaGamma().fit(pdf)
    for param in model.params_:
        assert model.params_[param] == pytest.approx(model_p.params_[param], rel=1e-9)
    same(cs.score(sdf, model, gg_p, horizons=["1y"], interval=interval),
         score_customers(pdf, model_p, gg_p, ("1y",), interval=interval))


def test_bayesian_fit_and_interval_scores_equal_pandas(cal_pair):
    sdf, pdf = cal_pair
    opts = dict(draws=100, tune=100, chains=2, random_seed=5)
    hb = cs.fit(clv.BayesBetaGeo(**opts), sdf)
    hb_p = clv.BayesBetaGeo(**opts).fit(pdf)
    for name in ("r", "alpha", "a", "b"):  # same data, same prior, same seed: the same chains
        np.testing.assert_allclose(hb.idata_.posterior[name].to_numpy(), hb_p.idata_.posterior[name].to_numpy(),
                                   rtol=1e-9)
    got = same(cs.score(sdf, hb, horizons=["1y"], interval=0.9),
               score_customers(pdf, hb_p, horizons=["1y"], interval=0.9))
    assert "expected_purchases_1y upper 90%" in got


def test_hierarchical_fit_collects_segments(spark):
    sim = clv.simulate(1200, rng=4, segments={"web": (0.7, {"r": 0.5}), "shop": (0.3, {"r": 0.25})})
    tx = sim.transactions
    pdf = clv.rfm_summary(tx, time_unit="W")
    pdf["channel"] = sim.customers.loc[pdf.index, "segment"]
    sdf = spark.createDataFrame(pdf.reset_index())
    opts = dict(segment="channel", draws=100, tune=100, chains=2, random_seed=2)
    hb = cs.fit(clv.BayesBetaGeo(**opts), sdf, time_unit="W")
    hb_p = clv.BayesBetaGeo(**opts).fit(pdf, time_unit="W")
    assert hb.segments_ == hb_p.segments_ == ["shop", "web"]
    np.testing.assert_allclose(hb.idata_.posterior["r"].to_numpy(), hb_p.idata_.posterior["r"].to_numpy(), rtol=1e-9)
    scored = cs.score(sdf, hb, horizons=["1y"]).toPandas().set_index("customer_id").sort_index()
    np.testing.assert_allclose(scored.to_numpy(), score_customers(pdf, hb_p, horizons=["1y"]).to_numpy(), rtol=1e-9)


def test_models_with_covariates_fit_and_score_equal_pandas(spark):
    sim = clv.simulate(1500, rng=6, segments={"web": (0.5, {"alpha": 2.0}), "shop": (0.5, {"alpha": 8.0})})
    pdf = clv.rfm_summary(sim.transactions, time_unit="W")
    pdf["channel"] = sim.customers.loc[pdf.index, "segment"]
    sdf = spark.createDataFrame(pdf.reset_index())
    bg = cs.fit(clv.BetaGeo(covariates=["channel"]), sdf, time_unit="W")
    gg = cs.fit(clv.GammaGamma(covariates=["channel"]), sdf, time_unit="W")
    bg_p, gg_p = clv.BetaGeo(covariates=["channel"]).fit(pdf), clv.GammaGamma(covariates=["channel"]).fit(pdf)
    for name in bg_p.params_:
        assert bg.params_[name] == pytest.approx(bg_p.params_[name], rel=1e-9)
    same(cs.score(sdf, bg, gg, horizons=["1y"], interval=0.9),
         score_customers(pdf, bg_p, gg_p, ("1y",), interval=0.9))


def test_fit_and_score_refuse_missing_columns_and_unfitted_models(cal_pair):
    sdf, _ = cal_pair
    with pytest.raises(DataError, match="monetary_value"):
        cs.fit(clv.GammaGamma(), sdf.drop("monetary_value"))
    with pytest.raises(DataError, match="not fitted"):
        cs.score(sdf, clv.BetaGeo())
    with pytest.raises(TypeError, match="Spark DataFrame"):
        cs.rfm_summary(pd.DataFrame({"customer_id": [1], "date": ["2024-01-01"]}))


def test_utc_offsets_and_large_first_purchases_agree(spark):
    # UTC days: customer 1 on 01-01, 01-02, 01-03; customer 2 on 01-02, 01-05, 01-06
    stamps = ["2024-01-01T23:30:00+05", "2024-01-01T23:30:00-05:00", "2024-01-03T23:30Z", "2024-01-02 23:30+0530",
              "2024-01-04 23:30:00.25-01:00", "2024-01-06", "2024-01-07 08:15", "2024-1-8 9:05"]
    tx = pd.DataFrame({"customer_id": [1, 1, 1, 2, 2, 2, 3, 3], "date": stamps,
                       "amount": [1e17, 5.0, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.warns(clv.DataWarning, match=PAST_END):  # the log ends 2024-01-08
        got = same(cs.rfm_summary(spark.createDataFrame(tx), "2024-01-10", "D"), clv.rfm_summary(tx, "2024-01-10", "D"))
    assert got.loc[1, "monetary_value"] == 6.0 and got.loc[1, "recency"] == 2.0
    assert got.loc[2, "frequency"] == 2 and got.loc[2, "recency"] == 4.0


def test_an_observation_end_past_the_log_warns_the_same(spark, small_log):
    with pytest.warns(clv.DataWarning) as duck:
        clv.rfm_summary(small_log, "2024-03-06")
    with pytest.warns(clv.DataWarning) as spk:
        cs.rfm_summary(spark.createDataFrame(small_log), "2024-03-06")
    ours = [[str(w.message) for w in record if w.category is clv.DataWarning] for record in (duck, spk)]
    assert ours[0] == ours[1] and len(ours[0]) == 1
