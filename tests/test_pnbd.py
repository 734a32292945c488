"""The Pareto/NBD (clvmodels/models/pnbd.py): the published CDNOW numbers, the likelihood and predictions
against 40-digit mpmath on extreme inputs, properties over random inputs, recovery of simulated
parameters, and its place in every layer above the models (CLI, backtest, model files), reached through
the contract and the registry alone."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import clvmodels as clv
from clvmodels.models import pnbd as PN
from tests.cli_run import run_cli

mp = pytest.importorskip("mpmath")

# ../shared/reference/cdnow.md, "Pareto/NBD — same data" (CDNOW sample, 39-week calibration, weeks): the
# maximum-likelihood estimates of the BTYD package / FHL (2005) and its worked customer.
MLE = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.67}


@pytest.fixture(scope="module")
def pn(cal):
    return clv.ParetoNBD().fit(cal)


def simulate(n, r, alpha, s, beta, T, rng):
    """Pareto/NBD customers: lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta), dropout ~ Exp(mu), Poisson
    purchases until min(dropout, T); the last of x uniform purchase times is the recency."""
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    life = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * life).astype(float)
    t_x = np.where(x > 0, life * rng.beta(np.maximum(x, 1), 1), 0.0)
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": np.broadcast_to(T, (n,)).astype(float)},
                        index=pd.RangeIndex(n, name="customer_id"))


def exact(r, alpha, s, beta, x, t_x, T, dps=40):
    """(log-likelihood, P(alive)) from the FHL note's 2F1 form in mpmath at ``dps`` digits (the difference of
    the two 2F1 terms, which cancels in double precision, is harmless at 40 digits)."""
    with mp.workdps(dps):
        R, A, S, B, X, TX, TT = map(mp.mpf, (r, alpha, s, beta, x, t_x, T))
        a = R + S + X
        if A >= B:
            F = lambda t: mp.hyp2f1(a, S + 1, a + 1, (A - B) / (A + t)) / (A + t) ** a  # noqa: E731
        else:
            F = lambda t: mp.hyp2f1(a, R + X, a + 1, (B - A) / (B + t)) / (B + t) ** a  # noqa: E731
        alive = (A + TT) ** (-(R + X)) * (B + TT) ** (-S)
        bracket = alive + S / a * (F(TX) - F(TT))
        ll = mp.loggamma(R + X) - mp.loggamma(R) + R * mp.log(A) + S * mp.log(B) + mp.log(bracket)
        return ll, alive / bracket


# --- CDNOW reference values ------------------------------------------------------------------------

def test_cdnow_parameters_and_loglik(pn):
    for name, value in MLE.items():
        assert pn.params_[name] == pytest.approx(value, rel=1e-2 if name == "beta" else 1e-3), name
    assert pn.loglik_ == pytest.approx(-9594.97, abs=0.01)
    assert pn.result_.converged and pn.time_unit_ == "W" and pn.n_customers_ == 2357
    assert list(pn.result_.table().index) == list(PN.PARAMS) and (pn.result_.table()["se"] > 0).all()


def test_cdnow_worked_customer(pn):
    # cdnow.md: x = 26, t_x = 30.857143, T = 31: E over 52 weeks 25.45647 and P(alive) 0.997874 (the
    # reference's fit; at ours, whose parameters differ in the 4th digit, E = 25.4552: abs 2e-3)
    p = pn._p()
    assert PN.conditional_expected_purchases(*p, 26, 30.857143, 31, 52) == pytest.approx(25.45647, abs=2e-3)
    assert PN.p_alive(*p, 26, 30.857143, 31) == pytest.approx(0.997874, abs=1e-5)


def test_cdnow_dert(pn, cal):
    # cdnow.md: DERT 6.4838 for x=2, t_x=30.43, T=38.86 under the 39-week parameters at 15% a year. It
    # is reproduced to 1e-4 at the parameters rounded to 3 decimals and delta = 0.0027 (ln(1.15)/52 =
    # 0.0026877 rounded); at our estimate and delta = ln(1.15)/52 exactly the same formula gives 6.49998,
    # checked here against the definition, int_0^inf e^(-delta u) dE[Y(u)], by mpmath quadrature.
    assert PN.dert(0.553, 10.578, 0.606, 11.669, 2, 30.43, 38.86, 0.0027) == pytest.approx(6.4838, abs=1e-4)
    p, delta = pn._p(), np.log(1.15) / 52
    r, alpha, s, beta = p
    B = beta + 38.86
    with mp.workdps(30):
        integral = mp.quad(lambda u: mp.e ** (-delta * u) * (B / (B + u)) ** s, [0, 100, 1000, mp.inf])
    want = float(PN.p_alive(*p, 2, 30.43, 38.86)) * (r + 2) / (alpha + 38.86) * float(integral)
    assert PN.dert(*p, 2, 30.43, 38.86, delta) == pytest.approx(want, rel=1e-10)
    assert want == pytest.approx(6.49998, abs=1e-4)
    series = pn.discounted_expected_transactions(cal, delta)
    assert series.index.equals(cal.index) and np.isfinite(series).all() and (series > 0).all()
    with pytest.raises(ValueError, match="delta"):
        pn.discounted_expected_transactions(cal, 0.0)


def test_holdout_table_by_calibration_frequency(pn, cal):
    # cdnow.md, the Pareto/NBD row: mean conditional expectation over weeks 40-78 by calibration frequency.
    # A correct fit reproduces it to 1e-3 after rounding to 3 decimals (our x = 1 and x = 4 cells are
    # 0.59947 and 2.39831, which round to .599 and .398 against the reference's .600 and .399: the
    # reference's fit differs from ours in the 4th digit of its parameters).
    table = pn.expected_purchases(cal, 39).groupby(cal["frequency"].clip(upper=7)).mean()
    want = [.138, .600, 1.196, 1.714, 2.399, 2.907, 3.819, 6.403]
    np.testing.assert_allclose(table.round(3), want, atol=1e-3 + 1e-12)


# --- likelihood: exactness, gradient, weights --------------------------------------------------------

EXTREME = [
    # (r, alpha, s, beta, x, t_x, T)
    (0.55, 10.58, 0.61, 11.67, 2, 30.43, 38.86),
    (0.5, 10.0, 0.5, 10.0, 3000, 1400.0, 1500.0),         # alpha = beta, x in the thousands
    (0.5, 10.0, 0.5, 10.0 + 1e-9, 3000, 1499.999, 1500.0),  # alpha ~ beta, t_x ~ T (the 2F1 terms cancel)
    (0.2, 1e6, 0.3, 1e-6, 4000, 5.0, 1500.0),              # alpha / beta = 1e12
    (0.2, 1e-6, 0.3, 1e6, 0, 0.0, 1500.0),                 # beta / alpha = 1e12
    (0.3, 1e-3, 0.8, 1e3, 5, 100.0, 10_000.0),             # T = 10,000 days
    (0.3, 1e3, 0.8, 1e-3, 5, 100.0, 10_000.0),
    (1.5, 0.01, 3.0, 100.0, 5000, 9000.0, 10_000.0),
    (0.3, 20.0, 0.4, 0.02, 2000, 10.0, 10_000.0),
    (5.0, 100.0, 0.01, 1e-4, 50, 0.0, 10_000.0),
    (0.05, 3.0, 20.0, 0.5, 0, 0.0, 1e4),
    (30.0, 0.5, 0.05, 400.0, 800, 1499.0, 1500.0),
]


@pytest.mark.parametrize("case", EXTREME)
def test_loglik_and_p_alive_match_mpmath(case):
    ll, pa = exact(*case)
    assert PN.loglik_terms(*case) == pytest.approx(float(ll), rel=1e-13, abs=1e-11)
    got = float(PN.p_alive(*case))
    assert got == pytest.approx(float(pa), rel=1e-9, abs=1e-300)


def test_loglik_vectorised_equals_elementwise():
    cases = np.array(EXTREME, dtype=float).T
    np.testing.assert_allclose(PN.loglik_terms(*cases), [PN.loglik_terms(*c) for c in EXTREME], rtol=1e-14)


def test_analytic_gradient_matches_finite_differences(cal):
    x, t_x, T = (cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(0).integers(1, 4, len(x)).astype(float)
    for theta in (np.array([0.55, 10.6, 0.6, 11.7]), np.array([0.3, 30.0, 1.4, 4.0]), np.array([2.0, 3.0, 0.2, 90.0])):
        ll, grad = PN.loglik_and_grad(theta, x, t_x, T, w)
        assert ll == pytest.approx(np.dot(w, PN.loglik_terms(*theta, x, t_x, T)), rel=1e-13)
        for i in range(4):
            h = 1e-6 * theta[i]
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            fd = (PN.loglik_and_grad(up, x, t_x, T, w)[0] - PN.loglik_and_grad(down, x, t_x, T, w)[0]) / (2 * h)
            # (abs: the differences' rounding, ~1e-16 |ll| / h)
            assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-4), (theta, i)


def test_analytic_hessian_matches_finite_differences_of_the_gradient(cal):
    # alpha = beta too: the integral's two sides swap there
    x, t_x, T = (cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.random.default_rng(0).integers(1, 4, len(x)).astype(float)
    for theta in (np.array([0.55, 10.6, 0.6, 11.7]), np.array([0.3, 30.0, 1.4, 4.0]), np.array([2.0, 3.0, 0.2, 90.0]),
                  np.array([0.5, 5.0, 0.5, 5.0])):
        ll, grad, hess = PN.loglik_grad_hess(theta, x, t_x, T, w)
        ll0, grad0 = PN.loglik_and_grad(theta, x, t_x, T, w)
        assert ll == pytest.approx(ll0, rel=1e-14)
        np.testing.assert_allclose(grad, grad0, rtol=1e-10, atol=1e-9 * np.max(np.abs(grad0)))
        fd = np.empty((4, 4))
        for i in range(4):
            h = 1e-5 * theta[i]
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            fd[:, i] = (PN.loglik_and_grad(up, x, t_x, T, w)[1] - PN.loglik_and_grad(down, x, t_x, T, w)[1]) / (2 * h)
        assert np.array_equal(hess, hess.T)
        # on the log scale (theta_i theta_j H_ij), against the largest curvature
        scaled_error = np.abs(np.outer(theta, theta) * (hess - fd))
        assert np.all(scaled_error <= 1e-6 * np.max(np.abs(np.outer(theta, theta) * fd))), (theta, hess, fd)


def exact_hessian(case, dps=80):
    """Hessian of one customer's log-likelihood in (r, alpha, s, beta): central differences (step 1e-20 of each
    parameter, truncation error ~1e-40) of :func:`exact` at ``dps`` digits."""
    p0, data = case[:4], case[4:]
    with mp.workdps(dps):
        p = [mp.mpf(v) for v in p0]
        h = [mp.mpf(10) ** -20 * v for v in p]

        def f(*shift):
            return exact(*[pi + si * hi for pi, si, hi in zip(p, shift, h)], *data, dps=dps)[0]

        hess = np.empty((4, 4))
        f0 = f(0, 0, 0, 0)
        for i in range(4):
            e = [int(k == i) for k in range(4)]
            hess[i, i] = float((f(*e) - 2 * f0 + f(*[-v for v in e])) / h[i] ** 2)
            for j in range(i + 1, 4):
                def at(a, b):
                    return f(*[a * (k == i) + b * (k == j) for k in range(4)])

                hess[i, j] = hess[j, i] = float((at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h[i] * h[j]))
    return hess


@pytest.mark.parametrize("case", [c if c[2] < 10 else pytest.param(c, marks=pytest.mark.slow) for c in EXTREME])
def test_analytic_hessian_matches_mpmath(case):
    # x in the thousands, T of decades, alpha / beta from 1e-12 to 1e12, alpha = beta and t_x near T. On the
    # log scale against the largest curvature: an entry can be a small difference of large terms (beta-beta
    # at s = 20 and beta << T: terms of 80 cancel to 3e-5), held to the quadrature's accuracy of those terms
    theta = np.array(case[:4])
    ll, grad, hess = PN.loglik_grad_hess(theta, *(np.array([v], dtype=float) for v in case[4:]), np.ones(1))
    want = exact_hessian(case)
    scale = np.outer(theta, theta)
    assert np.all(np.abs(scale * (hess - want)) <= 1e-8 * np.max(np.abs(np.diag(scale * want)))), (hess, want)
    largest = np.max(np.abs(np.diag(scale * want)))
    np.testing.assert_allclose(np.diag(scale * hess), np.diag(scale * want), rtol=1e-6, atol=1e-12 * largest)


def test_log_integral_covariance_option_keeps_the_integral_and_means():
    cases = np.array(EXTREME, dtype=float).T
    r, alpha, s, beta, x, t_x, T = cases
    a, q, P, d, _ = PN._sides(r, alpha, s, beta, x)
    log_i, means = PN.log_integral(a, q, P, d, t_x, T, moments=True)
    log_i2, means2, cov = PN.log_integral(a, q, P, d, t_x, T, covariance=True)
    np.testing.assert_array_equal(log_i, log_i2)
    for m, m2 in zip(means, means2):
        np.testing.assert_allclose(m2, m, rtol=1e-13)
    assert cov.shape == (4, 4, len(a)) and np.array_equal(cov, cov.transpose(1, 0, 2))
    assert np.all(np.diagonal(cov, axis1=0, axis2=1) >= -1e-12 * np.array(means).T ** 2)


def test_weights_equal_expanded_rows(cal):
    sub = cal.iloc[:600]
    weights = np.random.default_rng(0).integers(1, 4, len(sub))
    expanded = sub.loc[sub.index.repeat(weights)].reset_index(drop=True)
    a, b = clv.ParetoNBD().fit(sub, weights=weights), clv.ParetoNBD().fit(expanded)
    for k in PN.PARAMS:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=1e-5)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-10)


def test_no_repeat_buyer_is_refused():
    frame = pd.DataFrame({"frequency": [0, 0, 3], "recency": [0.0, 0.0, 5.0], "T": [10.0, 12.0, 9.0]})
    with pytest.raises(clv.DataError, match="no customer has a repeat"):
        clv.ParetoNBD().fit(frame, weights=[5, 5, 0])


# --- predictions -----------------------------------------------------------------------------------

def exact_expected(r, alpha, s, beta, x, t_x, T, t):
    """E[Y(t) | x, t_x, T] = P(alive) (r+x)/(alpha+T) (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)] at
    40 digits (FHL note, section 6)."""
    _, pa = exact(r, alpha, s, beta, x, t_x, T)
    with mp.workdps(40):
        R, A, S, B, X, TT, tt = map(mp.mpf, (r, alpha, s, beta, x, T, t))
        return pa * (R + X) / (A + TT) * (B + TT) / (S - 1) * (1 - ((B + TT) / (B + TT + tt)) ** (S - 1))


@pytest.mark.parametrize("case", EXTREME)
def test_expectation_matches_mpmath(case):
    for t in (1.0, 52.0, 5000.0):
        want = exact_expected(*case, t)
        got = float(PN.conditional_expected_purchases(*case, t))
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-300), (case, t)


def test_expectation_is_continuous_through_s_equal_one():
    # the closed form divides by s - 1: at s = 1 it is (beta+T) log(1 + t/(beta+T)); no jump around it
    args = (0.5, 10.0, 2, 20.0, 40.0, 52.0)
    at_one = PN.conditional_expected_purchases(0.5, 10.0, 1.0, 12.0, *args[2:])
    for eps in (1e-12, 1e-8, -1e-8):
        assert PN.conditional_expected_purchases(0.5, 10.0, 1.0 + eps, 12.0, *args[2:]) == pytest.approx(at_one, rel=1e-7)
    with mp.workdps(30):
        B = mp.mpf(12.0 + 40.0)
        new = 0.5 / 10.0 * 12.0 * mp.log(1 + mp.mpf(52) / 12)
    assert PN.expected_purchases_new(0.5, 10.0, 1.0, 12.0, 52.0) == pytest.approx(float(new), rel=1e-13)
    assert B > 0


def test_new_customer_expectation_is_the_limit_of_a_long_history():
    # E[X(t)] for a new customer equals the conditional expectation at x = t_x = T = 0
    p = (0.55, 10.58, 0.61, 11.67)
    ts = np.array([0.5, 1.0, 39.0, 78.0, 520.0])
    np.testing.assert_allclose(PN.expected_purchases_new(*p, ts),
                               [PN.conditional_expected_purchases(*p, 0, 0.0, 0.0, t) for t in ts], rtol=1e-14)


params = st.tuples(st.floats(1e-2, 50), st.floats(1e-3, 1e4), st.floats(1e-2, 30), st.floats(1e-3, 1e4))


@settings(max_examples=150, deadline=None)
@given(p=params, x=st.integers(0, 10_000), frac=st.floats(0, 1), T=st.floats(0, 1e4), t=st.floats(1e-3, 1e4))
def test_finite_and_bounded_everywhere(p, x, frac, T, t):
    t_x = frac * T if x > 0 else 0.0
    assert np.isfinite(PN.loglik_terms(*p, x, t_x, T))
    pa = PN.p_alive(*p, x, t_x, T)
    assert 0.0 <= pa <= 1.0
    e1, e2 = (PN.conditional_expected_purchases(*p, x, t_x, T, tt) for tt in (t, 2 * t))
    assert np.isfinite(e1) and np.isfinite(e2)
    assert 0.0 <= e1 <= e2 * (1 + 1e-12) + 1e-300   # increasing in t


@pytest.mark.slow  # (the extreme cases above run in the fast tier)
@settings(max_examples=60, deadline=None)
@given(p=params, x=st.integers(0, 5000), frac=st.floats(0, 1), T=st.floats(1e-2, 1e4))
def test_loglik_matches_mpmath_on_random_inputs(p, x, frac, T):
    t_x = frac * T if x > 0 else 0.0
    ll, pa = exact(*p, x, t_x, T)
    assert PN.loglik_terms(*p, x, t_x, T) == pytest.approx(float(ll), rel=1e-12, abs=1e-10)
    assert PN.p_alive(*p, x, t_x, T) == pytest.approx(float(pa), rel=1e-8, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(p=params, x=st.integers(0, 300), frac=st.floats(0, 1), T=st.floats(0, 500), t=st.floats(0.1, 200),
       c=st.floats(1e-2, 1e2))
def test_rescaling_time_leaves_predictions_unchanged(p, x, frac, T, t, c):
    r, alpha, s, beta = p
    t_x = frac * T if x > 0 else 0.0
    pa = PN.p_alive(r, alpha, s, beta, x, t_x, T)
    scaled = PN.p_alive(r, c * alpha, s, c * beta, x, c * t_x, c * T)
    assert scaled == pytest.approx(pa, rel=1e-9, abs=1e-250)
    e = PN.conditional_expected_purchases(r, alpha, s, beta, x, t_x, T, t)
    assert PN.conditional_expected_purchases(r, c * alpha, s, c * beta, x, c * t_x, c * T, c * t) == pytest.approx(
        e, rel=1e-9, abs=1e-250)


@settings(max_examples=40, deadline=None)
@example(p=(1.0, 2.0, 1.0, 2.0), x=0, frac=0.0, T=5e-324, t=1.0)  # (T - t_x underflows against alpha)
@given(p=st.tuples(st.floats(0.05, 20), st.floats(0.1, 1e3), st.floats(0.05, 20), st.floats(0.1, 1e3)),
       x=st.integers(0, 60), frac=st.floats(0, 1), T=st.floats(0, 300), t=st.floats(0.1, 150))
def test_pmf_sums_to_one_and_its_mean_is_the_expectation(p, x, frac, T, t):
    t_x = frac * T if x > 0 else 0.0
    mean = float(PN.conditional_expected_purchases(*p, x, t_x, T, t))
    # the support holds all but e^-40 of the mass: 40 x the largest mean given alive (the rate's posterior
    # mean times t), past which the negative binomial's tail falls at least as fast as e^(-n / that mean)
    alive_mean = (p[0] + x) * t / (p[1] + T)
    assume(alive_mean <= 60)
    cap = int(40 * alive_mean + 200)
    probs = PN.conditional_pmf(*p, x, t_x, T, t, cap)
    assert np.all(np.isfinite(probs)) and np.all(probs >= -1e-15)
    cdf = np.cumsum(probs)
    assert np.all(np.diff(cdf) >= -1e-15) and cdf[-1] <= 1 + 1e-12
    # the mass beyond cap is at most mean / (cap + 1) (Markov)
    assert cdf[-1] >= 1 - mean / (cap + 1) - 1e-12
    assert (probs * np.arange(cap + 1)).sum() == pytest.approx(mean, rel=1e-6, abs=1e-9)


def test_purchase_probabilities_agree_with_the_expectation(pn, cal):
    sub = cal.iloc[:60]
    probs = pn.purchase_probabilities(sub, 39, n_max=300)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-10)
    np.testing.assert_allclose((probs * np.arange(301)).sum(axis=1), pn.expected_purchases(sub, 39), rtol=1e-8)
    iv = pn.purchase_interval(sub, 39, level=0.9)
    assert (iv["lower"] <= iv["upper"]).all() and (iv["lower"] >= 0).all()


def test_kernels_take_many_draws(pn, cal):
    # a posterior's draws: each draw's prediction is the single-draw kernel's, averaged over draws
    sub = cal.iloc[:200]
    x, t_x, T = (sub[c].to_numpy(float)[None, :] for c in ("frequency", "recency", "T"))
    rng = np.random.default_rng(2)
    draws = np.array(pn._p()) * np.exp(rng.normal(0, 0.05, (7, 4)))
    theta = tuple(np.repeat(draws[:, j:j + 1], len(sub), axis=1) for j in range(4))
    seg = np.zeros(len(sub), dtype=np.int64)
    pa = PN.ParetoNBDPredictions.p_alive_kernel(theta, x, t_x, T, seg)
    ex = PN.ParetoNBDPredictions.expected_purchases_kernel(theta, x, t_x, T, [39.0, 52.0], seg)
    assert pa.shape == (7, 200) and ex.shape == (7, 200, 2)
    for d in range(7):
        np.testing.assert_allclose(pa[d], PN.p_alive(*draws[d], x[0], t_x[0], T[0]), rtol=1e-14)
        np.testing.assert_allclose(ex[d, :, 1], PN.conditional_expected_purchases(*draws[d], x[0], t_x[0], T[0], 52.0),
                                   rtol=1e-14)
    cdf = PN.ParetoNBDPredictions.cdf_kernel(draws[:, None, :], seg, x[0], t_x[0], T[0], 39.0, 40)
    one = np.mean([np.cumsum(PN.conditional_pmf(*d, x[0], t_x[0], T[0], 39.0, 40), axis=1) for d in draws], axis=0)
    np.testing.assert_allclose(cdf, one, rtol=1e-12, atol=1e-15)
    new = PN.ParetoNBDPredictions.expected_new_kernel(tuple(draws[0]), np.array([1.0, 52.0]))
    np.testing.assert_allclose(new, PN.expected_purchases_new(*draws[0], np.array([1.0, 52.0])), rtol=1e-14)


# --- fitting simulated customers -------------------------------------------------------------------

TRUTH = {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_simulated_parameters(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    sim = simulate(n, *TRUTH.values(), T=rng.uniform(20, 104, n), rng=rng)
    fit = clv.ParetoNBD().fit(sim, time_unit="W")
    for k, v in TRUTH.items():
        assert abs(fit.params_[k] - v) < 3 * fit.result_.se[k], (seed, k, fit.params_, fit.result_.se)


def test_recovers_simulated_parameters_quickly():
    rng = np.random.default_rng(7)
    n = 6000
    sim = simulate(n, *TRUTH.values(), T=rng.uniform(20, 104, n), rng=rng)
    fit = clv.ParetoNBD().fit(sim, time_unit="W")
    for k, v in TRUTH.items():
        assert abs(fit.params_[k] - v) < 3 * fit.result_.se[k], (k, fit.params_, fit.result_.se)


def test_standard_errors_come_from_the_hessian_at_the_optimum(pn, cal):
    # the fit's covariance (the analytic Hessian's) against central differences of the analytic gradient at
    # the optimum (step 1e-5 on the log scale: truncation ~1e-10, rounding ~1e-11 of the curvature), on the
    # correlation scale
    from clvmodels.models._mle import _neg_log_space

    x, t_x, T = (cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    fun = _neg_log_space(lambda th: PN.loglik_and_grad(th, x, t_x, T, np.ones(len(x))))
    x0, h = np.log(pn._p()), 1e-5
    fd = np.array([(fun(x0 + h * e)[1] - fun(x0 - h * e)[1]) / (2 * h) for e in np.eye(4)])
    want = np.linalg.inv((fd + fd.T) / 2)
    sd = np.sqrt(np.diag(want))
    np.testing.assert_allclose(pn.result_.cov_log / np.outer(sd, sd), want / np.outer(sd, sd), rtol=0, atol=1e-5)


def test_rescaled_summary_gives_the_rescaled_fit(pn, cal):
    days = cal.copy()
    for c in ("recency", "T"):
        days[c] = days[c] * 7
    days.attrs["time_unit"] = "D"
    pd_ = clv.ParetoNBD().fit(days, time_unit="D")
    for k in ("alpha", "beta"):
        assert pd_.params_[k] == pytest.approx(pn.params_[k] * 7, rel=1e-4)
    for k in ("r", "s"):
        assert pd_.params_[k] == pytest.approx(pn.params_[k], rel=1e-4)
    np.testing.assert_allclose(pd_.p_alive(days), pn.p_alive(cal), rtol=1e-5)
    np.testing.assert_allclose(pd_.expected_purchases(days, "1y"), pn.expected_purchases(cal, "1y"), rtol=1e-5)
    assert pd_.loglik_ == pytest.approx(pn.loglik_ - cal["frequency"].sum() * np.log(7), abs=1e-3)


# --- through the contract: value, backtest, report, model files, command line -----------------------

@pytest.mark.slow  # (the backtest fits and scores every cut: about 3.5 s)
def test_value_backtest_and_report_take_the_pareto_nbd(pn, cal, cdnow_tx, tmp_path):
    gg = clv.GammaGamma().fit(cal)
    value = clv.customer_value(pn, gg, cal, horizons=["1y"])
    np.testing.assert_allclose(value["expected_purchases_1y"], pn.expected_purchases(cal, "1y"), rtol=1e-12)
    np.testing.assert_allclose(value["p_alive"], pn.p_alive(cal), rtol=1e-12)
    from clvmodels.backtest import default_candidates

    res = clv.backtest(cdnow_tx, calibration_end="1997-09-30", horizons=["39W"], models=default_candidates(["pnbd"]))
    assert "Pareto/NBD + Gamma-Gamma" in set(res.table("rmse").index)
    metrics = set(res.metrics.loc[res.metrics.model == "Pareto/NBD + Gamma-Gamma", "metric"])
    assert {"coverage", "pit_coverage", "cumulative_error_pct"} <= metrics
    assert "Pareto/NBD + Gamma-Gamma" in res.tracking.columns
    res.to_html(tmp_path / "report.html", models={"Pareto/NBD": pn})
    assert "Pareto/NBD: maximum-likelihood estimates" in (tmp_path / "report.html").read_text()


def test_model_file_round_trip(pn, cal, tmp_path):
    clv.save(pn, tmp_path / "m.json")
    back = clv.load(tmp_path / "m.json")
    assert list(back) == ["pnbd"] and isinstance(back["pnbd"], clv.ParetoNBD)
    assert back["pnbd"].params_ == pn.params_ and back["pnbd"].loglik_ == pn.loglik_
    pd.testing.assert_series_equal(back["pnbd"].expected_purchases(cal, 39), pn.expected_purchases(cal, 39))
    pd.testing.assert_frame_equal(back["pnbd"].p_alive(cal, interval=0.9, max_draws=40),
                                  pn.p_alive(cal, interval=0.9, max_draws=40))


def test_cli_fits_saves_and_predicts_the_pareto_nbd(cal, tmp_path):
    cal[["frequency", "recency", "T", "monetary_value"]].to_csv(tmp_path / "s.csv")
    proc = run_cli("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "pnbd,gamma-gamma", "-o",
                   tmp_path / "m.json", "-q")
    assert proc.returncode == 0, proc.stderr
    models = clv.load(tmp_path / "m.json")
    assert isinstance(models["pnbd"], clv.ParetoNBD)
    proc = run_cli("predict", tmp_path / "m.json", tmp_path / "s.csv", "--time-unit", "W", "--horizons", "1y",
                   "-o", tmp_path / "p.csv", "-q")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(tmp_path / "p.csv", index_col=0, dtype={0: str})
    want = clv.customer_value(models["pnbd"], models["gamma-gamma"], cal, horizons=["1y"])
    np.testing.assert_allclose(got["value_1y"], want["value_1y"], rtol=1e-9)


@pytest.mark.parametrize("s", [20.0, 50.0, 400.0])
def test_dert_is_finite_where_scipys_u_fails(s):
    # scipy's hyperu(s, s, z) is NaN for s of about 20 and more; DERT = P(alive) (r+x)/(alpha+T) E[1/(delta+mu)],
    # mu ~ Gamma(s, beta+T), the expectation by 30-digit mpmath quadrature here
    r, alpha, beta, x, t_x, T, delta = 0.55, 10.58, 11.67 * s / 0.6, 2.0, 30.43, 38.86, 0.002688
    B = beta + T
    density = lambda mu: mp.e ** ((s - 1) * mp.log(mu) - B * mu + s * mp.log(B) - mp.loggamma(s))  # noqa: E731
    with mp.workdps(30):
        mean_inverse = mp.quad(lambda mu: density(mu) / (delta + mu), [0, s / B, 10 * s / B, mp.inf])
    want = float(PN.p_alive(r, alpha, s, beta, x, t_x, T)) * (r + x) / (alpha + T) * float(mean_inverse)
    assert float(PN.dert(r, alpha, s, beta, x, t_x, T, delta)) == pytest.approx(want, rel=1e-11)
