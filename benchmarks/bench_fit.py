"""Fitting and scoring BG/NBD + Gamma-Gamma on 1M customers: clvmodels against lifetimes, in one run.

Two summaries of simulated customers (BG/NBD + Gamma-Gamma truth):

- ``daily``: a 3-year daily-grain log summarised by ``rfm_summary(time_unit="D")`` (ages and recencies are
  whole days, so many customers share a row);
- ``continuous``: ``simulate_summary`` with ages drawn uniformly over 0-156 weeks (every row distinct).

Every measurement runs in a fresh process (peak memory is its own) and is the best of ``--repeat`` runs.
Fitting: ``BetaGeo().fit`` + ``GammaGamma().fit`` against lifetimes' ``BetaGeoFitter().fit`` +
``GammaGammaFitter().fit`` (default options). Scoring: expected purchases at 1, 2 and 3 years, P(alive) and
expected spend, from the same fitted parameters. Parameters are compared to rel 1e-4.

Usage::

    python benchmarks/bench_fit.py                 # 1M customers
    python benchmarks/bench_fit.py --customers 1e5 --repeat 1
    git worktree add /tmp/clv-before REV && python benchmarks/bench_fit.py --baseline /tmp/clv-before

``--baseline`` also measures the clvmodels of another checkout (an earlier commit) in the same run, so a
change's before and after are compared on the same machine state.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, check_source, describe_source, run_worker, versions  # noqa: E402

DATA = HERE / "_data"
PARAMS_WEEKLY = {"r": 0.4, "alpha": 6.0, "a": 0.7, "b": 3.0, "p": 6.0, "q": 3.7, "gamma": 15.0}

WORKER = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
tool, path, unit = sys.argv[1:4]
with np.load(path) as z:  # plain arrays: reading costs no more memory than the data itself
    df = pd.DataFrame({k: z[k] for k in ("frequency", "recency", "T", "monetary_value")})
days = {"D": 1.0, "W": 7.0}[unit]
horizons = [365.25 * k / days for k in (1, 2, 3)]
t0 = time.perf_counter()
if tool == "clvmodels":
    import clvmodels as clv
    bg = clv.BetaGeo().fit(df, time_unit=unit)
    gg = clv.GammaGamma().fit(df)
    params = {**bg.params_, **gg.params_}
    source = clv.__file__
    t1 = time.perf_counter()
    scores = [bg.expected_purchases(df, h).to_numpy() for h in horizons]
    scores += [bg.p_alive(df).to_numpy(), gg.expected_spend(df).to_numpy()]
else:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    bg = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
    rep = df[df["frequency"] > 0]
    gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    source = None
    params = {**{k: float(v) for k, v in bg.params_.items()},
              **{{"v": "gamma"}.get(k, k): float(v) for k, v in gg.params_.items()}}
    t1 = time.perf_counter()
    scores = [np.asarray(bg.conditional_expected_number_of_purchases_up_to_time(h, df["frequency"], df["recency"],
                                                                                 df["T"])) for h in horizons]
    scores += [np.asarray(bg.conditional_probability_alive(df["frequency"], df["recency"], df["T"])),
               np.asarray(gg.conditional_expected_average_profit(df["frequency"], df["monetary_value"]))]
t2 = time.perf_counter()
nan = int(sum(np.count_nonzero(~np.isfinite(s)) for s in scores))
np.save(sys.argv[4], np.column_stack(scores))
print(json.dumps({"fit_s": t1 - t0, "score_s": t2 - t1, "peak_mib": PEAK, "params": params, "nonfinite": nan,
                  "source": source}))
""".replace("PEAK", PEAK_MIB)


def make_summaries(n: int) -> dict[str, tuple[Path, str]]:
    import clvmodels as clv

    DATA.mkdir(exist_ok=True)
    out = {}
    daily = DATA / f"fit_daily_{n}.parquet"
    if not daily.exists():
        per_day = {**PARAMS_WEEKLY, "alpha": PARAMS_WEEKLY["alpha"] * 7}
        sim = clv.simulate(n, per_day, rng=11, acquisition="1y", duration="3y", time_unit="D")
        log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
        clv.rfm_summary(log, time_unit="D").to_parquet(daily)
    out["daily"] = (daily, "D")
    cont = DATA / f"fit_continuous_{n}.parquet"
    if not cont.exists():
        ages = np.random.default_rng(12).uniform(0.0, 156.0, n)
        s = clv.datasets.simulate_summary(n, PARAMS_WEEKLY, rng=13, T=ages)
        s[["frequency", "recency", "T", "monetary_value"]].to_parquet(cont)
    out["continuous"] = (cont, "W")
    for kind, (path, unit) in out.items():
        npz = path.with_suffix(".npz")
        if not npz.exists():
            df = pd.read_parquet(path)
            np.savez(npz, **{c: df[c].to_numpy(np.float64) for c in ("frequency", "recency", "T", "monetary_value")})
        out[kind] = (npz, unit)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="1e6")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest is kept")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier clvmodels to measure as well")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    import clvmodels
    import lifetimes
    import scipy

    n = int(float(args.customers))
    print(f"# bench_fit  {versions(clvmodels, lifetimes, scipy, np)}, {os.cpu_count()} cores, best of {args.repeat}")
    if baseline:
        print(f"# baseline: {baseline} at {describe_source(baseline)}")
    tools = {"clvmodels": None, **({"baseline": baseline} if baseline else {}), "lifetimes": None}
    print("| summary | customers | distinct rows | tool | fit s | score s | peak MiB | non-finite scores |")
    print("|---|---|---|---|---|---|---|---|")
    ratios, changes = [], []
    for kind, (path, unit) in make_summaries(n).items():
        with np.load(path) as z:
            df = pd.DataFrame({k: z[k] for k in ("frequency", "recency", "T")})
        distinct = len(df.drop_duplicates())
        res = {}
        for tool, source in tools.items():
            worker_tool = "lifetimes" if tool == "lifetimes" else "clvmodels"
            runs = [run_worker(WORKER, worker_tool, path, unit, DATA / f"scores_{tool}.npy", source=source)
                    for _ in range(args.repeat)]
            if source is not None and not runs[0]["source"].startswith(str(source)):
                raise SystemExit(f"the baseline run imported {runs[0]['source']}, not the checkout {source}")
            best = min(runs, key=lambda r: r["fit_s"] + r["score_s"])
            best["fit_s"] = min(r["fit_s"] for r in runs)
            best["score_s"] = min(r["score_s"] for r in runs)
            res[tool] = best
            print(f"| {kind} | {len(df):,} | {distinct:,} | {tool} | {best['fit_s']:.2f} | {best['score_s']:.2f} | "
                  f"{best['peak_mib']:.0f} | {best['nonfinite']} |", flush=True)
        ours, theirs = res["clvmodels"], res["lifetimes"]
        rel = {k: abs(ours["params"][k] - theirs["params"][k]) / abs(theirs["params"][k]) for k in ours["params"]}
        a, b = np.load(DATA / "scores_clvmodels.npy"), np.load(DATA / "scores_lifetimes.npy")
        both = np.isfinite(a) & np.isfinite(b)
        score_diff = float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-12)))
        ratios.append((kind, theirs["fit_s"] / ours["fit_s"], theirs["score_s"] / ours["score_s"],
                       ours["peak_mib"] / theirs["peak_mib"], max(rel.values()), score_diff))
        if baseline:
            before = res["baseline"]
            was = np.load(DATA / "scores_baseline.npy")
            same_params = max(abs(ours["params"][k] - before["params"][k]) / abs(before["params"][k]) for k in rel)
            same_scores = float(np.max(np.abs(a - was) / np.maximum(np.abs(was), 1e-12)))
            changes.append((kind, theirs["fit_s"] / before["fit_s"], theirs["score_s"] / before["score_s"],
                            theirs["fit_s"] / ours["fit_s"], theirs["score_s"] / ours["score_s"],
                            before["peak_mib"], ours["peak_mib"], same_params, same_scores))
    print()
    print("| summary | fit speed-up | score speed-up | memory ratio | max param rel diff | max score rel diff |")
    print("|---|---|---|---|---|---|")
    for kind, f, s, m, p, d in ratios:
        print(f"| {kind} | {f:.1f}x | {s:.1f}x | {m:.2f} | {p:.1e} | {d:.1e} |")
    if changes:
        print()
        print("| summary | fit speed-up, baseline | fit speed-up, now | score speed-up, baseline | "
              "score speed-up, now | peak MiB, baseline | peak MiB, now | params rel diff to baseline | "
              "scores rel diff to baseline |")
        print("|---|---|---|---|---|---|---|---|---|")
        for kind, fb, sb, fn, sn, mb, mn, dp, ds in changes:
            print(f"| {kind} | {fb:.1f}x | {fn:.1f}x | {sb:.1f}x | {sn:.1f}x | {mb:.0f} | {mn:.0f} | {dp:.1e} | {ds:.1e} |")


if __name__ == "__main__":
    main()
