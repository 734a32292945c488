"""The MBG/NBD (clvmodels/models/mbgnbd.py): CDNOW's published fit, its formulas against direct numerical
integration over (lambda, p), and the one difference from the BG/NBD (a customer without repeat purchases
may be gone)."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import betaln

import clvmodels as clv
from clvmodels.models import bgnbd as B


def test_cdnow_reproduces_the_published_fit(cal):
    # ../shared/reference/cdnow.md, "Modified BG/NBD": r, alpha, a, b = 0.5248, 6.1830, 0.8914, 1.6140;
    # LL -9582.13 (Batislam et al. 2007's model on the FHL 2005 CDNOW sample)
    model = clv.ModifiedBetaGeo().fit(cal)
    for name, want in zip(("r", "alpha", "a", "b"), (0.5248, 6.1830, 0.8914, 1.6140)):
        assert model.params_[name] == pytest.approx(want, rel=1e-3), name
    assert model.loglik_ == pytest.approx(-9582.13, abs=0.01)
    assert model.result_.model == "MBG/NBD" and model.short_name == "mbgnbd"


PARAMS = (0.52, 6.2, 0.89, 1.6)


def by_integration(r, alpha, a, b, x, t_x, T, t):
    """(likelihood, P(alive), E[Y(t) | history]) from the model's definition, by quadrature over
    lambda ~ Gamma(r, alpha) and the beta moments of p ~ Beta(a, b): alive after all x + 1 purchases (the
    first included) with probability E[(1-p)^(x+1)] and no purchase since t_x, or gone after the last one,
    E[p (1-p)^x]; an active customer's purchases in the next t are sum_n (1-p)^(n-1) P(Poisson(lambda t) >= n)."""
    g = stats.gamma(r, scale=1 / alpha).pdf
    moment = lambda i, j: np.exp(betaln(a + i, b + j) - betaln(a, b))  # E[p^i (1-p)^j]  # noqa: E731
    n = np.arange(1, 400)
    weights = moment(0, x + n)  # E[(1-p)^(x+1) (1-p)^(n-1)]

    def quad(h):
        return integrate.quad(h, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]

    alive = moment(0, x + 1) * quad(lambda lam: lam ** x * np.exp(-lam * T) * g(lam))
    gone = moment(1, x) * quad(lambda lam: lam ** x * np.exp(-lam * t_x) * g(lam))
    future = quad(lambda lam: lam ** x * np.exp(-lam * T) * g(lam) * np.dot(weights, stats.poisson.sf(n - 1, lam * t)))
    return alive + gone, alive / (alive + gone), future / (alive + gone)


@pytest.mark.parametrize("x, t_x, T, t", [(0, 0.0, 30.0, 39.0), (2, 30.43, 38.86, 39.0), (7, 20.0, 52.0, 10.0)])
def test_formulas_equal_the_integrals_over_lambda_and_p(x, t_x, T, t):
    lik, pa, expected = by_integration(*PARAMS, x, t_x, T, t)
    # the likelihood of the purchase times: eq. (6) with the first purchase's dropout chance
    assert np.exp(B.loglik_terms(*PARAMS, x, t_x, T, dropout_at_zero=True)) == pytest.approx(lik, rel=1e-7)
    assert float(B.p_alive(*PARAMS, x, t_x, T, dropout_at_zero=True)) == pytest.approx(pa, rel=1e-7)
    got = B.conditional_expected_purchases(*PARAMS, x, t_x, T, t, dropout_at_zero=True)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_a_customer_without_repeat_purchases_may_have_left():
    # BG/NBD: P(alive | x = 0) = 1 at any age; MBG/NBD: b / (a + b) at T = 0 (the dropout at zero alone), falling with age
    T = np.array([0.0, 10.0, 50.0, 200.0])
    pa = B.p_alive(*PARAMS, 0.0, 0.0, T, dropout_at_zero=True)
    assert pa[0] == pytest.approx(PARAMS[3] / (PARAMS[2] + PARAMS[3]), rel=1e-12)  # (only the dropout at zero)
    assert np.all(np.diff(pa) < 0) and np.all(B.p_alive(*PARAMS, 0.0, 0.0, T) == 1.0)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.poisson(2, 60).astype(float)
    T = rng.uniform(10, 60, 60)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 60), 0.0)
    w = rng.integers(1, 4, 60).astype(float)
    data = B.Prepared(x, t_x, T, w, dropout_at_zero=True)
    theta = np.array(PARAMS)
    ll, grad = B.loglik_and_grad(theta, None, None, None, None, data)
    assert ll == pytest.approx(np.dot(w, B.loglik_terms(*theta, x, t_x, T, dropout_at_zero=True)), rel=1e-12)
    for j in range(4):
        step = np.zeros(4)
        step[j] = 1e-6 * theta[j]
        up = B.loglik_and_grad(theta + step, None, None, None, None, data)[0]
        down = B.loglik_and_grad(theta - step, None, None, None, None, data)[0]
        assert grad[j] == pytest.approx((up - down) / (2 * step[j]), rel=1e-6)


def test_new_customer_distribution_sums_to_one_and_has_the_expected_mean():
    t = 39.0
    pmf = B.pmf_new(*PARAMS, t, 400, dropout_at_zero=True)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    mean = B.expected_purchases_new(*PARAMS, t, dropout_at_zero=True)
    assert np.dot(np.arange(401), pmf) == pytest.approx(float(mean), rel=1e-8)
    # and E[X(t)] is the conditional expectation of a customer seen at T = 0 with no purchase yet
    assert float(mean) == pytest.approx(
        float(B.conditional_expected_purchases(*PARAMS, 0.0, 0.0, 0.0, t, dropout_at_zero=True)), rel=1e-12)


def test_conditional_distribution_has_the_conditional_mean(cal):
    model = clv.ModifiedBetaGeo().fit(cal)
    rows = cal.iloc[:40]
    probs = model.purchase_probabilities(rows, 39, n_max=300)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(probs.to_numpy() @ np.arange(301), model.expected_purchases(rows, 39), rtol=1e-8)
