"""Each scoring call of BG/NBD + Gamma-Gamma on the 1M-customer daily summary of bench_fit.py, timed in one
process (fastest of five): to compare two versions of clvmodels call by call.

Usage (run bench_fit.py first: it writes the summary)::

    python benchmarks/bench_score_calls.py                                   # the installed clvmodels
    cd /tmp/clv-before && PYTHONPATH=. python /path/to/benchmarks/bench_score_calls.py   # another checkout
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

import clvmodels as clv

DATA = Path(__file__).resolve().parent / "_data" / "fit_daily_1000000.npz"


def fastest(call, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    with np.load(DATA) as z:
        df = pd.DataFrame({k: z[k] for k in ("frequency", "recency", "T", "monetary_value")})
    bg = clv.BetaGeo().fit(df, time_unit="D")
    gg = clv.GammaGamma().fit(df)
    horizons = [365.25 * k for k in (1, 2, 3)]
    times = {
        "expected purchases, 1-2-3 years": fastest(lambda: [bg.expected_purchases(df, h) for h in horizons]),
        "P(alive)": fastest(lambda: bg.p_alive(df)),
        "expected spend": fastest(lambda: gg.expected_spend(df)),
    }
    print(f"# clvmodels from {clv.__file__}")
    for name, seconds in times.items():
        print(f"{name}: {seconds:.3f} s")


if __name__ == "__main__":
    main()
