"""Hierarchical BG/NBD and Gamma-Gamma on 20,000 customers in 5 segments at the default settings
(issue 17, target 4: under 60 s each, no divergences).

Simulates ``--customers`` customers in 5 segments of unequal sizes (purchase rates and spend differing
between segments; a transaction log summarised in weeks at daily grain), then fits
``BayesBetaGeo(segment=...)`` and ``BayesGammaGamma(segment=...)`` with the defaults (4 chains x 1,000
draws + 1,000 tuning steps, nutpie), each in its own process: wall time of the fit (compilation
included), the process's own peak memory, divergences, R-hat, bulk ESS and gradients per draw.

Usage::

    python benchmarks/bench_bayes_segments.py [--customers 2e4] [--repeat 1] [--only gamma_gamma]
        [--baseline CHECKOUT]

``--baseline CHECKOUT`` fits with the clvmodels of another checkout as well (``git worktree add``), in the
same run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, check_source, describe_source, run_worker, versions  # noqa: E402

FIT = r"""
import json, sys, time, warnings
import numpy as np
import clvmodels as clv

n, which = int(float(sys.argv[1])), sys.argv[2]
rng = np.random.default_rng(7)
shares = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
segments = {f"s{k}": (float(shares[k]), {"r": float(0.25 * 1.3 ** k), "alpha": 4.0, "a": 0.8, "b": 2.5 + 0.5 * k,
                                          "p": 6.0, "q": 3.8, "gamma": float(15.0 * 1.2 ** k)}) for k in range(5)}
sim = clv.simulate(n, rng=rng, acquisition="12W", duration="78W", time_unit="W", segments=segments)
log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
rfm = clv.rfm_summary(log, time_unit="W")
rfm["segment"] = sim.customers.loc[rfm.index, "segment"]
cls = {"bgnbd": clv.BayesBetaGeo, "gamma_gamma": clv.BayesGammaGamma}[which]
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = cls(segment="segment", random_seed=1).fit(rfm)
wall = time.perf_counter() - t0
diag = model.diagnostics()
print(json.dumps({"customers": len(rfm), "repeat_buyers": int((rfm["frequency"] > 0).sum()), "wall_s": wall,
                  "peak_mib": PEAK, "max_rhat": float(diag["r_hat"].max()), "min_ess": float(diag["ess_bulk"].min()),
                  "divergences": model.divergences_, "steps": float(model.idata_.sample_stats["n_steps"].mean()),
                  "backend": model.idata_.posterior.attrs.get("nutpie_backend"),
                  "centred": int(model.centred_.to_numpy().sum()), "parameters": int(model.centred_.size),
                  "warnings": [str(w.message)[:120] for w in caught], "source": clv.__file__}))
""".replace("PEAK", PEAK_MIB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=float, default=2e4)
    parser.add_argument("--repeat", type=int, default=1, help="fits of each model (a fresh process each)")
    parser.add_argument("--only", choices=["bgnbd", "gamma_gamma"], help="fit one of the two models")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier clvmodels to fit with as well")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    import clvmodels
    import nutpie
    import pymc

    print(f"# bench_bayes_segments  {versions(clvmodels, pymc, nutpie)}, {os.cpu_count()} cores")
    if baseline:
        print(f"# baseline: {baseline} at {describe_source(baseline)}")
    sources = {"clvmodels": None, **({"baseline": baseline} if baseline else {})}
    for which in [args.only] if args.only else ["bgnbd", "gamma_gamma"]:
        for _, (tool, source) in ((k, t) for k in range(args.repeat) for t in sources.items()):
            r = run_worker(FIT, args.customers, which, source=source)
            if source is not None and not r["source"].startswith(str(source)):
                raise SystemExit(f"the baseline run imported {r['source']}, not the checkout {source}")
            print(f"{which} ({tool}): {r['customers']:,} customers ({r['repeat_buyers']:,} repeat buyers), 5 segments, "
                  f"4 chains x 1,000 draws: {r['wall_s']:.1f} s ({r['backend']}), peak {r['peak_mib']:,.0f} MiB; "
                  f"{r['divergences']} divergences, max R-hat {r['max_rhat']:.4f}, min bulk ESS {r['min_ess']:.0f}, "
                  f"{r['steps']:.1f} gradients per draw, {r['centred']} of {r['parameters']} segment parameters "
                  f"centred; warnings: {r['warnings'] or 'none'}", flush=True)


if __name__ == "__main__":
    main()
