"""Bayesian Pareto/NBD on CDNOW: clvmodels (nutpie) against PyMC-Marketing's ParetoNBDModel, in one run.

All sample 4 chains x 1000 draws after 1000 tuning steps on the 2,357-customer CDNOW calibration summary
(the one of bench_bayes.py). Each runs in its own process; the clock includes model building and
compilation (clvmodels: its maximum-likelihood start too). Reported: wall time, minimum bulk ESS over r,
alpha, s, beta, their ratio (ESS per second), CPU time (the process's threads and child processes: a
check on a shared machine), the largest R-hat, divergences, gradient evaluations per kept draw (NUTS
leapfrog steps, the sample stats' ``n_steps``), where the wall time went (compilation and sampling,
timed by wrappers around the calls), and the posterior means next to the maximum-likelihood estimates
(``clvmodels.ParetoNBD``) and to clvmodels' draws reweighted to PyMC-Marketing's priors. PyMC-Marketing
runs twice: with ``pm.sample``'s own NUTS (``nuts_sampler="pymc"``, its default) and with
``nuts_sampler="nutpie"``. The 1-minute load average before and after each run is printed with it: the
machine may be shared. PyTensor's compilation cache on disk is warm for all after a first run;
nutpie's numba compilation is paid in every process.

``--costs`` also measures one log-density + gradient evaluation of each model at the maximum-likelihood
estimate, in fresh processes: clvmodels' ``pnbd_loglik`` alone on the compressed rows (PyTensor C and
NUMBA modes), and each sampler's whole model (PyTensor C, as PyMC's NUTS and clvmodels' one-core path
call it; nutpie's numba callback, as ``nutpie.compile_pymc_model`` builds it), with compile times, and
the total log-likelihood there from each (clvmodels' numpy and PyTensor versions, PyMC-Marketing's
``ParetoNBD``): the same function.

Usage::

    python benchmarks/bench_bayes_pnbd.py [--repeat 2] [--peer-repeat 1] [--pymc-cores 2] [--costs]
                                          [--tools clvmodels,pymc-marketing-nutpie,pymc-marketing]
                                          [--baseline CHECKOUT]

``--baseline`` also measures the clvmodels of another checkout (an earlier commit) in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, check_source, describe_source, run_worker, versions  # noqa: E402

COMMON = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import clvmodels as clv
cal = clv.calibration_holdout(clv.load_cdnow(), "1997-09-30", "1998-06-30", time_unit="W")
names = ["r", "alpha", "s", "beta"]
"""

WORKER = COMMON + r"""
import arviz as az
import nutpie
tool, seed = sys.argv[1], int(sys.argv[2])
cores = {"cores": int(sys.argv[3])} if len(sys.argv) > 3 and int(sys.argv[3]) else {}  # (PyMC's NUTS)
stages = {}


def timed(owner, attr, key):
    # a timer around owner.attr (looked up at call time by its callers): where the wall time goes
    fn = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages[key] = stages.get(key, 0.0) + time.perf_counter() - t
    setattr(owner, attr, wrapper)


timed(nutpie, "compile_pymc_model", "compile_s")
timed(nutpie, "sample", "sample_s")
if tool == "clvmodels":
    from clvmodels.bayes import sampling
    from clvmodels.models.pnbd import ParetoNBD
    timed(sampling, "_functions", "compile_s")  # (the one-core path: PyTensor's C function)
    timed(ParetoNBD, "fit", "mle_s")


def cpu():
    # CPU seconds of this process's threads and of its finished child processes (PyMC's chain workers)
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


c0, t0 = cpu(), time.perf_counter()
if tool == "clvmodels":
    model = clv.BayesParetoNBD(draws=1000, tune=1000, chains=4, random_seed=seed).fit(cal)
    idata = model.idata_
    backend = idata.posterior.attrs.get("nutpie_backend", "?")
else:
    from pymc_marketing.clv import ParetoNBDModel
    data = cal[["frequency", "recency", "T"]].reset_index()
    model = ParetoNBDModel(data=data)
    sampler = {**cores} if tool == "pymc-marketing" else {"nuts_sampler": "nutpie"}
    idata = model.fit(method="mcmc", chains=4, draws=1000, tune=1000, random_seed=seed, progressbar=False,
                      **sampler)
    backend = sampler.get("nuts_sampler", "pymc")
    if "sampling_time" in idata.posterior.attrs and "sample_s" not in stages:
        stages["sample_s"] = float(idata.posterior.attrs["sampling_time"])  # (PyMC's own clock)
wall, cpu_s = time.perf_counter() - t0, cpu() - c0
ess = az.ess(idata, var_names=names, method="bulk")
rhat = az.rhat(idata, var_names=names)
stats = idata.sample_stats
steps = stats["n_steps"] if "n_steps" in stats else stats["tree_size"]
warm = idata["warmup_sample_stats"] if "warmup_sample_stats" in idata.groups() else None
out = {"wall_s": wall, "cpu_s": cpu_s, "min_ess": float(min(float(ess[n]) for n in names)),
       "ess": {n: float(ess[n]) for n in names},
       "max_rhat": float(max(float(rhat[n]) for n in names)),
       "means": {n: float(idata.posterior[n].mean()) for n in names},
       "divergences": int(stats["diverging"].sum()), "steps_per_draw": float(steps.mean()),
       "tune_steps_per_draw": float(warm["n_steps"].mean()) if warm is not None and "n_steps" in warm else None,
       "stages": stages, "backend": backend, "peak_mib": PEAK, "source": clv.__file__}
if tool == "clvmodels":
    out["mle"] = {n: float(v) for n, v in clv.ParetoNBD().fit(cal).params_.items()}  # (after the clock)
    # The priors differ: clvmodels' log-parameters ~ Normal(0 or the log median age, 2); PyMC-Marketing's
    # r, s ~ Weibull(2, 1) and alpha, beta ~ Weibull(2, 10). The likelihood is the same, so our draws
    # reweighted by the ratio of the priors (importance sampling) estimate PyMC-Marketing's posterior means.
    from scipy import stats as st
    theta = {n: idata.posterior[n].to_numpy().ravel() for n in names}
    centre = {"r": 0.0, "alpha": np.log(np.median(cal["T"])), "s": 0.0, "beta": np.log(np.median(cal["T"]))}
    scale = {"r": 1.0, "alpha": 10.0, "s": 1.0, "beta": 10.0}
    logw = sum(st.weibull_min.logpdf(theta[n], 2.0, scale=scale[n]) + np.log(theta[n])
               - st.norm.logpdf(np.log(theta[n]), centre[n], 2.0) for n in names)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    out["means_peer_priors"] = {n: float(np.dot(w, theta[n])) for n in names}
    out["reweight_ess"] = float(1.0 / np.sum(w ** 2))
print(json.dumps(out))
""".replace("PEAK", PEAK_MIB)

COSTS = COMMON + r"""
import pytensor
import pytensor.tensor as pt
import nutpie
tool = sys.argv[1]
mle = clv.ParetoNBD().fit(cal).params_
out = {"source": clv.__file__}


def per_call(fn, *args, seconds=2.0):
    # median seconds per call over repeated batches (after one call to warm up)
    fn(*args)
    n, t = 1, 0.0
    while t < 0.05:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        t = time.perf_counter() - t0
        n *= 2
    n //= 2
    batches = max(3, int(seconds / t))
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def nutpie_call(model, point):
    # nutpie's own compiled callback (a numba C function of (dim, x, grad out, logp out, user data), which
    # its sampler calls), through ctypes: compile time and median seconds per gradient. (nutpie 0.16's
    # benchmark_logp fails: its Rust model has no such method.)
    import ctypes
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    compile_s = time.perf_counter() - t0
    cfunc = compiled.compiled_logp_func.ctypes
    x = np.ascontiguousarray(point, dtype=np.float64)
    grad, logp = np.empty_like(x), np.empty(1)
    ptr = ctypes.POINTER(ctypes.c_double)
    args = (len(x), x.ctypes.data_as(ptr), grad.ctypes.data_as(ptr), logp.ctypes.data_as(ptr),
            ctypes.c_void_p(compiled.user_data.ctypes.data))
    code = cfunc(*args)
    if code != 0:
        raise RuntimeError(f"nutpie's callback returned {code} at {x}")
    return compile_s, per_call(cfunc, *args)


def model_calls(model, point):
    # the whole model's log-density + gradient: PyTensor's C function (PyMC's NUTS), then nutpie's callback
    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True, mode="FAST_RUN")
    fn.set_extra_values({})
    c_compile = time.perf_counter() - t0
    res = {"model_c_compile_s": c_compile, "model_c_call_s": per_call(fn, point)}
    res["model_nutpie_compile_s"], res["model_nutpie_call_s"] = nutpie_call(model, point)
    res["n_dim"] = int(point.size)
    return res


class Captured(Exception):
    pass


if tool == "clvmodels":
    from clvmodels.bayes import sampling
    from clvmodels.bayes.logp import pnbd_loglik
    from clvmodels.models.rows import compress
    x, t_x, T = (cal[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    (ux, ut, uT), w = compress(x, t_x, T)
    from clvmodels.models.pnbd import loglik_terms
    out["loglik_at_mle"] = float(loglik_terms(*(mle[n] for n in names), x, t_x, T).sum())  # (numpy)
    out["rows"], out["gap_rows"] = int(len(w)), int((uT > ut).sum())
    theta = pt.dvector("theta")
    total = pt.sum(w * pnbd_loglik(theta[0], theta[1], theta[2], theta[3], ux, ut, uT))
    point = np.array([mle[n] for n in names])
    for mode in ("FAST_RUN", "NUMBA"):
        t0 = time.perf_counter()
        fn = pytensor.function([theta], [total, pt.grad(total, theta)], mode=mode)
        fn(point)
        key = "c" if mode == "FAST_RUN" else "numba"
        out[f"loglik_{key}_compile_s"] = time.perf_counter() - t0
        out[f"loglik_{key}_at_mle"] = float(fn(point)[0])
        out[f"loglik_{key}_call_s"] = per_call(fn, point)

    def capture(model, **kwargs):
        raise Captured(model)
    sampling.sample_nutpie = capture
    try:
        clv.BayesParetoNBD(random_seed=1).fit(cal)
    except Captured as exc:
        model = exc.args[0]
    logp_fn, expand_fn, _, start = sampling._functions(model)  # (start: the MLE in the sampling coordinates)
    out.update(model_calls(model, start))
else:
    import pymc as pm
    from pymc_marketing.clv import ParetoNBDModel

    def capture(*args, model=None, **kwargs):
        # inside ParetoNBDModel.fit: PyTensor's mode there includes its hyp2f1-gradient rewrite
        point = model.initial_point()
        for n in names:
            point[f"{n}_log__"] = np.log(mle[n])
        flat = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
        loglik = model.compile_logp(vars=model.observed_RVs, jacobian=False)(point)
        raise Captured({**model_calls(model, flat), "loglik_at_mle": float(loglik)})
    pm.sample = capture
    data = cal[["frequency", "recency", "T"]].reset_index()
    out["rows"] = len(data)
    try:
        ParetoNBDModel(data=data).fit(method="mcmc")
    except Captured as exc:
        out.update(exc.args[0])
print(json.dumps(out))
"""

#: table name -> worker tool (and --tools name)
TOOLS = {"clvmodels": "clvmodels", "pymc-marketing (nutpie)": "pymc-marketing-nutpie",
         "pymc-marketing": "pymc-marketing"}


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per tool; the fastest is kept")
    parser.add_argument("--peer-repeat", type=int, help="runs per PyMC-Marketing sampler (default: --repeat; "
                        "each of its runs took 25-45 minutes on 2 shared cores)")
    parser.add_argument("--pymc-cores", type=int, default=0, help="cores= for PyMC's NUTS (default: PyMC's own "
                        "choice, min(4, cpu_count // 2): 1 on a 2-core machine, chains in turn)")
    parser.add_argument("--costs", action="store_true", help="also time one log-density + gradient of each")
    parser.add_argument("--tools", default=",".join(TOOLS.values()), help="comma-separated, of "
                        f"{', '.join(TOOLS.values())} "
                        "(default: all); --costs measures clvmodels' and PyMC-Marketing's model either way")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier clvmodels to measure as well")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    import clvmodels
    import nutpie
    import pymc
    import pymc_marketing

    print(f"# bench_bayes_pnbd  {versions(clvmodels, pymc_marketing, pymc, nutpie)}, {os.cpu_count()} cores, "
          f"best of {args.repeat} (PyMC-Marketing: {args.peer_repeat or args.repeat}), PyMC NUTS cores="
          f"{args.pymc_cores or 'its default'}", flush=True)
    if baseline:
        print(f"# baseline: {baseline} at {describe_source(baseline)}")
    tools = {"clvmodels": None, **({"baseline": baseline} if baseline else {}),
             "pymc-marketing (nutpie)": None, "pymc-marketing": None}
    chosen = args.tools.split(",")
    if unknown := set(chosen) - set(TOOLS.values()):
        raise SystemExit(f"--tools: unknown {sorted(unknown)}; choose among {list(TOOLS.values())}")
    tools = {k: v for k, v in tools.items() if TOOLS.get(k, "clvmodels") in chosen}
    res = {}
    for tool, source in tools.items():
        worker_tool = TOOLS.get(tool, "clvmodels")  # (the baseline runs clvmodels' worker)
        runs = []
        repeat = args.peer_repeat if tool.startswith("pymc") and args.peer_repeat else args.repeat
        for k in range(repeat):
            before = load()
            run = run_worker(WORKER, worker_tool, 100 + k, args.pymc_cores, source=source)
            run["load"] = (before, load())
            runs.append(run)
            print(f"# {tool} seed {100 + k}: {run['wall_s']:.1f} s, min bulk ESS {run['min_ess']:.0f}, "
                  f"{run['min_ess'] / run['wall_s']:.1f} ESS/s, load {before:.2f} -> {load():.2f}; {run}", flush=True)
        if not runs:  # (--repeat 0: the costs only)
            continue
        if source is not None and not runs[0]["source"].startswith(str(source)):
            raise SystemExit(f"the baseline run imported {runs[0]['source']}, not the checkout {source}")
        res[tool] = min(runs, key=lambda r: r["wall_s"])
    if res:
        print("| tool | wall s | min bulk ESS | ESS / s | CPU s | ESS / CPU s | max R-hat | divergences | "
              "gradients per draw | compile s | sampling s | r | alpha | s | beta | peak MiB | load before-after |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for tool, r in res.items():
            m, st = r["means"], r["stages"]
            print(f"| {tool} | {r['wall_s']:.1f} | {r['min_ess']:.0f} | {r['min_ess'] / r['wall_s']:.1f} | "
                  f"{r['cpu_s']:.0f} | {r['min_ess'] / r['cpu_s']:.1f} | {r['max_rhat']:.3f} | {r['divergences']} | "
                  f"{r['steps_per_draw']:.1f} | "
                  f"{st.get('compile_s', float('nan')):.1f} | {st.get('sample_s', float('nan')):.1f} | "
                  f"{m['r']:.4f} | {m['alpha']:.3f} | {m['s']:.3f} | {m['beta']:.3f} | {r['peak_mib']:.0f} | "
                  f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    ours = res.get("clvmodels")
    if ours is not None:
        mle = ours["mle"]
        print(f"| maximum likelihood (clvmodels.ParetoNBD) | | | | | | | | | | | {mle['r']:.4f} | {mle['alpha']:.3f} | "
              f"{mle['s']:.3f} | {mle['beta']:.3f} | | |")
        if "means_peer_priors" in ours:
            m = ours["means_peer_priors"]
            print(f"| clvmodels' draws reweighted to PyMC-Marketing's priors | | | | | | | | | | | {m['r']:.4f} | "
                  f"{m['alpha']:.3f} | {m['s']:.3f} | {m['beta']:.3f} | | |")
            print(f"\n(reweighting: effective sample size {ours['reweight_ess']:.0f} of the 4,000 draws)")
        print(f"\nclvmodels: nutpie backend {ours['backend']}, MLE fit {ours['stages'].get('mle_s', 0):.1f} s, "
              f"warm-up gradients per step {ours['tune_steps_per_draw'] or float('nan'):.1f}")
    for peer in ("pymc-marketing", "pymc-marketing (nutpie)"):
        if ours is not None and peer in res:
            theirs = res[peer]
            ratio = (ours["min_ess"] / ours["wall_s"]) / (theirs["min_ess"] / theirs["wall_s"])
            per_cpu = (ours["min_ess"] / ours["cpu_s"]) / (theirs["min_ess"] / theirs["cpu_s"])
            print(f"ESS per second, clvmodels / {peer}: {ratio:.2f}x (per CPU second: {per_cpu:.2f}x)")
            if baseline:
                before = res["baseline"]
                was = (before["min_ess"] / before["wall_s"]) / (theirs["min_ess"] / theirs["wall_s"])
                print(f"ESS per second, baseline / {peer}: {was:.2f}x")
    if not args.costs:
        return
    print("\n# one log-density + gradient at the maximum-likelihood estimate (median seconds per call)")
    for tool in ("clvmodels", "pymc-marketing"):
        before = load()
        c = run_worker(COSTS, tool)
        print(f"# {tool}: load {before:.2f} -> {load():.2f} ({c['source']})")
        if tool == "clvmodels":
            print(f"clvmodels pnbd_loglik on {c['rows']} compressed rows ({c['gap_rows']} with the integral): "
                  f"C {c['loglik_c_call_s'] * 1e6:.0f} us (compile {c['loglik_c_compile_s']:.1f} s), "
                  f"NUMBA {c['loglik_numba_call_s'] * 1e6:.0f} us (compile {c['loglik_numba_compile_s']:.1f} s)")
        print(f"{tool} log-likelihood of all customers at clvmodels' MLE: {c['loglik_at_mle']:.6f}"
              + (f" (pnbd_loglik, C: {c['loglik_c_at_mle']:.6f})" if "loglik_c_at_mle" in c else ""))
        print(f"{tool} whole model ({c['rows']} rows, {c['n_dim']} unconstrained values): "
              f"PyTensor C {c['model_c_call_s'] * 1e6:.0f} us (compile {c['model_c_compile_s']:.1f} s), "
              f"nutpie callback {c['model_nutpie_call_s'] * 1e6:.0f} us (compile {c['model_nutpie_compile_s']:.1f} s)")


if __name__ == "__main__":
    main()
