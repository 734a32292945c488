"""Running NUTS on a PyMC model with nutpie, without paying for compilation where it dominates.

``nutpie.compile_pymc_model`` compiles the log-density into a C callback with numba on every call (about
7 s, not cached on disk), after which all chains sample in parallel. On data the size of CDNOW sampling
itself takes about a second, so most of the time went to compilation. For such models this module hands
nutpie the log-density and gradient compiled by PyTensor's C backend instead, whose modules PyTensor
caches on disk between processes (its numba backend recompiles the whole function in every process); nutpie
then calls it from Python, so the chains share one core. Which of the two is used follows from the measured
cost of one gradient (:func:`sample_nutpie`).
"""

from __future__ import annotations

import os

import numpy as np

from .blas import link_blas

__all__ = ["sample_nutpie"]

#: Seconds ``nutpie.compile_pymc_model`` takes to build its callback (measured: 7-8 s on 2 cores).
COMPILE_S = 7.0
#: Gradient evaluations per NUTS iteration assumed when the caller gives none (5-6 on pooled CDNOW,
#: 15-50 for hierarchical models).
STEPS_PER_DRAW = 10
#: Cost of one log-density and gradient through PyTensor's C backend: a fixed cost per call plus a cost
#: per compressed data row (measured: 85 us for CDNOW's 1,016 rows, 21-23 ms for 534,889 rows).
CALL_S, ROW_S = 45e-6, 40e-9


def _functions(model):
    """(log-density and gradient, expansion to named variables, names, start): compiled PyTensor functions
    of one flat vector of the unconstrained free variables."""
    import pytensor
    import pytensor.tensor as pt
    from pymc.pytensorf import join_nonshared_inputs

    point = model.initial_point()
    values = model.value_vars
    logp = model.logp()
    grads = [g.flatten() for g in pt.grad(logp, values)]
    (logp_j, *grads_j), flat = join_nonshared_inputs(point, [logp, *grads], values)
    grad = pt.concatenate(grads_j) if len(grads_j) > 1 else grads_j[0]
    logp_fn = pytensor.function([flat], [logp_j, grad], mode="FAST_RUN", trust_input=True)
    variables = list(model.free_RVs) + list(model.deterministics)
    names = [v.name for v in variables]
    outputs, flat2 = join_nonshared_inputs(point, model.replace_rvs_by_values(variables), values)
    expand_fn = pytensor.function([flat2], outputs, mode="FAST_RUN", trust_input=True)
    start = np.concatenate([np.asarray(point[v.name], dtype=np.float64).ravel() for v in values])
    return logp_fn, expand_fn, names, start


def _pyfunc_model(model, logp_fn, expand_fn, names, start):
    from nutpie.compiled_pyfunc import from_pyfunc

    shapes = [tuple(np.shape(v)) for v in expand_fn(start)]
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in names if name in model.named_vars_to_dims}
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}

    # a compiled PyTensor function keeps its intermediate results in its own storage: one copy per chain
    def make_logp_fn():
        fn = logp_fn.copy()

        def logp(x, **_):
            value, grad = fn(x)
            return float(value), np.asarray(grad, dtype=np.float64)
        return logp

    def make_expand_fn(seed1, seed2, chain):
        fn = expand_fn.copy()

        def expand(x, **_):
            return {n: np.array(v, dtype=np.float64).reshape(s) for n, v, s in zip(names, fn(x), shapes)}
        return expand

    return from_pyfunc(len(start), make_logp_fn, make_expand_fn, [np.dtype("float64")] * len(names), shapes, names,
                       coords=coords, dims=dims, make_initial_point_fn=lambda seed: _jittered(start, seed))


def _jittered(start: np.ndarray, seed: int) -> np.ndarray:
    """The start plus U(-1, 1) noise in the unconstrained space, as ``nutpie.compile_pymc_model`` does by
    default (nutpie cannot start where the gradient vanishes, and chains should not all start alike)."""
    return start + np.random.default_rng(seed).uniform(-1.0, 1.0, size=start.size)


def sample_nutpie(model, *, draws: int, tune: int, chains: int, seed: int | None, target_accept: float,
                  rows: int, backend: str = "auto", steps_per_draw: float = STEPS_PER_DRAW, low_rank: bool = False):
    """Sample ``model`` with nutpie; return ArviZ InferenceData (posterior of free and deterministic
    variables, sample statistics; ``posterior.attrs["nutpie_backend"]`` says which way it ran).

    If running the chains in turn on one core would cost less extra time than compiling nutpie's parallel
    callback (``chains x (draws + tune) x steps_per_draw`` gradients of ``CALL_S + rows x ROW_S`` seconds,
    of which all but a ``1/cores`` share would otherwise run in parallel, against ``COMPILE_S``), nutpie
    samples from PyTensor's C function (compiled modules cached on disk); otherwise from
    ``nutpie.compile_pymc_model``. The choice depends on the data size and settings only, so a seed
    gives the same draws every time on a machine. ``backend="pyfunc"`` or ``"compiled"`` makes it.
    ``low_rank=True`` adapts a mass matrix with low-rank corrections (nutpie's
    ``low_rank_modified_mass_matrix``), which follows correlations between parameters.
    """
    import nutpie

    link_blas()
    if backend not in ("auto", "pyfunc", "compiled"):
        raise ValueError(f"backend must be 'auto', 'pyfunc' or 'compiled', got {backend!r}")
    options = {"draws": draws, "tune": tune, "chains": chains, "seed": seed, "progress_bar": False,
               "target_accept": target_accept}
    if low_rank:
        options["low_rank_modified_mass_matrix"] = True
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(1, min(chains, usable))
    extra = chains * (draws + tune) * steps_per_draw * (CALL_S + rows * ROW_S) * (1 - 1 / cores)
    if backend == "pyfunc" or (backend == "auto" and extra < COMPILE_S):
        idata = nutpie.sample(_pyfunc_model(model, *_functions(model)), cores=1, **options)
        idata.posterior.attrs["nutpie_backend"] = "pyfunc"
        return idata
    idata = nutpie.sample(nutpie.compile_pymc_model(model), **options)
    idata.posterior.attrs["nutpie_backend"] = "compiled"
    return idata
