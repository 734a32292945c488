"""Bayesian BG/NBD on CDNOW: clvmodels (nutpie) against PyMC-Marketing's BetaGeoModel, in one run.

Both sample 4 chains x 1000 draws after 1000 tuning steps on the 2,357-customer CDNOW calibration summary.
Each runs in its own process; the clock includes model building and compilation. Reported: wall time,
minimum bulk ESS over r, alpha, a, b, their ratio (ESS per second), the largest R-hat, and the posterior
means (which should agree). PyTensor's compilation cache on disk is warm for both after a first run.

Usage::

    python benchmarks/bench_bayes.py [--repeat 2] [--baseline CHECKOUT]

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

WORKER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
import arviz as az
import clvmodels as clv
tool, seed = sys.argv[1], int(sys.argv[2])
cal = clv.calibration_holdout(clv.load_cdnow(), "1997-09-30", "1998-06-30", time_unit="W")
t0 = time.perf_counter()
if tool == "clvmodels":
    model = clv.BayesBetaGeo(draws=1000, tune=1000, chains=4, random_seed=seed).fit(cal)
    idata = model.idata_
else:
    from pymc_marketing.clv import BetaGeoModel
    data = cal[["frequency", "recency", "T"]].reset_index()
    model = BetaGeoModel(data=data)
    idata = model.fit(method="mcmc", chains=4, draws=1000, tune=1000, random_seed=seed, progressbar=False)
wall = time.perf_counter() - t0
names = ["r", "alpha", "a", "b"]
ess = az.ess(idata, var_names=names, method="bulk")
rhat = az.rhat(idata, var_names=names)
out = {"wall_s": wall, "min_ess": float(min(float(ess[n]) for n in names)),
       "max_rhat": float(max(float(rhat[n]) for n in names)),
       "means": {n: float(idata.posterior[n].mean()) for n in names}, "peak_mib": PEAK, "source": clv.__file__}
print(json.dumps(out))
""".replace("PEAK", PEAK_MIB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per tool; the fastest is kept")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier clvmodels to measure as well")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    import clvmodels
    import nutpie
    import pymc
    import pymc_marketing

    print(f"# bench_bayes  {versions(clvmodels, pymc_marketing, pymc, nutpie)}, {os.cpu_count()} cores, "
          f"best of {args.repeat}")
    if baseline:
        print(f"# baseline: {baseline} at {describe_source(baseline)}")
    tools = {"clvmodels": None, **({"baseline": baseline} if baseline else {}), "pymc-marketing": None}
    res = {}
    for tool, source in tools.items():
        worker_tool = "pymc-marketing" if tool == "pymc-marketing" else "clvmodels"
        runs = [run_worker(WORKER, worker_tool, 100 + k, source=source) for k in range(args.repeat)]
        if source is not None and not runs[0]["source"].startswith(str(source)):
            raise SystemExit(f"the baseline run imported {runs[0]['source']}, not the checkout {source}")
        res[tool] = min(runs, key=lambda r: r["wall_s"])
    print("| tool | wall s | min bulk ESS | ESS / s | max R-hat | r | alpha | a | b | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tool, r in res.items():
        m = r["means"]
        print(f"| {tool} | {r['wall_s']:.1f} | {r['min_ess']:.0f} | {r['min_ess'] / r['wall_s']:.0f} | "
              f"{r['max_rhat']:.3f} | {m['r']:.4f} | {m['alpha']:.3f} | {m['a']:.3f} | {m['b']:.3f} | "
              f"{r['peak_mib']:.0f} |")
    ours, theirs = res["clvmodels"], res["pymc-marketing"]
    ratio = (ours["min_ess"] / ours["wall_s"]) / (theirs["min_ess"] / theirs["wall_s"])
    print(f"\nESS per second, clvmodels / PyMC-Marketing: {ratio:.1f}x")
    if baseline:
        before = res["baseline"]
        was = (before["min_ess"] / before["wall_s"]) / (theirs["min_ess"] / theirs["wall_s"])
        print(f"ESS per second, baseline / PyMC-Marketing: {was:.1f}x")


if __name__ == "__main__":
    main()
