"""BG/NBD: the published CDNOW numbers, invariances, extremes and degenerate data."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvmodels as clv
from clvmodels import DataError, NotFittedError
from clvmodels.models import bgnbd as B

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2), and the
# acceptance table in shared/reference/cdnow.md (CDNOW sample, 39-week calibration, weeks).
PAPER = (0.243, 4.414, 0.793, 2.426)          # the paper's rounded estimates
MLE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}


@pytest.fixture(scope="module")
def bg(cal):
    return clv.BetaGeo().fit(cal)


def test_cdnow_parameters_and_loglik(bg):
    for name, value in MLE.items():
        assert bg.params_[name] == pytest.approx(value, rel=1e-3)
    assert bg.loglik_ == pytest.approx(-9582.43, abs=0.01)
    assert bg.result_.converged and bg.time_unit_ == "W" and bg.n_customers_ == 2357


def test_the_papers_file_gives_the_same_fit():
    # The papers' own (rounded) summary file: same estimates to the reference tolerance.
    bg = clv.BetaGeo().fit(clv.load_cdnow_summary(), time_unit="W")
    for name, value in MLE.items():
        assert bg.params_[name] == pytest.approx(value, rel=1e-3)


def test_cdnow_worked_examples(bg):
    p = tuple(bg.params_[k] for k in B.PARAMS)
    assert B.conditional_expected_purchases(*p, 2, 30.43, 38.86, 39) == pytest.approx(1.2259, abs=1e-3)
    assert B.conditional_expected_purchases(*PAPER, 2, 30.43, 38.86, 39) == pytest.approx(1.2260, abs=1e-3)
    assert B.p_alive(*p, 2, 30.43, 38.86) == pytest.approx(0.7266, abs=1e-3)
    ts = np.array([0.1429, 1, 3, 31.8571, 32, 78])
    np.testing.assert_allclose(B.expected_purchases_new(*p, ts),
                               [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=1e-3)
    assert B.pmf_new(*PAPER, 39, 0)[0] == pytest.approx(0.5737864, abs=1e-5)
    assert B.conditional_expected_purchases(*p, 26, 30.857143, 31, 52) == pytest.approx(25.757, abs=5e-3)
    assert B.p_alive(*p, 26, 30.857143, 31) == pytest.approx(0.96885, abs=1e-3)


def test_holdout_table_by_calibration_frequency(bg, cal):
    # FHL (2005) figure 4: BG/NBD conditional expectations for weeks 40-78 by calibration frequency
    pred = bg.expected_purchases(cal, 39)
    table = pred.groupby(cal["frequency"].clip(upper=7)).mean()
    np.testing.assert_allclose(table, [.225, .523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157], atol=5e-4)
    assert cal.groupby(cal["frequency"].clip(upper=7)).size().tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]


def test_week_78_tracking_forecast(bg, cal):
    # each customer from its own first-purchase day: weeks since 1997-01-01
    birth = 272 / 7 - cal["T"].to_numpy()
    at_paper = B.expected_cumulative_purchases(*PAPER, birth, [78])[0]
    assert at_paper == pytest.approx(4171.4, abs=0.1)
    assert bg.expected_cumulative_purchases(birth, [78])[0] == pytest.approx(4171.4, abs=10)
    actual = cal["frequency"].sum() + cal["holdout_frequency"].sum()
    assert actual == 4339 and (at_paper - actual) / actual == pytest.approx(-0.039, abs=0.0005)


def test_summary_reports_everything(bg):
    text = bg.summary()
    for word in ["r ", "alpha", "se", "lower 95%", "log-likelihood", "-9582.429", "AIC", "BIC", "customers",
                 "converged       True"]:
        assert word in text
    table = bg.result_.table()
    assert list(table.index) == ["r", "alpha", "a", "b"] and (table["se"] > 0).all()
    lo, hi = bg.result_.conf_int()["r"]
    assert lo < bg.params_["r"] < hi


def test_analytic_gradient_matches_finite_differences(cal):
    x, t_x, T = (cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.ones_like(x)
    theta = np.array([0.3, 5.0, 0.9, 2.0])
    _, grad = B.loglik_and_grad(theta, x, t_x, T, w)
    for i in range(4):
        h = 1e-6 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd = (B.loglik_and_grad(up, x, t_x, T, w)[0] - B.loglik_and_grad(down, x, t_x, T, w)[0]) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5)


def test_weights_equal_expanded_rows(cal):
    sub = cal.iloc[:400]
    weights = np.random.default_rng(0).integers(1, 4, len(sub))
    expanded = sub.loc[sub.index.repeat(weights)].reset_index(drop=True)
    a = clv.BetaGeo().fit(sub, weights=weights)
    b = clv.BetaGeo().fit(expanded)
    for k in B.PARAMS:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-6)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-10)


def test_rescaling_time_gives_the_same_predictions(cal, bg):
    days = cal.copy()
    for c in ("recency", "T"):
        days[c] = days[c] * 7
    days.attrs["time_unit"] = "D"
    bd = clv.BetaGeo().fit(days, time_unit="D")
    assert bd.params_["alpha"] == pytest.approx(bg.params_["alpha"] * 7, rel=1e-5)
    for k in ("r", "a", "b"):
        assert bd.params_[k] == pytest.approx(bg.params_[k], rel=1e-5)
    np.testing.assert_allclose(bd.expected_purchases(days, "1y"), bg.expected_purchases(cal, "1y"), rtol=1e-5)
    np.testing.assert_allclose(bd.p_alive(days), bg.p_alive(cal), rtol=1e-5)
    # the log-likelihood of continuous times changes by -sum(x) * log(7)
    assert bd.loglik_ == pytest.approx(bg.loglik_ - cal["frequency"].sum() * np.log(7), abs=1e-3)


def test_recovers_simulated_parameters():
    truth = {"r": 0.5, "alpha": 8.0, "a": 0.7, "b": 3.0, "p": 6.0, "q": 3.7, "gamma": 15.0}
    for seed in range(3):
        sim = clv.simulate(8000, truth, rng=seed, acquisition="12W", duration="2y")
        log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
        rfm = clv.rfm_summary(log, time_unit="W")
        fit = clv.BetaGeo().fit(rfm)
        for k in B.PARAMS:
            assert abs(fit.params_[k] - truth[k]) < 3 * fit.result_.se[k], (seed, k, fit.params_, fit.result_.se)


def test_pmf_sums_to_one_and_matches_the_mean(bg, cal):
    probs = bg.purchase_probabilities(cal.iloc[:50], 39, n_max=400)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    mean = (probs * np.arange(401)).sum(axis=1)
    np.testing.assert_allclose(mean, bg.expected_purchases(cal.iloc[:50], 39), rtol=1e-7)
    new = bg.purchase_probabilities_new(39, n_max=400)
    assert new.sum() == pytest.approx(1.0, abs=1e-9)
    assert (new * np.arange(401)).sum() == pytest.approx(bg.expected_purchases_new(39), rel=1e-7)


def test_horizons_convert_in_one_place(bg, cal):
    np.testing.assert_allclose(bg.expected_purchases(cal, "1y"), bg.expected_purchases(cal, 365.25 / 7))
    assert bg.expected_purchases(cal, "52W").name == "expected_purchases_52W"


def test_a_equal_to_one_is_continuous():
    vals = [float(B.conditional_expected_purchases(0.5, 10.0, a, 2.0, 3, 20.0, 30.0, 52.0))
            for a in (1 - 2e-3, 1.0, 1 + 2e-3)]
    assert np.isfinite(vals).all()
    assert vals[1] == pytest.approx((vals[0] + vals[2]) / 2, rel=1e-5)


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError):
        clv.BetaGeo().p_alive(pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]}))


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [5.0, 6.0, 7.0]}), "no customer has a repeat"),
    (pd.DataFrame({"frequency": [2], "recency": [3.0], "T": [5.0]}), "at least two customers"),
    (pd.DataFrame({"frequency": [2, 1], "recency": [6.0, 1.0], "T": [5.0, 4.0]}), "recency is larger than T"),
    (pd.DataFrame({"frequency": [-1, 1], "recency": [0.0, 1.0], "T": [5.0, 4.0]}), "frequency is negative"),
    (pd.DataFrame({"frequency": [1.5, 1], "recency": [1.0, 1.0], "T": [5.0, 4.0]}), "whole number"),
    (pd.DataFrame({"frequency": [1, 1], "recency": [np.nan, 1.0], "T": [5.0, 4.0]}), "recency is missing"),
    (pd.DataFrame({"frequency": [0, 1], "recency": [2.0, 1.0], "T": [5.0, 4.0]}), "frequency is 0"),
    (pd.DataFrame({"frequency": [1, 1], "T": [5.0, 4.0]}), "no 'recency' column"),
    (pd.DataFrame({"frequency": ["1", "1"], "recency": [1.0, 1.0], "T": [5.0, 4.0]}), "not numeric"),
])
def test_degenerate_data_is_refused(frame, match):
    with pytest.raises(DataError, match=match):
        clv.BetaGeo().fit(frame)


# --- no NaN or inf for any valid input ---------------------------------------------------------------

params = st.tuples(st.floats(1e-3, 50), st.floats(1e-4, 1e4), st.floats(0.02, 30), st.floats(0.02, 30))


@settings(max_examples=200, deadline=None)
@given(p=params, x=st.integers(0, 10_000), frac=st.floats(0, 1), T=st.floats(0, 1e4), t=st.floats(1e-3, 1e4))
def test_finite_and_bounded_everywhere(p, x, frac, T, t):
    t_x = frac * T if x > 0 else 0.0
    pa = B.p_alive(*p, x, t_x, T)
    assert 0.0 <= pa <= 1.0
    ll = B.loglik_terms(*p, x, t_x, T)
    assert np.isfinite(ll)
    e1 = B.conditional_expected_purchases(*p, x, t_x, T, t)
    e2 = B.conditional_expected_purchases(*p, x, t_x, T, 2 * t)
    assert np.isfinite(e1) and np.isfinite(e2)
    assert -1e-9 <= e1 <= e2 * (1 + 1e-9) + 1e-12   # increasing in t


@settings(max_examples=100, deadline=None)
@given(p=params, t=st.floats(1e-2, 1e3))
def test_new_customer_expectation_increases(p, t):
    e = B.expected_purchases_new(*p, np.array([t, 2 * t, 4 * t]))
    assert np.all(np.isfinite(e)) and np.all(np.diff(e) >= -1e-12 * e[-1])


def test_expectation_matches_30_digit_mpmath():
    # The textbook form of eq. (10)'s bracket evaluated with mpmath at 50 digits, against our Euler-
    # transformed form in double precision; includes integer parameter sets where scipy's 2F1 needs help.
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    rng = np.random.default_rng(3)
    cases = [(1.0, 1.0, 2.0, 1.0, 99, 0.0, 10.0), (2.0, 3.0, 3.0, 1.0, 5, 4.0, 50.0), (0.5, 1.0, 2.0, 2.0, 0, 0.0, 1e3)]
    for _ in range(60):
        cases.append((10 ** rng.uniform(-2, 1.5), 10 ** rng.uniform(-2, 3), 10 ** rng.uniform(-1.3, 1.3),
                      10 ** rng.uniform(-1.3, 1.5), int(rng.choice([0, 1, 2, 5, 20, 100])), rng.uniform(0, 100),
                      10 ** rng.uniform(-1, 3)))
    for r, alpha, a, b, x, T, t in cases:
        if abs(a - 1) < 1e-3:
            continue
        R, A, Aa, Bb, X, TT, tt = map(mp.mpf, (r, alpha, a, b, x, T, t))
        z = tt / (A + TT + tt)
        exact = (Aa + Bb + X - 1) / (Aa - 1) * (1 - (1 - z) ** (R + X) * mp.hyp2f1(R + X, Bb + X, Aa + Bb + X - 1, z))
        ours = float(B.expected_given_alive(r, alpha, a, b, x, T, t))
        assert ours == pytest.approx(float(exact), rel=1e-8), (r, alpha, a, b, x, T, t)


def test_new_customer_pmf_matches_40_digit_mpmath():
    # FHL (2005) eq. (8) with the negative binomial's upper tail as mpmath's regularised incomplete beta, at
    # counts up to 2,000 (where the recurrences over n have summed most terms); the double-precision
    # result is within 2e-12 of it on these cases (5e-12 allows for other platforms' libm)
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(3)
    for _ in range(40):
        r, alpha, a, b = np.exp(rng.uniform([-3, -2, -2, -2], [4, 5, 3, 4]))
        t, n_max = float(np.exp(rng.uniform(-1, 5))), int(rng.choice([3, 50, 400, 2000]))
        ours = B.pmf_new(r, alpha, a, b, t, n_max)
        R, A, Aa, Bb, tt = map(mp.mpf, (r, alpha, a, b, t))
        q, z = A / (A + tt), tt / (A + tt)
        for n in sorted({0, 1, n_max // 3, n_max // 2, n_max}):
            nb = mp.exp(mp.loggamma(R + n) - mp.loggamma(R) - mp.loggamma(n + 1) + R * mp.log(q) + n * mp.log(z))
            exact = mp.beta(Aa, Bb + n) / mp.beta(Aa, Bb) * nb
            if n:
                exact += mp.beta(Aa + 1, Bb + n - 1) / mp.beta(Aa, Bb) * mp.betainc(n, R, 0, z, regularized=True)
            if exact > 1e-250:
                assert ours[n] == pytest.approx(float(exact), rel=5e-12), (r, alpha, a, b, t, n)


@settings(max_examples=60, deadline=None)
@given(p=params, x=st.integers(0, 200), frac=st.floats(0, 1), T=st.floats(0, 500), t=st.floats(0.1, 100))
def test_pmf_sums_to_one_everywhere(p, x, frac, T, t):
    probs = B.conditional_pmf(*p, x, frac * T if x else 0.0, T, t, 3000)
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
    mean = float(B.conditional_expected_purchases(*p, x, frac * T if x else 0.0, T, t))
    # never above 1; below 1 by at most the mass beyond n = 3000, which Markov bounds by mean / 3001
    assert 1 - mean / 3001 - 1e-9 <= probs.sum() <= 1 + 1e-9


def test_incremental_tracking_adds_up(bg, cal):
    birth = 272 / 7 - cal["T"].to_numpy()
    weeks = np.arange(1, 79)
    inc = bg.expected_cumulative_purchases(birth, weeks, incremental=True)
    np.testing.assert_allclose(np.cumsum(inc), bg.expected_cumulative_purchases(birth, weeks), rtol=1e-12)
    assert (inc >= 0).all()


def test_unidentifiable_data_raise_convergence_error():
    # every customer bought once more at the very end: no information separating rate from dropout
    frame = pd.DataFrame({"frequency": [1] * 50, "recency": [10.0] * 50, "T": [10.0] * 50})
    with pytest.raises(clv.ConvergenceError, match="do not identify|edge of its range|did not converge"):
        clv.BetaGeo().fit(frame)


@pytest.mark.parametrize("a, b, x", [(1 - 3e-5, 2.4, 2), (1 + 4.9e-5, 2.4, 0), (0.6, 0.4 + 2e-5, 0)])
def test_near_singular_parameters_match_mpmath(a, b, x):
    # a = 1 and (at x = 0) a + b = 1 are removable singularities handled by interpolation
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    r, alpha, T, t = 0.24, 0.5, 10.0, 100.0
    R, A, Aa, Bb, X, TT, tt = map(mp.mpf, (r, alpha, a, b, x, T, t))
    z = tt / (A + TT + tt)
    exact = (Aa + Bb + X - 1) / (Aa - 1) * (1 - (1 - z) ** (R + X) * mp.hyp2f1(R + X, Bb + X, Aa + Bb + X - 1, z))
    assert float(B.expected_given_alive(r, alpha, a, b, x, T, t)) == pytest.approx(float(exact), rel=1e-7)


@pytest.mark.parametrize("x, T", [(14, 50.0), (0, 40.0), (3, 52.0)])
def test_huge_dropout_parameters_match_mpmath(x, T):
    # a, b ~ 1e6 (an unpooled fit of a small segment found them): the Euler form is 0 x inf there
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    r, alpha, a, b, t = 0.27206756902542967, 4.750833854561215, 860305.7461275046, 4450676.0616544485, 52.0
    R, A, Aa, Bb, X, TT, tt = map(mp.mpf, (r, alpha, a, b, x, T, t))
    z = tt / (A + TT + tt)
    exact = (Aa + Bb + X - 1) / (Aa - 1) * (1 - (1 - z) ** (R + X) * mp.hyp2f1(R + X, Bb + X, Aa + Bb + X - 1, z))
    assert float(B.expected_given_alive(r, alpha, a, b, x, T, t)) == pytest.approx(float(exact), rel=1e-8)


def test_zero_weight_repeat_buyers_are_no_repeat_buyers():
    frame = pd.DataFrame({"frequency": [0, 0, 3], "recency": [0.0, 0.0, 5.0], "T": [10.0, 12.0, 9.0]})
    with pytest.raises(DataError, match="no customer has a repeat"):
        clv.BetaGeo().fit(frame, weights=[5, 5, 0])


def test_fitted_models_copy_pickle_and_keep_their_predictions(bg, cal):
    import copy
    import pickle

    twin = pickle.loads(pickle.dumps(bg))
    np.testing.assert_array_equal(twin.p_alive(cal), bg.p_alive(cal))
    assert copy.deepcopy(bg).params_ == bg.params_
    edited = copy.deepcopy(bg)
    edited.params_["r"] = 5.0  # a copy: predictions come from the fit result
    np.testing.assert_array_equal(edited.p_alive(cal), bg.p_alive(cal))
    assert clv.BetaGeo().set_params(maxiter=50).maxiter == 50
    with pytest.raises(ValueError, match="no option"):
        clv.BetaGeo().set_params(tolerance=1)
    with pytest.raises(ValueError, match="level"):
        bg.result_.conf_int(95)


def test_purchase_interval_is_the_quantiles_of_the_pmf(bg, cal):
    iv = bg.purchase_interval(cal, 39, level=0.8)
    cdf = np.cumsum(bg.purchase_probabilities(cal, 39, n_max=200).to_numpy(), axis=1)
    assert cdf[:, -1].min() > 1 - 1e-12  # (counts above 200 in 39 weeks carry no mass that matters here)
    np.testing.assert_array_equal(iv["lower"], (cdf < 0.1 - 1e-12).sum(axis=1))
    np.testing.assert_array_equal(iv["upper"], (cdf < 0.9 - 1e-12).sum(axis=1))
    # discrete counts: each interval holds at least 80% of the predictive mass
    rows = np.arange(len(cal))
    mass = cdf[rows, iv["upper"]] - np.where(iv["lower"] > 0, cdf[rows, np.maximum(iv["lower"] - 1, 0)], 0.0)
    assert (mass >= 0.8 - 1e-9).all()


def test_expected_over_draws_equals_eq_10_per_draw_and_customer():
    # the grouped evaluation (2F1 once per segment, x, T) against conditional_expected_purchases
    rng = np.random.default_rng(8)
    n, d = 400, 7
    seg = rng.integers(0, 3, n)
    x = rng.integers(0, 4, n).astype(float)
    T = rng.choice([20.0, 30.0, 39.0], n)
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    per_seg = rng.uniform([0.2, 3.0, 0.5, 1.5], [0.6, 8.0, 1.2, 4.0], size=(d, 3, 4))
    per_seg[0, 1, 2] = 1.0  # a = 1 exactly: the interpolated branch
    theta = tuple(per_seg[:, seg, j] for j in range(4))
    got = B.expected_over_draws(theta, x[None], t_x[None], T[None], [13.0, 52.0], seg)
    for k, t in enumerate([13.0, 52.0]):
        want = B.conditional_expected_purchases(*theta, x[None], t_x[None], T[None], t)
        np.testing.assert_allclose(got[..., k], want, rtol=1e-13)
        for i in range(d):  # and scalar parameters, draw by draw
            for s in range(3):
                rows = seg == s
                np.testing.assert_allclose(got[i, rows, k],
                                           B.conditional_expected_purchases(*per_seg[i, s], x[rows], t_x[rows], T[rows], t),
                                           rtol=1e-13)


def test_purchase_interval_covers_a_very_frequent_buyer(bg):
    # x = 5000 repeat purchases: the upper quantile lies in the thousands, far past any fixed support
    one = pd.DataFrame({"frequency": [5000.0], "recency": [39.0], "T": [39.0]}, index=["heavy"])
    mean = float(bg.expected_purchases(one, 39).iloc[0])
    iv = bg.purchase_interval(one, 39, level=0.9)
    assert iv["lower"].iloc[0] < mean < iv["upper"].iloc[0]
    cdf = np.cumsum(bg.purchase_probabilities(one, 39, n_max=int(3 * mean)).to_numpy()[0])
    assert iv["lower"].iloc[0] == (cdf < 0.05 - 1e-12).sum()
    assert iv["upper"].iloc[0] == (cdf < 0.95 - 1e-12).sum()
    # the PIT cdf at a count far above any fixed support
    pc = bg.purchase_cdf(one, 39, [int(mean)])
    assert pc["at_most"].iloc[0] == pytest.approx(cdf[int(mean)], rel=1e-9)


@pytest.mark.parametrize("unit", ["D", "M"])
def test_predictions_refuse_a_summary_in_another_time_unit(bg, cdnow_tx, unit):
    other = clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit=unit)
    for call in (lambda: bg.expected_purchases(other, "1y"), lambda: bg.p_alive(other),
                 lambda: bg.purchase_interval(other, "1y"), lambda: bg.purchase_probabilities(other, "1y"),
                 lambda: bg.purchase_cdf(other, "1y", np.zeros(len(other)))):
        with pytest.raises(DataError, match=f"time unit {unit!r}.*fitted in 'W'"):
            call()
    # a summary that does not declare its unit (a CSV file) is taken to be in the model's unit
    plain = other.copy()
    plain.attrs = {}
    assert bg.p_alive(plain).notna().all()


def test_a_list_of_horizons_is_refused_with_what_to_do(bg, cal):
    with pytest.raises(ValueError, match=r"t must be one horizon.*got \[13, 39\].*customer_value"):
        bg.expected_purchases(cal, [13, 39])
    with pytest.raises(ValueError, match="t must be one horizon"):
        bg.expected_purchases(cal, True)
    with pytest.raises(ValueError, match="non-negative duration"):
        bg.expected_purchases(cal, -1.0)
