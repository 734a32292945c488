"""Predictions over parameter draws on CDNOW: the calls whose cost is one sum or one pmf per draw.

Three calls, each timed in a fresh process (after its fit, which is not timed), by the installed clvmodels
and, with ``--baseline DIR``, by an earlier checkout in the same run:

- ``cnbd_interval``: ``BetaGeoCNBD(k=2).fit(cal).expected_purchases(cal, 39, interval=0.8)`` on the
  2,357-customer CDNOW calibration (weeks; 1,000 draws of the estimates' sampling distribution);
- ``cnbd_value``: ``customer_value(BetaGeoCNBD(), GammaGamma(), cal, ["1y", "3y"], interval=0.8,
  max_draws=100)`` on the same calibration (the discounted value sums the expectation at every period);
- ``bgnbd_count_interval``: ``purchase_interval(summary, "1y", level=0.9)`` of a pooled ``BayesBetaGeo``
  (2 chains x 500 draws, seed 1) on the whole CDNOW summary (23,570 customers, weeks): the posterior-
  predictive count interval, a BG/NBD pmf per draw.

Usage::

    python benchmarks/bench_draws.py
    git worktree add /tmp/before 0b4b225 && python benchmarks/bench_draws.py --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import PEAK_MIB, check_source, describe_source, run_worker  # noqa: E402

CASES = ("cnbd_interval", "cnbd_value", "bgnbd_count_interval")

WORKER = f"""
import json, resource, sys, time, warnings
import clvmodels as clv
case = sys.argv[1]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # (CDNOW repeats 21 rows exactly; short chains may warn)
    if case == "bgnbd_count_interval":
        summary = clv.rfm_summary(clv.read_transactions(clv.load_cdnow(), amount="amount"), time_unit="W")
        model = clv.BayesBetaGeo(chains=2, draws=500, tune=500, random_seed=1).fit(summary)
        call = lambda: model.purchase_interval(summary, "1y", level=0.9)
    else:
        log = clv.read_transactions(clv.load_cdnow("sample"), amount="amount")
        cal = clv.calibration_holdout(log, "1997-09-30", "1998-06-30", time_unit="W")
        if case == "cnbd_interval":
            model = clv.BetaGeoCNBD(k=2).fit(cal)
            call = lambda: model.expected_purchases(cal, 39, interval=0.8)
        else:
            model, spend = clv.BetaGeoCNBD().fit(cal), clv.GammaGamma().fit(cal)
            call = lambda: clv.customer_value(model, spend, cal, ["1y", "3y"], interval=0.8, max_draws=100)
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_mib": {PEAK_MIB}}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="an earlier checkout (git worktree add) to time too")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    baseline = check_source(args.baseline)
    print("command: python " + " ".join(map(shlex.quote, sys.argv)))
    if baseline is not None:
        print(f"baseline: {describe_source(baseline)}")
    print("| call | clvmodels s | peak MiB |" + (" baseline s | baseline peak MiB | speed-up |" if baseline else ""))
    print("|---|---|---|" + ("---|---|---|" if baseline else ""))
    for case in args.cases.split(","):
        if case not in CASES:
            raise SystemExit(f"--cases: unknown case {case!r} (choose from {', '.join(CASES)})")
        now = run_worker(WORKER, case)
        row = f"| {case} | {now['seconds']:.2f} | {now['peak_mib']:.0f} |"
        if baseline is not None:
            before = run_worker(WORKER, case, source=baseline)
            row += f" {before['seconds']:.2f} | {before['peak_mib']:.0f} | {before['seconds'] / now['seconds']:.1f}x |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
