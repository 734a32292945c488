"""clvmodels on Spark (local mode) as the log grows: 1M, 10M and 100M transactions (issue 7).

For each size, in fresh processes:

- ``spark``: ``clvmodels.spark.calibration_holdout`` on the Parquet log (validation, same-day merging and
  the summary, in Spark SQL), written to Parquet; then ``clvmodels.spark.fit`` of BG/NBD and Gamma-Gamma
  and ``clvmodels.spark.score`` (P(alive), purchases, spend and value at 1, 2 and 3 years) written to
  Parquet. The Spark session (``local[2]``, 8 GiB driver) is started before the clock.
- ``duckdb``: ``clvmodels.calibration_holdout`` on the same file, for comparison, and the largest relative
  difference between the two summaries.

The 1M and 10M logs are those of ``bench_rfm.py`` (simulated BG/NBD customers, daily grain, 3 years); the
100M log is the 10M one ten times over, with customer ids offset (made with DuckDB, never in pandas).

Usage::

    PYSPARK_PYTHON=$(which python) python benchmarks/bench_spark.py [--sizes 1e6,1e7,1e8]
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
from bench_rfm import DATA, make_log  # noqa: E402

CAL_END, HOLD_END = "2021-06-30", None  # the logs run from 2020-01-01 for 3 years: a 2.5-year calibration

SPARK = r"""
import json, os, resource, sys, time, warnings
warnings.simplefilter("ignore")
from pyspark.sql import SparkSession
import clvmodels as clv
from clvmodels import spark as cs
path, out, cal_end = sys.argv[1:4]
spark = (SparkSession.builder.master("local[2]").config("spark.driver.memory", "8g")
         .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
t0 = time.perf_counter()
summary = cs.calibration_holdout(spark.read.parquet(path), cal_end, time_unit="D")
summary.write.mode("overwrite").parquet(out + "/summary")
t1 = time.perf_counter()
summary = spark.read.parquet(out + "/summary")
bg, gg = cs.fit(clv.BetaGeo(), summary, time_unit="D"), cs.fit(clv.GammaGamma(), summary, time_unit="D")
t2 = time.perf_counter()
cs.score(summary, bg, gg).write.mode("overwrite").parquet(out + "/scores")
t3 = time.perf_counter()
print(json.dumps({"summary_s": t1 - t0, "fit_s": t2 - t1, "score_s": t3 - t2, "customers": summary.count(),
                  "driver_peak_mib": PEAK}))
""".replace("PEAK", PEAK_MIB)

DUCKDB = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import clvmodels as clv
path, out, cal_end = sys.argv[1:4]
t0 = time.perf_counter()
summary = clv.calibration_holdout(path, cal_end, time_unit="D")
wall = time.perf_counter() - t0
summary.to_parquet(out)
print(json.dumps({"summary_s": wall, "peak_mib": PEAK}))
""".replace("PEAK", PEAK_MIB)


def log_path(size: int) -> Path:
    if size <= 10**7:
        return make_log(size)
    base = make_log(10**7)
    path = DATA / f"log_{size:.0e}.parquet".replace("+", "")
    if not path.exists():
        import duckdb

        times = size // 10**7
        duckdb.execute(f"COPY (SELECT customer_id + k * (SELECT max(customer_id) FROM '{base}') AS customer_id, date, amount "
                   f"FROM '{base}', range({times}) AS r(k)) TO '{path}' (FORMAT parquet)")
    return path


def largest_difference(spark_dir: Path, duck: Path) -> float:
    x = pd.read_parquet(spark_dir / "summary").set_index("customer_id").sort_index()
    y = pd.read_parquet(duck)
    if not x.index.equals(y.index):
        return float("inf")
    return max(float(np.max(np.abs(x[c].to_numpy(float) - y[c].to_numpy(float)) / np.maximum(np.abs(y[c]), 1.0)))
               for c in y.columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="transaction counts, comma separated")
    args = parser.parse_args()
    import duckdb
    import pyspark

    import clvmodels

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    print(f"# bench_spark  {versions(clvmodels, pyspark, duckdb)}, {os.cpu_count()} cores, local[2]")
    print("| transactions | customers | Spark summary s | DuckDB summary s | Spark fit s | Spark score s "
          "| Spark driver MiB | max rel diff |")
    print("|" + "---|" * 8)
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        path = log_path(size)
        n_tx = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
        out, duck_out = DATA / "spark_out", DATA / "duck_summary.parquet"
        s = run_worker(SPARK, path, out, CAL_END)
        d = run_worker(DUCKDB, path, duck_out, CAL_END) if size <= 10**8 else {"summary_s": float("nan")}
        diff = largest_difference(out, duck_out) if duck_out.exists() else float("nan")
        print(f"| {n_tx:,} | {s['customers']:,} | {s['summary_s']:.1f} | {d['summary_s']:.1f} | {s['fit_s']:.1f} | "
              f"{s['score_s']:.1f} | {s['driver_peak_mib']:.0f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
