"""Fitting and scoring the purchase-model family on simulated Pareto/NBD customers: clvmodels against lifetimes.

Simulated summaries of 100k and 1M customers (Pareto/NBD truth r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67
per week, the CDNOW estimates; ages uniform over 0-156 weeks, every row distinct), with litt (the sum of the
logs of the inter-purchase times) for the BG/CNBD-k.

Every measurement runs in a fresh process (peak memory is its own) and is the best of ``--repeat`` runs.
Fitting: clvmodels' ``ParetoNBD``, ``ModifiedBetaGeo`` (MBG/NBD), ``BetaGeoCNBD(k=2)`` and ``BetaGeo``
against lifetimes' ``ParetoNBDFitter``, ``ModifiedBetaGeoFitter`` and ``BetaGeoFitter`` (default options) on
the same data in the same run; lifetimes only up to ``--lifetimes-max`` customers (100k: its Pareto/NBD takes
minutes there and would take far longer at 1M). The log-likelihoods are compared on clvmodels' own function:
at our optimum against at lifetimes' parameters (relative difference; positive: ours is higher). Scoring:
P(alive) and expected purchases at 1, 2 and 3 years, timed after each clvmodels fit.

Usage::

    python benchmarks/bench_family.py                      # 100k and 1M customers, best of 2
    python benchmarks/bench_family.py --customers 1e5 --repeat 1
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, run_worker, versions  # noqa: E402

DATA = HERE / "_data"
TRUTH = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
HORIZONS = [365.25 * k / 7 for k in (1, 2, 3)]   # 1, 2 and 3 years in weeks

# model key: (clvmodels class, its module, options, lifetimes fitter or None)
MODELS = {
    "Pareto/NBD": ("ParetoNBD", "pnbd", {}, "ParetoNBDFitter"),
    "MBG/NBD": ("ModifiedBetaGeo", "mbgnbd", {}, "ModifiedBetaGeoFitter"),
    "BG/CNBD-2": ("BetaGeoCNBD", "cnbd", {"k": 2}, None),
    "BG/NBD": ("BetaGeo", "bgnbd", {}, "BetaGeoFitter"),
}

WORKER = r"""
import importlib, json, resource, sys, time
import numpy as np, pandas as pd
tool, path, cls, module, options, horizons = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), json.loads(sys.argv[6])
with np.load(path) as z:
    df = pd.DataFrame({k: z[k] for k in ("frequency", "recency", "T", "litt")})
if tool == "clvmodels":
    factory = getattr(importlib.import_module("clvmodels.models." + module), cls)
else:
    import lifetimes
    factory = getattr(lifetimes, cls)
t0 = time.perf_counter()   # (the imports above are not timed)
if tool == "clvmodels":
    model = factory(**options).fit(df, time_unit="W")
    t1 = time.perf_counter()
    scores = [model.p_alive(df).to_numpy()] + [model.expected_purchases(df, h).to_numpy() for h in horizons]
    t2 = time.perf_counter()
    params, loglik = dict(model.params_), float(model.loglik_)
    nonfinite = int(sum(np.count_nonzero(~np.isfinite(s)) for s in scores))
else:
    model = factory().fit(df["frequency"], df["recency"], df["T"])
    t1 = t2 = time.perf_counter()
    params = {k: float(v) for k, v in model.params_.items()}
    loglik, nonfinite = None, 0   # (its own figure leaves out constants: compared on ours below)
print(json.dumps({"fit_s": t1 - t0, "score_s": t2 - t1, "peak_mib": PEAK, "params": params, "loglik": loglik,
                  "nonfinite": nonfinite}))
""".replace("PEAK", PEAK_MIB)


def simulate(n: int, seed: int) -> dict[str, np.ndarray]:
    """Pareto/NBD customers with ages uniform over 0-156 weeks (module docstring), from clvmodels' simulator
    (:func:`clvmodels.data.datasets.simulate_summary`, which gives litt too)."""
    from clvmodels.data.datasets import SPEND_PARAMS, simulate_summary

    rng = np.random.default_rng(seed)
    summary = simulate_summary(n, {**TRUTH, **SPEND_PARAMS}, rng=rng, T=rng.uniform(0.0, 156.0, n), model="pnbd")
    return {c: summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T", "litt")}


def data_file(n: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"family_pnbd_sim_{n}.npz"
    if not path.exists():
        np.savez(path, **simulate(n, seed=21))
    return path


def ours_at(model: str, params: dict, path: Path) -> float:
    """clvmodels' log-likelihood of the data at ``params`` (the function its fit maximises)."""
    from clvmodels.models import bgnbd, pnbd

    with np.load(path) as z:
        x, t_x, T = z["frequency"], z["recency"], z["T"]
    if model == "Pareto/NBD":
        return float(np.sum(pnbd.loglik_terms(*(params[k] for k in pnbd.PARAMS), x, t_x, T)))
    return float(np.sum(bgnbd.loglik_terms(*(params[k] for k in bgnbd.PARAMS), x, t_x, T,
                                           dropout_at_zero=model == "MBG/NBD")))


def best_of(runs: list[dict]) -> dict:
    best = dict(min(runs, key=lambda r: r["fit_s"]))
    best["score_s"] = min(r["score_s"] for r in runs)
    best["all_fit_s"] = [r["fit_s"] for r in runs]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="1e5,1e6", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest is kept")
    parser.add_argument("--lifetimes-max", default="1e5", help="largest size at which lifetimes is run")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    args = parser.parse_args()
    import clvmodels
    import lifetimes
    import scipy

    sizes = [int(float(v)) for v in args.customers.split(",")]
    lifetimes_max = int(float(args.lifetimes_max))
    models = [m.strip() for m in args.models.split(",")]
    print(f"# bench_family  {versions(clvmodels, lifetimes, scipy, np)}, {os.cpu_count()} cores, best of {args.repeat}")
    print(f"# command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# simulated Pareto/NBD customers (truth {TRUTH} per week, T ~ U(0, 156)); lifetimes only up to "
          f"{lifetimes_max:,} customers (too slow beyond: not run)")
    print("| customers | model | tool | fit s (each run) | log-likelihood | peak MiB | score s | non-finite scores |")
    print("|---|---|---|---|---|---|---|---|")
    results: dict = {}
    skipped = []
    for n in sizes:
        path = data_file(n)
        for model in models:
            cls, module, options, fitter = MODELS[model]
            try:
                getattr(importlib.import_module(f"clvmodels.models.{module}"), cls)
            except (ImportError, AttributeError):
                skipped.append(f"{model}: clvmodels.models.{module}.{cls} is not in this checkout")
                continue
            tools = [("clvmodels", cls, module, options)]
            if fitter is not None and n <= lifetimes_max:
                tools.append(("lifetimes", fitter, "", {}))
            for tool, name, mod, opts in tools:
                runs = [run_worker(WORKER, tool, path, name, mod, json_arg(opts), json_arg(HORIZONS))
                        for _ in range(args.repeat)]
                best = results[n, model, tool] = best_of(runs)
                each = ", ".join(f"{v:.2f}" for v in best["all_fit_s"])
                score = f"{best['score_s']:.2f}" if tool == "clvmodels" else "-"
                loglik = f"{best['loglik']:.4f}" if best["loglik"] is not None else "see below"
                nonfinite = best["nonfinite"] if tool == "clvmodels" else "-"
                print(f"| {n:,} | {model} | {tool} | {best['fit_s']:.2f} ({each}) | {loglik} | "
                      f"{best['peak_mib']:.0f} | {score} | {nonfinite} |", flush=True)
    print()
    print("Fit against lifetimes, the log-likelihood on clvmodels' function (rel diff = (ours at our optimum - "
          "ours at lifetimes' parameters) / |ours at our optimum|):")
    print()
    print("| customers | model | fit speed-up | ll at our optimum | ll at lifetimes' parameters | rel diff | "
          "max param rel diff |")
    print("|---|---|---|---|---|---|---|")
    for (n, model, tool), theirs in results.items():
        if tool != "lifetimes":
            continue
        ours = results[n, model, "clvmodels"]
        path = data_file(n)
        at_ours, at_theirs = ours_at(model, ours["params"], path), ours_at(model, theirs["params"], path)
        rel = (at_ours - at_theirs) / abs(at_ours)
        dparam = max(abs(ours["params"][k] - theirs["params"][k]) / abs(theirs["params"][k]) for k in ours["params"])
        print(f"| {n:,} | {model} | {theirs['fit_s'] / ours['fit_s']:.1f}x | {at_ours:.6f} | {at_theirs:.6f} | "
              f"{rel:.1e} | {dparam:.1e} |")
    print()
    for n in sizes:
        if n > lifetimes_max:
            print(f"lifetimes not run at {n:,} customers (too slow there: see its Pareto/NBD fit time at "
                  f"{lifetimes_max:,}).")
    for note in skipped:
        print(f"skipped {note}")
    top = max(sizes)
    print()
    print(f"Scoring {top:,} customers (P(alive) and expected purchases at 1, 2 and 3 years), clvmodels:")
    print()
    print("| model | score s | fit s | peak MiB (fit + score) |")
    print("|---|---|---|---|")
    for model in models:
        res = results.get((top, model, "clvmodels"))
        if res:
            print(f"| {model} | {res['score_s']:.2f} | {res['fit_s']:.2f} | {res['peak_mib']:.0f} |")


def json_arg(value) -> str:
    return json.dumps(value)


if __name__ == "__main__":
    main()
