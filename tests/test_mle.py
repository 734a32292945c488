"""The shared maximum-likelihood machinery (clvmodels/models/_mle.py) on a model with a closed-form
Hessian: gamma-distributed values, log L = n [k ln(theta) - lnGamma(k)] + (k - 1) sum ln y - theta sum y.
Newton steps on an approximate Hessian (a subsample's, scaled) end where exact Newton steps end, with the
exact Hessian's standard errors; an analytic Hessian gives the finite differences' fit."""

import numpy as np
import pytest
from scipy.special import digamma, gammaln, polygamma

from clvmodels.models import _mle

NAMES = ("k", "theta")


def gamma_model(y, w=None):
    """(loglik_grad, loglik_grad_hess) of weighted gamma(shape k, rate theta) values."""
    w = np.ones(len(y)) if w is None else w
    n, s_log, s_y = w.sum(), w @ np.log(y), w @ y

    def loglik_grad(p):
        k, th = p
        ll = n * (k * np.log(th) - gammaln(k)) + (k - 1) * s_log - th * s_y
        return ll, np.array([n * (np.log(th) - digamma(k)) + s_log, n * k / th - s_y])

    def loglik_grad_hess(p):
        k, th = p
        ll, g = loglik_grad(p)
        return ll, g, np.array([[-n * polygamma(1, k), n / th], [n / th, -n * k / th ** 2]])

    return loglik_grad, loglik_grad_hess


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.gamma(2.5, 1 / 0.7, 400_000)


def fit(y, **kw):
    ll_grad, ll_grad_hess = gamma_model(y)
    return _mle.fit_mle("gamma", NAMES, ll_grad, np.array([1.0, 1.0]), n_obs=len(y), n_unique=len(y), **kw)


def test_presolve_steps_end_at_the_exact_newton_optimum(data):
    plain = fit(data)
    sub = _mle.subsample(np.ones(len(data)), size=20_000, seed=1)
    pre_ll_grad, _ = gamma_model(data[sub[0]], sub[1])
    calls = []
    ll_grad, _ = gamma_model(data)

    def counted(p):
        calls.append(p)
        return ll_grad(p)

    fast = _mle.fit_mle("gamma", NAMES, counted, np.array([1.0, 1.0]), n_obs=len(data), n_unique=len(data),
                        presolve=pre_ll_grad)
    for name in NAMES:
        assert fast.params[name] == pytest.approx(plain.params[name], rel=1e-10)
        assert fast.se[name] == pytest.approx(plain.se[name], rel=1e-6)
    assert fast.loglik == pytest.approx(plain.loglik, rel=1e-14)
    # the full data: a few gradients on the subsample's Hessian, 2 for the exact one, 1 for the last step
    assert len(calls) <= 8


def test_analytic_hessian_gives_the_finite_difference_fit(data):
    _, ll_grad_hess = gamma_model(data)
    fd, exact = fit(data), fit(data, hessian=ll_grad_hess)
    for name in NAMES:
        assert exact.params[name] == pytest.approx(fd.params[name], rel=1e-10)
        assert exact.se[name] == pytest.approx(fd.se[name], rel=1e-6)
    # the covariance is the inverse of the analytic Hessian at the optimum
    cov = np.linalg.inv(-ll_grad_hess(np.array([exact.params[n] for n in NAMES]))[2])
    np.testing.assert_allclose(exact.cov, cov, rtol=1e-6)


@pytest.mark.parametrize("factor", [1.0, 1.3, 0.2, 50.0])
def test_newton_on_an_approximate_hessian_falls_back_to_the_exact_one(data, factor):
    # a Hessian off by a factor (or exact) still ends at the optimum, with the exact Hessian returned: it is
    # used while it shrinks the decrement fourfold a step, then the exact one takes over
    ll_grad, ll_grad_hess = gamma_model(data)
    fun = _mle._neg_log_space(ll_grad)
    plain = fit(data)
    x_opt = np.log([plain.params[n] for n in NAMES])
    hess_opt = np.linalg.inv(plain.cov_log)
    close = 1e-4 * np.sqrt(np.diag(plain.cov_log))   # (each path ends within ~1e-5 standard errors)
    x0 = x_opt + np.array([0.05, -0.04])
    approx = _mle._hessian_log(fun, x0) * factor
    x, f, hess, converged, decrement, _, steps = _mle._newton(fun, x0, fun(x0)[0], approx=approx)
    assert converged and steps < 20
    assert np.all(np.abs(x - x_opt) <= close), (x - x_opt) / close
    # (the Hessian of the point before the last step, a hundredth of a standard error or less from the
    # optimum: the curvature there differs by ~1e-5)
    np.testing.assert_allclose(hess, hess_opt, rtol=1e-4)
    second = _mle._neg_log_space_hess(ll_grad_hess)
    x2, _, hess2, converged2, *_ = _mle._newton(fun, x0, fun(x0)[0], second, approx)
    assert converged2
    assert np.all(np.abs(x2 - x_opt) <= close), (x2 - x_opt) / close
    np.testing.assert_allclose(hess2, second(x2)[2], rtol=1e-4)


def test_not_positive_definite_approximation_is_ignored(data):
    ll_grad, _ = gamma_model(data)
    fun = _mle._neg_log_space(ll_grad)
    x0 = np.log([2.0, 0.5])
    res = _mle._newton(fun, x0, fun(x0)[0], approx=-np.eye(2))
    assert res[3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compress_gives_the_distinct_rows_in_order_with_their_weights(seed):
    from clvmodels.models.rows import compress

    rng = np.random.default_rng(seed)
    n = 5_000
    x = rng.poisson(1.5, n).astype(float)                     # small counts (sorted by radix)
    T = np.round(rng.uniform(0, 20, n), 1)                     # repeats
    t_x = np.where(x > 0, np.round(T * rng.uniform(0, 1, n), 1), 0.0)
    w = rng.integers(1, 4, n).astype(float)
    w[::7] = 0.0                                               # rows standing for nobody drop out
    (ux, ut, uT), uw = compress(x, t_x, T, weights=w)
    rows = np.stack([x, t_x, T], axis=1)
    expected, inverse = np.unique(rows[w > 0], axis=0, return_inverse=True)  # lexicographic, as compress
    np.testing.assert_array_equal(np.stack([ux, ut, uT], axis=1), expected)
    np.testing.assert_array_equal(uw, np.bincount(inverse.ravel(), weights=w[w > 0]))
    # a non-integer first column sorts the same way
    (vx, vt), vw = compress(x + 0.5, T)
    ref, inv = np.unique(np.stack([x + 0.5, T], axis=1), axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.stack([vx, vt], axis=1), ref)
    np.testing.assert_array_equal(vw, np.bincount(inv.ravel()))


def test_distinct_rows_index_every_row_to_an_identical_one():
    from clvmodels.models.rows import distinct_rows

    rng = np.random.default_rng(5)
    seg = rng.integers(0, 3, 4_000).astype(float)
    x = rng.poisson(1.0, 4_000).astype(float)
    T = np.round(rng.uniform(0, 5, 4_000), 1)
    first, inverse = distinct_rows(seg, x, T)
    rows = np.stack([seg, x, T], axis=1)
    np.testing.assert_array_equal(rows[first][inverse], rows)
    assert len(first) == len(np.unique(rows, axis=0))


def test_repeats_tells_gridded_ages_from_continuous_ones():
    from clvmodels.models.rows import repeats

    rng = np.random.default_rng(6)
    continuous = rng.uniform(0, 156, 100_000)
    assert not repeats(continuous)
    assert repeats(np.floor(continuous * 7) / 7)  # whole days, in weeks
    assert repeats(continuous[:500])              # small: always worth it
