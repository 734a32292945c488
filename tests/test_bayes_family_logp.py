"""The family's PyTensor log-likelihoods (clvmodels.bayes.logp) equal the numpy ones of clvmodels.models on
a grid of parameters, per row, and their gradients equal the numpy models' analytic gradients; per-segment
parameters index the rows."""

import itertools

import numpy as np
import pytest

pytest.importorskip("pytensor")
import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

from clvmodels.bayes import logp  # noqa: E402
from clvmodels.models import bgbb, bgnbd, cnbd, pnbd  # noqa: E402

rng = np.random.default_rng(1)
N = 400
T = rng.uniform(0.5, 80, N)
TX = T * rng.uniform(0, 1, N)
X = rng.poisson(3, N) * (rng.uniform(size=N) < 0.7).astype(float)
X[:5] = [100, 3000, 1, 2, 7]          # heavy buyers
TX[X == 0] = 0.0
X[60:70] = np.maximum(X[60:70], 1)
TX[60:70] = T[60:70]                  # a last purchase at the end of calibration (no dropout-time integral)
LITT = np.where(X > 0, rng.normal(0, 2, N), 0.0)
W = rng.integers(1, 5, N).astype(float)
SEG = rng.integers(0, 2, N)

# parameters from near 0 to large, alpha and beta equal (Pareto/NBD's two sides meet) and far apart
GRID = list(itertools.product([0.05, 0.6, 5.0], [0.05, 4.0, 60.0], [0.3, 1.0, 8.0], [0.02, 3.0, 40.0]))

# a summary by period: n opportunities, the last transaction at t_x <= n, x <= t_x transactions
NB = rng.integers(0, 12, N).astype(float)
TB = np.floor(NB * rng.uniform(0, 1, N))
XB = np.floor(TB * rng.uniform(0, 1, N))
XB[TB > 0] = np.maximum(XB[TB > 0], 1)
GRID_BB = list(itertools.product([0.1, 1.2, 20.0], [0.2, 0.75, 9.0], [0.05, 0.65, 4.0], [0.3, 2.8, 50.0]))

# name: (PyTensor per-row log-likelihood, numpy per-row, numpy weighted total and analytic gradient, grid)
MODELS = {
    "pnbd": (lambda *p, seg=None: logp.pnbd_loglik(*p, X, TX, T, seg=seg),
             lambda *p: pnbd.loglik_terms(*p, X, TX, T),
             lambda th: pnbd.loglik_and_grad(th, X, TX, T, W), GRID),
    "mbgnbd": (lambda *p, seg=None: logp.bgnbd_loglik(*p, X, TX, T, seg=seg, dropout_at_zero=True),
               lambda *p: bgnbd.loglik_terms(*p, X, TX, T, dropout_at_zero=True),
               lambda th: bgnbd.loglik_and_grad(th, None, None, None, None, bgnbd.Prepared(X, TX, T, W, True)), GRID),
    "bgbb": (lambda *p, seg=None: logp.bgbb_loglik(*p, XB, TB, NB, seg=seg),
             lambda *p: bgbb.loglik_terms(*p, XB, TB, NB),
             lambda th: bgbb.loglik_and_grad(th, XB, TB, NB, W), GRID_BB),
}
for _k, _z in itertools.product((1, 3), (False, True)):
    MODELS[f"{'m' if _z else ''}bgcnbd-{_k}"] = (
        lambda *p, seg=None, k=_k, z=_z: logp.cnbd_loglik(*p, X, TX, T, LITT, seg=seg, k=k, dropout_at_zero=z),
        lambda *p, k=_k, z=_z: cnbd.loglik_terms(*p, X, TX, T, LITT, k=k, dropout_at_zero=z),
        # (the numpy total leaves the timing density's share to CNBDData.timing: the same constant here)
        lambda th, k=_k, z=_z: cnbd.loglik_and_grad(
            th, cnbd.CNBDData(X, TX, T, W, k, z, timing=float(np.dot(W, (k - 1) * LITT - X * np.log(
                np.prod(np.arange(1, k))))))), GRID)


#: In the fast tier: the Pareto/NBD, the hardest of the forms (each model compiles its own graphs: about 10 s
#: apiece on a cold cache, so the others are in the full suite).
FAST = {"pnbd"}


def _tiered(names):
    return [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _tiered(MODELS))
def test_pytensor_loglik_and_gradient_equal_numpy_on_a_grid(name):
    per_row, numpy_rows, numpy_total, grid = MODELS[name]
    theta = pt.dvector("theta")
    ll = per_row(*(theta[j] for j in range(4)))
    total = pt.sum(W * ll)
    f = pytensor.function([theta], [ll, total, pt.grad(total, theta)])
    for p in grid:
        rows, value, grad = f(np.array(p))
        np.testing.assert_allclose(rows, numpy_rows(*p), rtol=1e-10, atol=1e-9, err_msg=str(p))
        ref_value, ref_grad = numpy_total(np.array(p))
        np.testing.assert_allclose(value, ref_value, rtol=1e-11, err_msg=str(p))
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-8 * np.abs(ref_grad).max(), err_msg=str(p))


@pytest.mark.parametrize("name", _tiered(["pnbd", "mbgnbd", "bgbb", "bgcnbd-3"]))
def test_per_segment_parameters_index_the_rows(name):
    per_row, numpy_rows, _, grid = MODELS[name]
    params = [np.array([v, 1.3 * v]) for v in grid[len(grid) // 2]]
    theta = [pt.dvector(f"p{j}") for j in range(4)]
    f = pytensor.function(theta, per_row(*theta, seg=SEG))
    np.testing.assert_allclose(f(*params), numpy_rows(*(p[SEG] for p in params)), rtol=1e-10, atol=1e-9)


@pytest.mark.slow
def test_mbgnbd_weighted_total_for_sampling_equals_the_rows():
    """bgnbd_total_loglik (the sampler's form: one pass of RepeatBuyerTerms) with dropout at zero, per
    segment: its value and gradient equal the per-row graph's."""
    theta = [pt.dvector(f"p{j}") for j in range(4)]
    total = logp.bgnbd_total_loglik(*theta, logp.BgnbdRows(X, TX, T, SEG, dropout_at_zero=True), W)
    rows = pt.sum(W * logp.bgnbd_loglik(*theta, X, TX, T, seg=SEG, dropout_at_zero=True))
    f = pytensor.function(theta, [total, *pt.grad(total, theta), rows, *pt.grad(rows, theta)])
    params = [np.array([0.5, 2.0]), np.array([4.0, 9.0]), np.array([0.8, 1.5]), np.array([2.5, 0.9])]
    out = f(*params)
    for fast, reference in zip(out[:5], out[5:]):
        np.testing.assert_allclose(fast, reference, rtol=1e-11)


@pytest.mark.slow
def test_pnbd_rule_holds_where_the_integrand_is_steep_or_flat():
    """The fixed rule of the Pareto/NBD integral against the adaptive numpy one where it is hardest: x in the
    thousands (the integrand falls by e^-40 within a fraction of the range), decades of age against tiny
    alpha (a flat integrand over a wide range), alpha and beta a million apart."""
    x = np.array([5000.0, 2000.0, 0.0, 0.0, 30.0, 1.0])
    t_x = np.array([3000.0, 10.0, 0.0, 0.0, 9.99, 0.5])
    T = np.array([3650.0, 3650.0, 3650.0, 0.01, 10.0, 3650.0])
    theta = pt.dvector("theta")
    f = pytensor.function([theta], logp.pnbd_loglik(*(theta[j] for j in range(4)), x, t_x, T))
    for p in [(0.5, 1e-3, 0.5, 1e3), (0.5, 1e3, 0.5, 1e-3), (2.0, 1.0, 0.1, 1.0), (0.05, 1e-6, 20.0, 1e6)]:
        np.testing.assert_allclose(f(np.array(p)), pnbd.loglik_terms(*p, x, t_x, T), rtol=1e-10, err_msg=str(p))
    # where psi steepens along the range (tiny alpha, large s: the fall within 40 / kappa is in the
    # thousands without the Newton steps, errors 7e-6); here the two rules differ by up to 6e-9, each within
    # 4e-9 of 40-digit mpmath on (0.05, 0.01, 30, 1e4) at T = 3650 (-0.49056356918...)
    for p in [(0.5, 1e-4, 20.0, 1e-3), (0.91, 4.5e-5, 34.0, 1e-3), (0.05, 0.01, 30.0, 1e4)]:
        np.testing.assert_allclose(f(np.array(p)), pnbd.loglik_terms(*p, x, t_x, T), rtol=1e-8, atol=1e-8,
                                   err_msg=str(p))
    one = pytensor.function([theta], logp.pnbd_loglik(*(theta[j] for j in range(4)), [0.0], [0.0], [3650.0]))
    assert abs(one(np.array([0.05, 0.01, 30.0, 1e4]))[0] - (-0.4905635691834549)) < 4e-9
