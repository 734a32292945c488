"""The PyTensor log-likelihoods equal the numpy ones on a grid of parameters and data."""

import itertools

import numpy as np
import pytest

pytest.importorskip("pytensor")
import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

from clvmodels.bayes import logp  # noqa: E402
from clvmodels.models import bgnbd, gamma_gamma  # noqa: E402

rng = np.random.default_rng(0)
N = 300
X = rng.integers(0, 40, N).astype(float)
X[:20] = [0, 1, 2, 10_000] + [0] * 16
T = rng.uniform(0, 200, N)
T[3] = 1e4
TX = np.where(X > 0, rng.uniform(0, 1, N) * T, 0.0)
Z = rng.gamma(3, 10, N)


def test_bgnbd_pytensor_equals_numpy_on_a_grid():
    r, alpha, a, b = (pt.dscalar(n) for n in "r alpha a b".split())
    f = pytensor.function([r, alpha, a, b], logp.bgnbd_loglik(r, alpha, a, b, X, TX, T))
    for p in itertools.product([0.05, 0.8, 20.0], [1e-3, 4.4, 300.0], [0.1, 0.9, 5.0], [0.3, 2.4, 40.0]):
        np.testing.assert_allclose(f(*p), bgnbd.loglik_terms(*p, X, TX, T), rtol=1e-10, atol=1e-8)


def test_bgnbd_pytensor_with_per_row_parameters():
    seg = rng.integers(0, 3, N)
    r, alpha, a, b = (pt.dvector(n) for n in "r alpha a b".split())
    f = pytensor.function([r, alpha, a, b], logp.bgnbd_loglik(r, alpha, a, b, X, TX, T, seg=seg))
    params = [np.array([0.2, 0.5, 1.0]), np.array([4.0, 10.0, 1.0]), np.array([0.8, 1.2, 0.5]),
              np.array([2.0, 3.0, 0.7])]
    expected = bgnbd.loglik_terms(*(p[seg] for p in params), X, TX, T)
    np.testing.assert_allclose(f(*params), expected, rtol=1e-10, atol=1e-8)


def test_bgnbd_weighted_total_equals_numpy_with_its_gradient():
    seg = rng.integers(0, 4, N)
    seg[seg == 3] = 2  # segment 3 has no rows at all: its parameters get no likelihood
    w = rng.integers(0, 5, N).astype(float)
    r, alpha, a, b = (pt.dvector(n) for n in "r alpha a b".split())
    total = logp.bgnbd_total_loglik(r, alpha, a, b, logp.BgnbdRows(X, TX, T, seg), w)
    f = pytensor.function([r, alpha, a, b], [total, *pt.grad(total, [r, alpha, a, b])])
    params = [np.array([0.2, 0.5, 1.0, 0.3]), np.array([4.0, 10.0, 1.0, 2.0]), np.array([0.8, 1.2, 0.5, 1.0]),
              np.array([2.0, 3.0, 0.7, 1.0])]

    def numpy_total(ps):
        return np.sum(w * bgnbd.loglik_terms(*(p[seg] for p in ps), X, TX, T))

    value, *grads = f(*params)
    np.testing.assert_allclose(value, numpy_total(params), rtol=1e-12)
    for j, g in enumerate(grads):  # against central differences of the numpy likelihood
        for s in range(4):
            h = 1e-6 * params[j][s]
            up = [p.copy() for p in params]
            down = [p.copy() for p in params]
            up[j][s] += h
            down[j][s] -= h
            np.testing.assert_allclose(g[s], (numpy_total(up) - numpy_total(down)) / (2 * h), rtol=1e-5, atol=1e-6)
    assert np.all(np.array(grads)[:, 3] == 0)
    scalars = [pt.dscalar(n) for n in "r alpha a b".split()]
    g = pytensor.function(scalars, logp.bgnbd_total_loglik(*scalars, logp.BgnbdRows(X, TX, T), w))
    np.testing.assert_allclose(g(0.8, 4.4, 0.9, 2.4), np.sum(w * bgnbd.loglik_terms(0.8, 4.4, 0.9, 2.4, X, TX, T)),
                               rtol=1e-12)


def test_gamma_gamma_pytensor_with_per_row_parameters():
    rep = X > 0
    seg = rng.integers(0, 2, rep.sum())
    p, q, g = (pt.dvector(n) for n in "p q g".split())
    f = pytensor.function([p, q, g], logp.gamma_gamma_loglik(p, q, g, X[rep], Z[rep], seg=seg))
    params = [np.array([6.0, 1.0]), np.array([3.7, 9.0]), np.array([15.0, 2.0])]
    expected = gamma_gamma.loglik_terms(*(v[seg] for v in params), X[rep], Z[rep])
    np.testing.assert_allclose(f(*params), expected, rtol=1e-10, atol=1e-8)


def test_gamma_gamma_pytensor_equals_numpy_on_a_grid():
    rep = X > 0
    p, q, g = (pt.dscalar(n) for n in "p q g".split())
    f = pytensor.function([p, q, g], logp.gamma_gamma_loglik(p, q, g, X[rep], Z[rep]))
    for par in itertools.product([0.5, 6.25, 40.0], [1.5, 3.7, 20.0], [0.1, 15.4, 500.0]):
        np.testing.assert_allclose(f(*par), gamma_gamma.loglik_terms(*par, X[rep], Z[rep]), rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("mode", ["FAST_RUN", pytest.param("NUMBA", marks=pytest.mark.slow)])
def test_gamma_gamma_weighted_total_equals_numpy_with_its_gradient(mode):
    """The sampler's total (gamma functions once per (segment, x), one logarithm per row) against the numpy
    likelihood and its analytic gradient (:func:`clvmodels.models.gamma_gamma.loglik_and_grad`), segment by
    segment; a segment without rows gets no likelihood, and a pooled total equals the plain sum."""
    rep = X > 0
    x, z = X[rep], Z[rep]
    own = np.random.default_rng(11)  # (its own draws: the data do not depend on which tests ran before)
    seg = own.integers(0, 3, len(x))
    seg[seg == 2] = 3  # segment 2 has no rows
    w = own.integers(0, 4, len(x)).astype(float)
    params = [np.array([6.0, 1.0, 2.0, 0.7]), np.array([3.7, 9.0, 1.5, 20.0]), np.array([15.0, 2.0, 5.0, 300.0])]
    v = [pt.dvector(n) for n in "p q g".split()]
    total = logp.gamma_gamma_total_loglik(*v, x, z, w, seg=seg)
    value, *grads = pytensor.function(v, [total, *pt.grad(total, v)], mode=mode)(*params)
    expected_value, expected_grads = 0.0, np.zeros((3, 4))
    for s in (0, 1, 3):
        k = seg == s
        ll, grad = gamma_gamma.loglik_and_grad(np.array([p[s] for p in params]), x[k], z[k], w[k])
        expected_value += ll
        expected_grads[:, s] = grad
    np.testing.assert_allclose(value, expected_value, rtol=1e-11)
    # the p- and q-gradients sum digamma over the rows: PyTensor's digamma differs from scipy's by up to
    # 1.5e-10 a call, and the weighted sums here reach 1e3 in size, so they agree to about 2e-8, not 1e-9
    np.testing.assert_allclose(np.array(grads), expected_grads, rtol=1e-9, atol=1e-7)
    scalars = [pt.dscalar(n) for n in "p q g".split()]
    pooled = pytensor.function(scalars, logp.gamma_gamma_total_loglik(*scalars, x, z, w), mode=mode)
    np.testing.assert_allclose(pooled(6.25, 3.7, 15.4), np.dot(w, gamma_gamma.loglik_terms(6.25, 3.7, 15.4, x, z)),
                               rtol=1e-12)


@pytest.mark.parametrize("mode", ["FAST_RUN", pytest.param("NUMBA", marks=pytest.mark.slow)])
def test_repeat_buyer_op_value_and_gradient_in_both_backends(mode):
    """The repeat buyers' Op (numpy perform for the C backend, a numba loop for nutpie) inside the total,
    against the numpy likelihood and its analytic gradient (:func:`clvmodels.models.bgnbd.loglik_and_grad`)
    segment by segment."""
    pytest.importorskip("numba")
    seg = rng.integers(0, 3, N)
    w = rng.integers(1, 4, N).astype(float)
    params = [np.array([0.2, 0.5, 1.0]), np.array([4.0, 10.0, 1.0]), np.array([0.8, 1.2, 0.5]),
              np.array([2.0, 3.0, 0.7])]
    v = [pt.dvector(n) for n in "r alpha a b".split()]
    fast = logp.bgnbd_total_loglik(*v, logp.BgnbdRows(X, TX, T, seg), w)
    value, *grads = pytensor.function(v, [fast, *pt.grad(fast, v)], mode=mode)(*params)
    expected_value, expected_grads = 0.0, np.zeros((4, 3))
    for s in range(3):
        k = seg == s
        ll, grad = bgnbd.loglik_and_grad(np.array([p[s] for p in params]), X[k], TX[k], T[k], w[k])
        expected_value += ll
        expected_grads[:, s] = grad
    np.testing.assert_allclose(value, expected_value, rtol=1e-11)
    np.testing.assert_allclose(np.array(grads), expected_grads, rtol=1e-9, atol=1e-9)
