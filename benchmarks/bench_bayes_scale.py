"""Hierarchical BG/NBD at scale: fitting 1M customers in 10 segments, and scoring 1M customers x 4,000
posterior draws (issue 5, section 5 and the memory bound of section 2).

Two measurements, each in its own process (wall time and peak resident memory):

- ``fit``: simulate ``--customers`` customers in 10 segments of geometric sizes (a transaction log,
  summarised in weeks at daily grain), fit ``BayesBetaGeo(segment=...)`` with the given chains, draws
  and tuning steps; report compressed rows, wall time of the fit, peak memory and the diagnostics.
- ``score``: fit the same model on ``--fit-customers`` (20,000) customers with 4 chains x 1,000 draws
  (4,000 draws), then score ``--score-customers`` customers: posterior mean and 90% interval of expected
  purchases over one year, and of P(alive), from all 4,000 draws. ``--baseline CHECKOUT`` scores with
  the clvmodels of another checkout as well (its own fit, same seed), in the same run.

Usage::

    python benchmarks/bench_bayes_scale.py --customers 1e6 --score-customers 1e6 [--chains 4 --draws 1000 --tune 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, check_source, describe_source, run_worker, versions  # noqa: E402

SETUP = r"""
import json, resource, sys, time, warnings
import numpy as np
import clvmodels as clv
from clvmodels.models.rows import compress

def population(n, seed):
    sizes = 0.6 ** np.arange(10)
    rng = np.random.default_rng(seed)
    segments = {f"s{k}": (sizes[k] / sizes.sum(), {"r": float(np.exp(np.log(0.4) + 0.35 * rng.standard_normal())),
                                                   "alpha": float(np.exp(np.log(6.0) + 0.3 * rng.standard_normal())),
                                                   "a": 0.7, "b": 3.0}) for k in range(10)}
    sim = clv.simulate(n, rng=rng, acquisition="26W", duration="78W", time_unit="W", segments=segments)
    log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
    rfm = clv.rfm_summary(log, time_unit="W")
    rfm["segment"] = sim.customers.loc[rfm.index, "segment"]
    return rfm
"""

FIT = SETUP + r"""
n, chains, draws, tune = int(float(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rfm = population(n, 1)
codes = rfm["segment"].factorize()[0].astype(float)
_, w = compress(rfm["frequency"].to_numpy(float), rfm["recency"].to_numpy(float), rfm["T"].to_numpy(float), codes)
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = clv.BayesBetaGeo(segment="segment", chains=chains, draws=draws, tune=tune, random_seed=1).fit(rfm)
wall = time.perf_counter() - t0
diag = model.diagnostics()
print(json.dumps({"customers": len(rfm), "rows": len(w), "smallest_segment": int(rfm["segment"].value_counts().min()),
                  "wall_s": wall, "peak_mib": PEAK, "max_rhat": float(diag["r_hat"].max()),
                  "min_ess": float(diag["ess_bulk"].min()), "divergences": model.divergences_,
                  "steps": float(model.idata_.sample_stats["n_steps"].mean()),
                  "centred": int(model.centred_.to_numpy().sum())}))
""".replace("PEAK", PEAK_MIB)

SCORE = SETUP + r"""
n, fit_n = int(float(sys.argv[1])), int(float(sys.argv[2]))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = clv.BayesBetaGeo(segment="segment", chains=4, draws=1000, tune=1000, random_seed=2).fit(population(fit_n, 1))
rfm = population(n, 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
e = model.expected_purchases(rfm, "1y", interval=0.9, max_draws=4000)
t1 = time.perf_counter()
pa = model.p_alive(rfm, interval=0.9, max_draws=4000)
t2 = time.perf_counter()
assert e.notna().all().all() and pa.notna().all().all()
print(json.dumps({"customers": len(rfm), "draws": int(model.idata_.posterior.sizes["chain"] * model.idata_.posterior.sizes["draw"]), "expected_s": t1 - t0,
                  "p_alive_s": t2 - t1, "peak_mib": PEAK, "peak_before_scoring_mib": base,
                  "source": clv.__file__}))
""".replace("PEAK", PEAK_MIB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=float, default=1e6, help="customers in the fit")
    parser.add_argument("--score-customers", type=float, default=1e6, help="customers scored")
    parser.add_argument("--fit-customers", type=float, default=2e4, help="customers in the fit scored from")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier clvmodels to score with as well")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--only", choices=["fit", "score"], help="run one of the two measurements")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    import clvmodels
    import nutpie
    import pymc

    print(f"# bench_bayes_scale  {versions(clvmodels, pymc, nutpie)}, {os.cpu_count()} cores")
    if baseline:
        print(f"# baseline: {baseline} at {describe_source(baseline)}")
    sources = {"clvmodels": None, **({"baseline": baseline} if baseline else {})}
    for tool, source in sources.items() if args.only in (None, "score") else ():
        r = run_worker(SCORE, args.score_customers, args.fit_customers, source=source)
        if source is not None and not r["source"].startswith(str(source)):
            raise SystemExit(f"the baseline run imported {r['source']}, not the checkout {source}")
        print(f"score ({tool}): {r['customers']:,} customers x {r['draws']:,} draws: expected purchases (1y, mean + 90% "
              f"interval) {r['expected_s']:.1f} s, P(alive) {r['p_alive_s']:.1f} s; peak memory "
              f"{r['peak_mib']:,.0f} MiB ({r['peak_before_scoring_mib']:,.0f} MiB before scoring)", flush=True)
    if args.only in (None, "fit"):
        r = run_worker(FIT, args.customers, args.chains, args.draws, args.tune)
        print(f"fit: {r['customers']:,} customers ({r['rows']:,} distinct rows; smallest segment "
              f"{r['smallest_segment']}), {args.chains} chains x {args.draws} draws + {args.tune} tuning: "
              f"{r['wall_s']:.0f} s, peak {r['peak_mib']:,.0f} MiB; max R-hat {r['max_rhat']:.3f}, "
              f"min bulk ESS {r['min_ess']:.0f}, {r['divergences']} divergences; {r['steps']:.1f} gradients per "
              f"draw; {r['centred']} of 40 segment parameters sampled centred")


if __name__ == "__main__":
    main()
