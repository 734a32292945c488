"""nutpie from PyTensor's C functions (no compilation) and from its compiled callback: same log-density,
same posterior, same InferenceData layout; the choice between them."""

import numpy as np
import pytest

pm = pytest.importorskip("pymc")
pytest.importorskip("nutpie")

from clvmodels.bayes import sampling  # noqa: E402

Y = np.array([[1.3, 0.2, 2.1, 1.7, 0.9], [-0.4, 0.3, -1.1, 0.0, 0.6]])


def normal_model():
    """Two groups of normal observations with known sd 1, means ~ Normal(0, 10), plus a positive scale
    (log-transformed) and a deterministic, so that transforms, dims and deterministics all appear."""
    with pm.Model(coords={"group": ["g0", "g1"]}) as model:
        mu = pm.Normal("mu", 0.0, 10.0, dims="group")
        tau = pm.HalfNormal("tau", 1.0)
        pm.Deterministic("gap", mu[0] - mu[1])
        pm.Normal("y", mu[:, None], 1.0, observed=Y)
        pm.Potential("tau_free", 0.0 * tau)
    return model


def test_log_density_and_gradient_equal_pymc():
    model = normal_model()
    logp_fn, expand_fn, names, start = sampling._functions(model)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = start + rng.normal(size=start.size)
        point = {"mu": x[:2], "tau_log__": x[2]}
        value, grad = logp_fn(x)
        np.testing.assert_allclose(value, logp(point), rtol=1e-12)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-10)
    assert names == ["mu", "tau", "gap"]
    mu, tau, gap = expand_fn(start + 0.5)
    np.testing.assert_allclose(tau, np.exp(start[2] + 0.5))
    np.testing.assert_allclose(gap, mu[0] - mu[1])


@pytest.mark.slow  # samples 2 chains x 1,000 draws per backend
@pytest.mark.parametrize("backend", ["pyfunc", "compiled"])
def test_both_ways_sample_the_known_posterior(backend):
    idata = sampling.sample_nutpie(normal_model(), draws=1000, tune=500, chains=2, seed=3, target_accept=0.8,
                                   rows=Y.size, backend=backend)
    post = idata.posterior
    assert post.attrs["nutpie_backend"] == backend
    assert set(post.data_vars) >= {"mu", "tau", "gap"}
    assert post["mu"].dims == ("chain", "draw", "group") and list(post["group"].values) == ["g0", "g1"]
    assert "diverging" in idata.sample_stats
    # conjugate normal: posterior mean n ybar / (n + 1/100), sd 1 / sqrt(n + 1/100)
    n = Y.shape[1]
    exact_mean, exact_sd = n * Y.mean(axis=1) / (n + 0.01), 1 / np.sqrt(n + 0.01)
    draws = post["mu"].to_numpy().reshape(-1, 2)
    mcse = exact_sd / np.sqrt(draws.shape[0] / 4)  # (effective sample size at least a quarter of the draws)
    assert np.all(np.abs(draws.mean(axis=0) - exact_mean) < 4 * mcse)
    np.testing.assert_allclose(draws.std(axis=0), exact_sd, rtol=0.1)
    np.testing.assert_allclose(post["gap"].to_numpy(), post["mu"].sel(group="g0") - post["mu"].sel(group="g1"))


@pytest.mark.slow  # samples
def test_auto_runs_small_models_without_compiling_and_refuses_unknown_backends(monkeypatch):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled although the model is small")

    monkeypatch.setattr("nutpie.compile_pymc_model", no_compiling)
    idata = sampling.sample_nutpie(normal_model(), draws=100, tune=100, chains=2, seed=1, target_accept=0.8,
                                   rows=Y.size)
    assert idata.posterior.attrs["nutpie_backend"] == "pyfunc"
    # the same seed, the same draws
    again = sampling.sample_nutpie(normal_model(), draws=100, tune=100, chains=2, seed=1, target_accept=0.8,
                                   rows=Y.size)
    np.testing.assert_array_equal(again.posterior["mu"].to_numpy(), idata.posterior["mu"].to_numpy())
    with pytest.raises(ValueError, match="backend"):
        sampling.sample_nutpie(normal_model(), draws=10, tune=10, chains=1, seed=1, target_accept=0.8, rows=Y.size,
                               backend="jax")


def test_large_data_compiles_for_parallel_chains(monkeypatch):
    def compiled(*args, **kwargs):
        raise RuntimeError("compiling")

    monkeypatch.setattr("nutpie.compile_pymc_model", compiled)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    with pytest.raises(RuntimeError, match="compiling"):  # 500,000 rows: ~20 ms a gradient, two cores
        sampling.sample_nutpie(normal_model(), draws=500, tune=500, chains=2, seed=1, target_accept=0.8, rows=500_000)
