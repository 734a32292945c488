"""BG/BB (Fader, Hardie & Shang 2010), added in one module (clvmodels/models/bgbb.py), and the summary by
period it is fitted to (clvmodels/data/periods.py): the published donations fit, the formulas against an
enumeration of the model's latent story and against lifetimes, the fit against simulated truth, and its
place in the layers above (model files, customer value, the command line)."""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln, comb

import clvmodels as clv
from tests.cli_run import run_cli
from tests.conftest import make_log
from clvmodels.models import bgbb as B

# Fader, Hardie & Shang (2010), Marketing Science 29(6), fitted to the donations data (11,104 donors, 6
# opportunities); as recorded in ../shared/reference/cdnow.md ("BG/BB - donations").
DONATIONS_PARAMS = {"alpha": 1.2035, "beta": 0.7497, "gamma": 0.6567, "delta": 2.7834}
DONATIONS_LL = -33225.58


@pytest.fixture(scope="module")
def donations():
    return clv.load_donations()


@pytest.fixture(scope="module")
def fitted(donations):
    return clv.BetaGeoBetaBinom().fit(donations, weights="weights")


def test_donations_fit_reproduces_the_paper(donations, fitted):
    assert len(donations) == 22 and donations["weights"].sum() == 11_104 and donations.attrs["time_unit"] == "Y"
    for name, value in DONATIONS_PARAMS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.loglik_ == pytest.approx(DONATIONS_LL, abs=0.01)
    assert fitted.result_.converged and fitted.time_unit_ == "Y" and fitted.result_.extra["period"] == "Y"
    # the weights stand for rows: the 11,104 donors one row each give the same fit
    rows = donations.loc[donations.index.repeat(donations["weights"])].drop(columns="weights")
    expanded = clv.BetaGeoBetaBinom().fit(rows.reset_index(drop=True))
    for name in B.PARAMS:
        assert expanded.params_[name] == pytest.approx(fitted.params_[name], rel=1e-6)
    assert expanded.loglik_ == pytest.approx(fitted.loglik_, rel=1e-10)


# --- the formulas against the model's story, enumerated -----------------------------------------------------

def beta_moment(a, b, k, m):
    """E[q^k (1 - q)^m] for q ~ Beta(a, b)."""
    return math.exp(betaln(a + k, b + m) - betaln(a, b))


def story(params, history, future=0):
    """P(history and k transactions in the next ``future`` opportunities), k = 0..future, by summing over
    the latent opportunity tau at whose start the customer dies (tau = n + future + 1: alive throughout):
    alive at opportunities 1..tau-1, each a transaction with probability p, at most one."""
    alpha, beta, gamma, delta = params
    n, x = len(history), sum(history)
    last = max([i + 1 for i, h in enumerate(history) if h], default=0)
    out = np.zeros(future + 1)
    for tau in range(1, n + future + 2):
        alive = tau - 1
        if alive < last:
            continue  # (a transaction after death)
        p_tau = (beta_moment(gamma, delta, 0, n + future) if tau == n + future + 1
                 else beta_moment(gamma, delta, 1, tau - 1))
        seen = min(alive, n)
        ahead = alive - seen
        for k in range(ahead + 1):
            out[k] += p_tau * comb(ahead, k) * beta_moment(alpha, beta, x + k, seen - x + ahead - k)
    return out


PARAMS_GRID = [(1.2035, 0.7497, 0.6567, 2.7834), (0.3, 2.5, 1.0, 0.4), (4.0, 1.5, 2.0, 7.0), (0.8, 0.9, 1.0 + 1e-7, 3.0)]


@pytest.mark.parametrize("params", PARAMS_GRID)
def test_likelihood_and_p_alive_are_the_story_summed_over_death_times(params):
    n = 5
    total = 0.0
    for history in itertools.product((0, 1), repeat=n):
        x = sum(history)
        t_x = max([i + 1 for i, h in enumerate(history) if h], default=0)
        want = story(params, history)[0]
        total += want
        assert math.exp(B.loglik_terms(*params, x, t_x, n)) == pytest.approx(want, rel=1e-12)
        # alive at n: the story's term tau = n + 1 (no death at the start of opportunities 1..n)
        alive_at_n = beta_moment(params[2], params[3], 0, n) * beta_moment(params[0], params[1], x, n - x)
        assert B.p_alive(*params, x, t_x, n) == pytest.approx(alive_at_n / want, rel=1e-12)
    assert total == pytest.approx(1.0, rel=1e-12)  # every sequence of 5 opportunities


@pytest.mark.parametrize("params", PARAMS_GRID)
def test_probabilities_over_patterns_sum_to_one(params):
    # the pattern (x, t_x) stands for comb(t_x - 1, x - 1) sequences (the last transaction at t_x)
    for n in (0, 1, 4, 9):
        total = math.exp(B.loglik_terms(*params, 0, 0, n))
        for t_x in range(1, n + 1):
            for x in range(1, t_x + 1):
                total += comb(t_x - 1, x - 1) * math.exp(B.loglik_terms(*params, x, t_x, n))
        assert total == pytest.approx(1.0, rel=1e-11), n


@pytest.mark.parametrize("params", PARAMS_GRID)
def test_future_transactions_are_the_story_conditioned_on_the_history(params):
    future = 4
    for history in [(0, 0, 0), (1, 0, 0), (0, 1, 1), (1, 1, 1), (1, 0, 1, 0, 0, 0)]:
        n, x = len(history), sum(history)
        t_x = max([i + 1 for i, h in enumerate(history) if h], default=0)
        joint = story(params, history, future)
        want = joint / joint.sum()
        got = B.conditional_pmf(*params, x, t_x, n, future, cap=6)[0]
        np.testing.assert_allclose(got[:future + 1], want, rtol=1e-10, atol=1e-15)
        assert np.all(got[future + 1:] == 0)
        mean = float(np.arange(future + 1) @ want)
        assert B.conditional_expected_purchases(*params, x, t_x, n, future) == pytest.approx(mean, rel=1e-10)
        assert B.conditional_expected_purchases(*params, x, t_x, n, 0) == 0
    # a new customer: the history of no opportunity
    np.testing.assert_allclose(B.pmf_new(*params, future, cap=future), story(params, (), future), rtol=1e-10)
    assert B.expected_purchases_new(*params, future) == pytest.approx(np.arange(future + 1) @ story(params, (), future),
                                                                      rel=1e-10)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    n = rng.integers(0, 12, 60).astype(float)
    t_x = np.floor(rng.uniform(0, 1, 60) * (n + 1))
    x = np.where(t_x > 0, np.ceil(rng.uniform(0, 1, 60) * t_x), 0.0)
    w = rng.integers(1, 5, 60).astype(float)
    for theta in (np.array([1.2, 0.75, 0.66, 2.8]), np.array([0.2, 3.0, 1.0, 0.5]), np.array([5.0, 0.3, 2.0, 9.0])):
        ll, grad = B.loglik_and_grad(theta, x, t_x, n, w)
        assert ll == pytest.approx(float(np.dot(w, B.loglik_terms(*theta, x, t_x, n))), rel=1e-13)
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-6 * theta[j]
            fd = (B.loglik_and_grad(theta + step, x, t_x, n, w)[0]
                  - B.loglik_and_grad(theta - step, x, t_x, n, w)[0]) / (2 * step[j])
            assert grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("gamma", [0.3, 1.0 - 0.0101, 1.0 - 0.005, 1.0 - 1e-9, 1.0, 1.0 + 1e-7, 1.0 + 0.0099, 1.0 + 0.0102, 2.0, 6.5])
def test_expected_alive_periods_closed_form_is_the_sum_on_both_sides_of_gamma_1(gamma):
    for delta in (0.05, 2.7834, 40.0, 900.0):
        m = np.arange(0, 60)
        terms = np.exp(betaln(gamma, delta + np.arange(1, 60)) - betaln(gamma, delta))
        want = np.concatenate([[0.0], np.cumsum(terms)])
        np.testing.assert_allclose(B.expected_alive_periods(gamma, delta, m), want, rtol=1e-10, atol=0)


@pytest.mark.parametrize("params", PARAMS_GRID + [(1.0, 1.0, 2.0, 1.0), (0.5, 0.5, 3.0, 0.2)])
def test_dert_is_the_discounted_sum_of_expected_transactions(params):
    x, t_x, n = np.array([0.0, 2.0, 6.0]), np.array([0.0, 3.0, 6.0]), np.array([6.0, 6.0, 6.0])
    for d in (0.1, 0.5):
        k = np.arange(0, 3000)
        cum = B.conditional_expected_purchases(*params, x[:, None], t_x[:, None], n[:, None], k[None, :])
        want = (np.diff(cum, axis=1) * (1 + d) ** -k[1:]).sum(axis=1)
        np.testing.assert_allclose(B.dert(*params, x, t_x, n, d), want, rtol=1e-9)


def test_dert_of_a_long_history_where_scipy_2f1_fails_is_the_series():
    # scipy's 2F1(1, b; b + gamma; z) is NaN here (b = delta + n in the hundreds): the series is summed instead
    from scipy.special import hyp2f1

    gamma, delta, d = np.array([1.0, 2.0, 0.5]), np.array([900.0, 1e4, 900.0]), np.array([0.05, 0.003, 0.0001])
    assert not np.isfinite(hyp2f1(1.0, delta, gamma + delta, 1 / (1 + d))).any()
    for g, b, r in zip(gamma, delta, d):
        k = np.arange(1, 400_000)
        want = np.exp(k * -np.log1p(r) + betaln(g, b + k) - betaln(g, b))[::-1].sum()
        assert B._discounted_alive_periods(g, b, r) == pytest.approx(want, rel=1e-10)


@pytest.mark.slow
def test_the_formulas_equal_lifetimes_bgbb(fitted, donations):
    fitter = pytest.importorskip("lifetimes").BetaGeoBetaBinomFitter
    x, t_x, n = (donations[c].to_numpy() for c in ("frequency", "recency", "T"))
    params = tuple(fitted.params_.values())
    with warnings.catch_warnings():  # (lifetimes sets warning filters of its own; restored on leaving)
        theirs = fitter()
        theirs.params_ = pd.Series(fitted.params_)
        theirs.data = pd.DataFrame({"frequency": x, "weights": donations["weights"].to_numpy()})
        their_ll = np.asarray(fitter._loglikelihood(params, x, t_x, n))
        their_e = theirs.conditional_expected_number_of_purchases_up_to_time(10, x, t_x, n)
        their_alive = {m: theirs.conditional_probability_alive(m, x, t_x, n) for m in (0, 1, 5)}
        their_new = theirs.expected_number_of_transactions_in_first_n_periods(6)["model"] / 11_104
    np.testing.assert_allclose(B.loglik_terms(*params, x, t_x, n), their_ll, rtol=1e-10)
    np.testing.assert_allclose(fitted.expected_purchases(donations, 10), their_e, rtol=1e-10)
    for m, want in their_alive.items():
        np.testing.assert_allclose(B.p_alive(*params, x, t_x, n, m=m), want, rtol=1e-10)
    np.testing.assert_allclose(fitted.p_alive(donations), their_alive[0], rtol=1e-10)
    np.testing.assert_allclose(fitted.purchase_probabilities_new(6, n_max=6), their_new.to_numpy(), rtol=1e-10)


finite = st.floats(min_value=-3.5, max_value=3.5)


@settings(max_examples=60, deadline=None)
@given(la=finite, lb=finite, lg=finite, ld=finite, n=st.integers(0, 40), data=st.data())
def test_properties_hold_for_any_parameters(la, lb, lg, ld, n, data):
    params = tuple(np.exp([la, lb, lg, ld]))
    t_x = data.draw(st.integers(0, n))
    x = data.draw(st.integers(min(t_x, 1), t_x))
    pa = B.p_alive(*params, x, t_x, n)
    assert 0.0 <= pa <= 1.0
    e = B.conditional_expected_purchases(*params, x, t_x, n, np.arange(0, 25))
    assert np.all(np.isfinite(e)) and np.all(np.diff(e) >= -1e-12) and e[0] == 0
    pmf = B.conditional_pmf(*params, x, t_x, n, 12, cap=12)[0]
    assert np.all(pmf >= -1e-15) and pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert float(np.arange(13) @ pmf) == pytest.approx(float(e[12]), rel=1e-8, abs=1e-12)
    assert np.isfinite(B.dert(*params, x, t_x, n, 0.05))


def test_no_nan_at_extreme_histories_and_parameters():
    # daily opportunities over ten years, tiny and huge parameters
    x, t_x, n = np.array([0.0, 1000.0, 10.0, 3600.0]), np.array([0.0, 3600.0, 3600.0, 3600.0]), np.full(4, 3652.0)
    for params in [(1e-4, 1e-4, 1e-4, 1e-4), (1e4, 1e4, 1e4, 1e4), (0.01, 50.0, 0.02, 1e3), (1.2, 0.75, 1.0, 2.8)]:
        values = [B.loglik_terms(*params, x, t_x, n), B.p_alive(*params, x, t_x, n),
                  B.conditional_expected_purchases(*params, x, t_x, n, 365.0), B.dert(*params, x, t_x, n, 0.0003)]
        assert all(np.all(np.isfinite(v)) for v in values), params
        assert np.all((values[1] >= 0) & (values[1] <= 1))
        ll, grad = B.loglik_and_grad(np.array(params), x, t_x, n, np.ones(4))
        assert np.isfinite(ll) and np.all(np.isfinite(grad))


def test_kernels_over_draws_and_segments_equal_one_draw_at_a_time(fitted):
    rng = np.random.default_rng(7)
    draws = np.exp(np.log(np.array(list(fitted.params_.values())))[None, None, :]
                   + rng.normal(0, 0.1, (5, 2, 4)))  # (draw, segment, parameter)
    x, t_x, n = np.array([0.0, 2, 2, 5, 0, 2]), np.array([0.0, 4, 4, 6, 0, 4]), np.array([6.0, 6, 6, 6, 3, 6])
    seg = np.array([0, 0, 1, 1, 0, 0])
    theta = tuple(draws[:, seg, j] for j in range(4))
    alive = B.BetaGeoBetaBinomPredictions.p_alive_kernel(theta, x[None], t_x[None], n[None], seg)
    expected = B.BetaGeoBetaBinomPredictions.expected_purchases_kernel(theta, x[None], t_x[None], n[None], [1, 3.5, 10], seg)
    cdf = B.BetaGeoBetaBinomPredictions.cdf_kernel(draws, seg, x, t_x, n, 4, 6)
    assert alive.shape == (5, 6) and expected.shape == (5, 6, 3) and cdf.shape == (6, 7)
    pmf = np.zeros((6, 7))
    for d in range(5):
        for c in range(6):
            params = draws[d, seg[c]]
            assert alive[d, c] == pytest.approx(B.p_alive(*params, x[c], t_x[c], n[c]), rel=1e-13)
            for i, t in enumerate([1, 3, 10]):  # 3.5 periods on, 3 opportunities have passed
                want = B.conditional_expected_purchases(*params, x[c], t_x[c], n[c], t)
                assert expected[d, c, i] == pytest.approx(want, rel=1e-13)
            pmf[c] += B.conditional_pmf(*params, x[c], t_x[c], n[c], 4, 6)[0] / 5
    np.testing.assert_allclose(cdf, np.cumsum(pmf, axis=1), rtol=1e-12)
    assert B.BetaGeoBetaBinomPredictions.expected_new_kernel(tuple(draws[0, 0]), np.array([0.0, 2.0, 2.9])).tolist() == \
        pytest.approx(B.expected_purchases_new(*draws[0, 0], np.array([0.0, 2.0, 2.0])).tolist(), rel=1e-13)


# --- the estimator: simulated truth, horizons, refused input ------------------------------------------------

def simulate_bgbb(n_customers, params, seed, max_n=8):
    """Customers acquired over ``max_n`` periods, each watched for n = 1..max_n opportunities. FHS's timing:
    at the start of each opportunity a living customer dies with probability theta; if still alive, they
    transact with probability p."""
    alpha, beta, gamma, delta = params
    rng = np.random.default_rng(seed)
    p = rng.beta(alpha, beta, n_customers)
    theta = rng.beta(gamma, delta, n_customers)
    n = rng.integers(1, max_n + 1, n_customers)
    alive = np.ones(n_customers, dtype=bool)
    x = np.zeros(n_customers, dtype=np.int64)
    t_x = np.zeros(n_customers, dtype=np.int64)
    for t in range(1, max_n + 1):
        watched = t <= n
        alive &= ~(watched & (rng.uniform(size=n_customers) < theta))
        buys = watched & alive & (rng.uniform(size=n_customers) < p)
        x += buys
        t_x = np.where(buys, t, t_x)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": n}, index=pd.RangeIndex(n_customers, name="customer_id"))


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_fit_recovers_simulated_parameters_within_three_standard_errors(seed):
    truth = {"alpha": 1.5, "beta": 2.5, "gamma": 0.7, "delta": 3.5}
    model = clv.BetaGeoBetaBinom().fit(simulate_bgbb(30_000, tuple(truth.values()), seed), time_unit="M")
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 3 * model.result_.se[name], (name, model.params_, model.result_.se)


def test_horizons_are_whole_periods(fitted, donations):
    monthly = clv.BetaGeoBetaBinom().fit(simulate_bgbb(3000, (1.5, 2.5, 0.7, 3.5), 5), time_unit="M")
    summary = simulate_bgbb(50, (1.5, 2.5, 0.7, 3.5), 6)
    pd.testing.assert_series_equal(monthly.expected_purchases(summary, "2y"), monthly.expected_purchases(summary, 24)
                                   .rename("expected_purchases_2y"))
    assert monthly.expected_purchases(summary, 24).name == "expected_purchases_24M"
    with pytest.raises(ValueError, match=r"whole periods: t = '52W' is 11.9589 periods of M; give a whole number"):
        monthly.expected_purchases(summary, "52W")
    with pytest.raises(ValueError, match="whole periods: t = 2.5"):
        fitted.expected_purchases(donations, 2.5)
    with pytest.raises(ValueError, match="whole periods"):
        fitted.purchase_probabilities(donations, "18M")
    with pytest.raises(ValueError, match="whole periods"):
        fitted.expected_purchases_new([1, 1.5])
    assert fitted.expected_purchases(donations, "3y").equals(fitted.expected_purchases(donations, 3).rename("expected_purchases_3y"))
    np.testing.assert_allclose(fitted.expected_cumulative_purchases([0, 0, 1], [1, 2, 3]),
                               [2 * fitted.expected_purchases_new(1), 2 * fitted.expected_purchases_new(2)
                                + fitted.expected_purchases_new(1), 2 * fitted.expected_purchases_new(3)
                                + fitted.expected_purchases_new(2)], rtol=1e-12)
    # the predictive distribution's mean is the expectation, and its interval holds it
    probs = fitted.purchase_probabilities(donations, 5, n_max=5)
    np.testing.assert_allclose(probs.to_numpy() @ np.arange(6), fitted.expected_purchases(donations, 5), rtol=1e-10)
    iv = fitted.purchase_interval(donations, 5, level=0.8)
    assert (iv["upper"] <= 5).all() and (iv["lower"] <= iv["upper"]).all()
    with pytest.raises(ValueError, match="discount_rate must be a positive rate"):
        fitted.dert(donations, 0.0)
    framed = fitted.dert(donations, 0.1, interval=0.9)
    assert list(framed.columns) == ["dert", "dert lower 90%", "dert upper 90%"]
    assert (framed["dert lower 90%"] <= framed["dert"]).all() and (framed["dert"] <= framed["dert upper 90%"]).all()


def test_a_continuous_summary_is_refused_by_name(fitted):
    continuous = pd.DataFrame({"frequency": [1, 2, 0], "recency": [3.0, 4.5, 0.0], "T": [6.0, 6.0, 6.0]})
    with pytest.raises(clv.DataError, match=r"recency is not a whole number of periods.*summary by period.*"
                                            r"column 'recency'.*1 row \(0-based row 1\)"):
        clv.BetaGeoBetaBinom().fit(continuous)
    with pytest.raises(clv.DataError, match="frequency is larger than recency"):
        fitted.p_alive(pd.DataFrame({"frequency": [3], "recency": [2], "T": [6]}))
    with pytest.raises(clv.DataError, match=r"T is not a whole number"):
        fitted.p_alive(pd.DataFrame({"frequency": [0], "recency": [0], "T": [6.5]}))
    weekly = pd.DataFrame({"frequency": [1], "recency": [2], "T": [6]})
    weekly.attrs["time_unit"] = "W"
    with pytest.raises(clv.DataError, match="by period 'W' but the model was fitted on periods 'Y'"):
        fitted.p_alive(weekly)
    with pytest.raises(clv.DataError, match="no customer transacted after their first period"):
        clv.BetaGeoBetaBinom().fit(pd.DataFrame({"frequency": [0, 0], "recency": [0, 0], "T": [3, 4]}))


# --- the summary by period ----------------------------------------------------------------------------------

@pytest.fixture()
def yearly_log():
    """Four customers over 2000-2003 (hand-made; the answers are worked out in the tests)."""
    rows = [("a", "2000-03-01", 10.0), ("a", "2000-07-01", 5.0),  # period 0: the first purchase's year
            ("a", "2001-05-05", 7.0), ("a", "2001-06-06", 3.0),  # opportunity 1, twice: counts once
            ("a", "2003-02-02", 4.0),                            # opportunity 3
            ("b", "2002-12-31", 1.0),                            # one opportunity (2003), no purchase
            ("c", "2003-06-01", 2.0),                            # acquired in the last year: T = 0
            ("d", "2001-01-01", 6.0), ("d", "2002-01-01", 8.0)]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).assign(date=lambda d: pd.to_datetime(d.date))


def test_period_summary_of_a_hand_made_log(yearly_log):
    log = clv.read_transactions(yearly_log, amount="amount", observation_end="2003-12-31")  # (covered to the year's end)
    got = clv.period_summary(log, "Y")
    want = pd.DataFrame({"frequency": [2, 0, 0, 1], "recency": [3, 0, 0, 1], "T": [3, 1, 0, 2],
                         "monetary_value": [7.0, 0.0, 0.0, 8.0]},  # a: (7 + 3) and 4, a mean of 7
                        index=pd.Index(["a", "b", "c", "d"], name="customer_id"))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got.attrs["time_unit"] == "Y" and got["frequency"].dtype == np.int64 and got["T"].dtype == np.int64
    split = clv.period_summary(log, "Y", calibration_end="2002-12-31")
    want = pd.DataFrame({"frequency": [1, 0, 1], "recency": [1, 0, 1], "T": [2, 0, 1],
                         "monetary_value": [10.0, 0.0, 8.0], "holdout_frequency": [1, 0, 0],
                         "holdout_monetary_value": [4.0, 0.0, 0.0], "holdout_spend": [4.0, 0.0, 0.0],
                         "holdout_duration": [1, 1, 1]}, index=pd.Index(["a", "b", "d"], name="customer_id"))
    pd.testing.assert_frame_equal(split, want, check_dtype=False)  # (c arrived after the calibration)
    # weeks run from Monday: Sunday 2024-01-07 and Monday 2024-01-08 are two opportunities apart from ...
    weekly = pd.DataFrame({"customer_id": ["e"] * 3, "date": pd.to_datetime(["2024-01-01", "2024-01-07", "2024-01-08"])})
    got = clv.period_summary(clv.read_transactions(weekly, observation_end="2024-01-21"), "W")
    assert got.loc["e"].tolist() == [1, 1, 2]  # ... Monday 2024-01-01, whose week holds the Sunday


def test_a_summary_ends_with_a_whole_period(yearly_log):
    with pytest.raises(clv.DataError, match=r"the log's end 2003-06-01 falls inside the year 2003-01-01 to "
                                            r"2003-12-31.*observation_end=2002-12-31.*observation_end=2003-12-31"):
        clv.period_summary(yearly_log, "Y")
    with pytest.raises(clv.DataError, match=r"calibration_end 2002-06-30 falls inside the year.*calibration_end=2001-12-31"):
        clv.period_summary(yearly_log, "Y", observation_end="2002-12-31", calibration_end="2002-06-30")
    with pytest.raises(ValueError, match="period must be one of D, W, M, Y"):
        clv.period_summary(yearly_log, "Q")
    with pytest.warns(clv.DataWarning, match="after the last purchase"):  # (the rfm summary's warning)
        clv.period_summary(yearly_log, "M", observation_end="2003-06-30")


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_period_summary_invariances(seed):
    log = make_log(np.random.default_rng(seed), n_customers=60, n_rows=600)  # 2023-01-01 + up to 399 days
    # a day is a period: the continuous summary in days
    daily = clv.period_summary(log, "D")
    continuous = clv.rfm_summary(log, time_unit="D")
    pd.testing.assert_frame_equal(daily, continuous[daily.columns], check_dtype=False)
    # the calibration summary and its holdout add up to the summary at the end
    whole = clv.period_summary(log, "M", observation_end="2024-01-31")
    split = clv.period_summary(log, "M", observation_end="2024-01-31", calibration_end="2023-08-31")
    joined = whole.loc[split.index]
    np.testing.assert_array_equal(split["frequency"] + split["holdout_frequency"], joined["frequency"])
    np.testing.assert_array_equal(split["T"] + split["holdout_duration"], joined["T"])
    assert (split["holdout_duration"] == 5).all()
    assert ((split["recency"] == joined["recency"]) | (split["holdout_frequency"] > 0)).all()
    assert (whole["frequency"] <= whole["recency"]).all() and (whole["recency"] <= whole["T"]).all()
    # the order of the rows does not matter
    shuffled = log.sample(frac=1.0, random_state=seed)
    pd.testing.assert_frame_equal(clv.period_summary(shuffled, "M", observation_end="2024-01-31"), whole)


# --- the layers above: model files, customer value, the command line ----------------------------------------

def test_model_files_keep_the_period(fitted, donations, tmp_path):
    fitted.save(tmp_path / "bgbb.json")
    back = clv.BetaGeoBetaBinom.load(tmp_path / "bgbb.json")
    assert back.time_unit_ == "Y" and back.params_ == fitted.params_
    pd.testing.assert_series_equal(back.expected_purchases(donations, "5y"), fitted.expected_purchases(donations, "5y"))
    pd.testing.assert_frame_equal(back.dert(donations, 0.1, interval=0.9), fitted.dert(donations, 0.1, interval=0.9))


def test_customer_value_discounts_each_period_s_transactions(cdnow_tx):
    summary = clv.period_summary(cdnow_tx, "M", calibration_end="1997-09-30", observation_end="1998-06-30")
    model, spend = clv.BetaGeoBetaBinom().fit(summary), clv.GammaGamma().fit(summary)
    value = clv.customer_value(model, spend, summary, horizons=["1y"], annual_discount_rate=0.1)
    # transactions at the end of their month, discounted continuously at ln(1.1) a year
    cum = np.stack([model.expected_purchases(summary, k).to_numpy() for k in range(13)], axis=1)
    exact = spend.expected_spend(summary) * (np.diff(cum, axis=1) * np.exp(-np.log(1.1) * np.arange(1, 13) / 12)).sum(axis=1)
    np.testing.assert_allclose(value["value_1y"], exact, rtol=2e-3)  # (Gauss-Legendre on a step function)
    np.testing.assert_allclose(value["expected_purchases_1y"], cum[:, 12], rtol=1e-12)


@pytest.fixture()
def cdnow_csv(cdnow_df, tmp_path):
    cdnow_df.to_csv(tmp_path / "cdnow.csv", index=False)
    return ("summarize", tmp_path / "cdnow.csv", "--customer", "customer_id", "--date", "date", "--amount", "amount")


def test_cli_summarizes_by_period_and_fits_bgbb(cdnow_csv, cdnow_tx, tmp_path):
    proc = run_cli(*cdnow_csv, "--period", "M", "--calibration-end", "1997-09-30", "-o", tmp_path / "s.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(tmp_path / "s.csv", index_col="customer_id").sort_index()  # (ids as text: sorted as text)
    want = clv.period_summary(cdnow_tx, "M", calibration_end="1997-09-30")  # (to the log's end, 1998-06-30)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    proc = run_cli("fit", tmp_path / "s.csv", "--model", "bgbb", "--time-unit", "M", "-o", tmp_path / "m.json", "-q")
    assert proc.returncode == 0, proc.stderr
    model = clv.load(tmp_path / "m.json")["bgbb"]
    assert model.time_unit_ == "M"
    np.testing.assert_allclose(list(model.params_.values()),
                               list(clv.BetaGeoBetaBinom().fit(want).params_.values()), rtol=1e-9)


def test_one_opportunity_each_is_refused_as_unidentifiable():
    # the new-user run: a two-year log by year gives every customer T = 1, and the fit said "did not
    # converge" while quoting scipy's converged message; one period cannot tell transacting from dropout
    one = pd.DataFrame({"frequency": [0.0, 1.0, 1.0, 0.0], "recency": [0.0, 1.0, 1.0, 0.0], "T": 1.0})
    one.attrs["time_unit"] = "Y"
    with pytest.raises(clv.DataError, match=r"one purchase opportunity after their first period \(T = 1\)"):
        clv.BetaGeoBetaBinom().fit(one)


@pytest.mark.slow
def test_cli_predicts_with_bgbb_and_says_errors_in_its_terms(cdnow_csv, cdnow_tx, tmp_path):
    proc = run_cli(*cdnow_csv, "--period", "Y", "--end", "1997-12-31", "-o", tmp_path / "y.csv", "-q")
    assert proc.returncode == 0 and (pd.read_csv(tmp_path / "y.csv")["T"] == 0).all(), proc.stderr
    proc = run_cli("fit", tmp_path / "y.csv", "--model", "bgbb", "--time-unit", "Y", "-o", tmp_path / "m.json", "-q")
    # every CDNOW customer arrived in 1997: by year, none has an opportunity yet
    assert proc.returncode == 2 and "no customer has a purchase opportunity after their first period" in proc.stderr
    proc = run_cli(*cdnow_csv, "--period", "M", "-o", tmp_path / "s.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("fit", tmp_path / "s.csv", "--model", "bgbb", "--time-unit", "M", "-o", tmp_path / "m.json", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("predict", tmp_path / "m.json", tmp_path / "s.csv", "--horizons", "6M,1y", "-o", tmp_path / "p.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    summary = clv.period_summary(cdnow_tx, "M")
    scores = pd.read_csv(tmp_path / "p.csv", index_col=0).reindex(summary.index)
    model = clv.load(tmp_path / "m.json")["bgbb"]
    np.testing.assert_allclose(scores["expected_purchases_1y"], model.expected_purchases(summary, "1y"), rtol=1e-9)
    np.testing.assert_allclose(scores["p_alive"], model.p_alive(summary), rtol=1e-9)
    # in command-line terms: a partial period, two kinds of summary at once, a continuous summary for BG/BB
    proc = run_cli(*cdnow_csv, "--period", "Y", "-o", tmp_path / "bad.csv")
    assert proc.returncode == 2 and "the log's end 1998-06-30 falls inside the year" in proc.stderr, proc.stderr
    assert "--end 1997-12-31" in proc.stderr and not (tmp_path / "bad.csv").exists()
    proc = run_cli(*cdnow_csv, "--period", "M", "--time-unit", "W", "-o", tmp_path / "bad.csv")
    assert proc.returncode == 2 and "--period and --time-unit make different summaries" in proc.stderr, proc.stderr
    proc = run_cli(*cdnow_csv, "-o", tmp_path / "w.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("fit", tmp_path / "w.csv", "--model", "bgbb", "--time-unit", "W", "-o", tmp_path / "w.json")
    assert proc.returncode == 2 and "recency is not a whole number of periods" in proc.stderr, proc.stderr
    proc = run_cli("fit", tmp_path / "s.csv", "--model", "bgbb", "-o", tmp_path / "w.json")
    assert proc.returncode == 2 and "(for a summary by period, its period: D, W, M or Y)" in proc.stderr, proc.stderr
