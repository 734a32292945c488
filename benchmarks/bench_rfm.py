"""Transaction log -> customer summary: clvmodels (DuckDB) against lifetimes, in one run.

For each simulated log size and input kind (a Parquet file, an in-memory DataFrame) every measurement runs
in a fresh Python process, so that its peak resident memory (ru_maxrss) is its own:

- clvmodels: ``read_transactions`` + ``rfm_summary`` (time unit D);
- lifetimes: ``pd.read_parquet`` (for the file case) + ``summary_data_from_transaction_data(freq="D")``.

For the DataFrame case the DataFrame is loaded before the clock starts, in both; its memory counts in both
peaks. Outputs are compared to rtol 1e-9 (frequency, recency, T, monetary_value).

Usage::

    python benchmarks/bench_rfm.py                  # 1M and 10M transactions
    python benchmarks/bench_rfm.py --sizes 1e6      # quicker
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
from _harness import PEAK_MIB, run_worker, versions  # noqa: E402
DATA = HERE / "_data"

# Daily-grain customers over 3 years: about 9 repeat purchases per customer on average.
PARAMS = {"r": 0.9, "alpha": 60.0, "a": 0.6, "b": 5.0, "p": 6.0, "q": 3.7, "gamma": 15.0}

WORKER = r"""
import json, resource, sys, time
import pandas as pd
kind, tool, path, out = sys.argv[1:5]
df = pd.read_parquet(path) if kind == "dataframe" else None
t0 = time.perf_counter()
if tool == "clvmodels":
    import clvmodels as clv
    src = df if kind == "dataframe" else path
    log = clv.read_transactions(src, customer="customer_id", date="date", amount="amount")
    summary = clv.rfm_summary(log, time_unit="D")
else:
    from lifetimes.utils import summary_data_from_transaction_data
    tx = df if kind == "dataframe" else pd.read_parquet(path)
    summary = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="amount",
                                                 observation_period_end=tx["date"].max(), freq="D")
wall = time.perf_counter() - t0
summary.sort_index().to_parquet(out)
print(json.dumps({"wall_s": wall, "peak_mib": PEAK}))
""".replace("PEAK", PEAK_MIB)


def make_log(n_transactions: int) -> Path:
    """A simulated log of about ``n_transactions`` rows, cached as Parquet."""
    import clvmodels as clv

    path = DATA / f"log_{n_transactions:.0e}.parquet".replace("+", "")
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    pilot = clv.simulate(20_000, PARAMS, rng=0, acquisition="1y", duration="3y", time_unit="D")
    per_customer = len(pilot.transactions) / 20_000
    n_customers = int(round(n_transactions / per_customer))
    sim = clv.simulate(n_customers, PARAMS, rng=1, acquisition="1y", duration="3y", time_unit="D")
    tx = sim.transactions[["customer_id", "date", "amount"]]
    tx.to_parquet(path, index=False)
    return path


def measure(kind: str, tool: str, path: Path, out: Path, repeat: int) -> dict:
    """Best wall time of ``repeat`` fresh-process runs (and the peak memory of that run)."""
    runs = [run_worker(WORKER, kind, tool, path, out) for _ in range(repeat)]
    return min(runs, key=lambda r: r["wall_s"])


def compare(a: Path, b: Path) -> float:
    """Largest relative difference between the two summaries (inf if the customers differ)."""
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if not x.index.equals(y.index):
        return float("inf")
    worst = 0.0
    for col in ["frequency", "recency", "T", "monetary_value"]:
        u, v = x[col].to_numpy(float), y[col].to_numpy(float)
        worst = max(worst, float(np.max(np.abs(u - v) / np.maximum(np.abs(v), 1.0))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="transaction counts, comma separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    args = parser.parse_args()
    import clvmodels
    import duckdb
    import lifetimes

    print(f"# bench_rfm  {versions(clvmodels, lifetimes, duckdb, pd)}, {os.cpu_count()} cores, "
          f"best of {args.repeat}")
    header = ("| transactions | customers | input | clvmodels s | lifetimes s | speed-up | clvmodels MiB "
              "| lifetimes MiB | memory ratio | max rel diff |")
    print(header)
    print("|" + "---|" * 10)
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        path = make_log(size)
        n_rows = pd.read_parquet(path, columns=["customer_id"])
        n_tx, n_cust = len(n_rows), n_rows["customer_id"].nunique()
        del n_rows
        for kind in ["parquet", "dataframe"]:
            outs = {tool: DATA / f"out_{tool}.parquet" for tool in ("clvmodels", "lifetimes")}
            res = {tool: measure(kind, tool, path, outs[tool], args.repeat) for tool in outs}
            diff = compare(outs["clvmodels"], outs["lifetimes"])
            c, lt = res["clvmodels"], res["lifetimes"]
            print(f"| {n_tx:,} | {n_cust:,} | {kind} | {c['wall_s']:.2f} | {lt['wall_s']:.2f} | "
                  f"{lt['wall_s'] / c['wall_s']:.1f}x | {c['peak_mib']:.0f} | {lt['peak_mib']:.0f} | "
                  f"{c['peak_mib'] / lt['peak_mib']:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
