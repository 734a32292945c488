"""The model chosen by validation against BG/NBD + Gamma-Gamma on the whole CDNOW log (issue 15's proof).

CDNOW master (January 1997 to June 1998; its 80 purchases of amount 0 left out, as Gamma-Gamma models
positive spend: 23,502 of its 23,570 customers remain), cut-offs at the end of every quarter from
1997-03-31 to 1998-03-31, horizons 13, 26 and 39 weeks where the log covers them. At each cut-off the
backtest fits BG/NBD + Gamma-Gamma and ``auto`` (:func:`clvmodels.select_model`, whose rolling origins
lie before the cut-off) on the log up to it, and scores each customer's purchases and spend in the
holdout. Printed: per cut-off and horizon, the per-customer MAE and RMSE of both, which models were
chosen, and the aggregate error of the chosen model's total purchases with a 90% interval.

The total's interval: the chosen purchase model's expected purchases at 200 draws of its estimates'
sampling distribution (their spread is the parameters' uncertainty), each with the customers' own
process noise, a normal with the sum of the per-customer predictive variances at the estimate (from
P(Y = n | history), n <= 400; customers are independent given the parameters). The interval's coverage
of the actual totals over the cut-offs and horizons is printed last. Accuracy, not speed: no peers run.

Usage::

    python benchmarks/bench_selection.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

import clvmodels as clv
from clvmodels.backtest import AutoCandidate, Candidate

CUTOFFS = ["1997-03-31", "1997-06-30", "1997-09-30", "1997-12-31", "1998-03-31"]
HORIZONS = ["13W", "26W", "39W"]
LEVEL = 0.9
DRAWS = 200


def total_interval(model, summary: pd.DataFrame, t: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """(expected total, lower, upper) of the customers' total purchases in the next ``t`` units."""
    theta, seg = model.group_draws(summary, LEVEL, DRAWS)
    data = [summary[c].to_numpy(float)[None, :] for c in ("frequency", "recency", "T")]
    per_draw = model.expected_purchases_kernel(tuple(theta[:, seg, j] for j in range(theta.shape[2])), *data, [t],
                                               seg)[..., 0].sum(axis=1)
    probs = model.purchase_probabilities(summary, t, n_max=400).to_numpy()
    n = np.arange(probs.shape[1])
    variance = float(np.sum(probs @ n ** 2 - (probs @ n) ** 2))
    totals = per_draw[:, None] + rng.normal(0.0, np.sqrt(variance), (len(per_draw), 50))
    lo, hi = np.quantile(totals, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(model.expected_purchases(summary, t).sum()), float(lo), float(hi)


def main() -> None:
    start = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # (CDNOW repeats rows exactly; horizons past the log's end are listed)
        tx = clv.load_cdnow("master")
        # (Gamma-Gamma models positive spend: the master log's purchases of amount 0 are left out)
        log = clv.read_transactions(tx[tx["amount"] > 0], amount="amount")
        res = clv.backtest(log, CUTOFFS[0], HORIZONS, cutoffs=CUTOFFS[1:], show_progress=False,
                           models=[Candidate("BG/NBD + Gamma-Gamma", clv.BetaGeo(), clv.GammaGamma()), AutoCandidate()])
    m = res.metrics
    rows = []
    rng = np.random.default_rng(2026)
    for (cut, horizon), part in m.groupby(["cutoff", "horizon"], sort=True):
        v = part.set_index(["model", "target", "metric"])["value"]
        chosen_p, chosen_s = res.fits[(cut, "Chosen by validation")]
        base, auto = "BG/NBD + Gamma-Gamma", "Chosen by validation"
        actual = clv.calibration_holdout(log, cut, pd.Timestamp(cut) + pd.Timedelta(days=int(
            np.floor(clv.timeunits.horizon_days(horizon, "W")))), time_unit="W")
        t = actual["holdout_duration"].iloc[0]
        expected, lo, hi = total_interval(chosen_p, actual[["frequency", "recency", "T"]], t, rng)
        total = float(actual["holdout_frequency"].sum())
        rows.append({
            "cut-off": cut, "horizon": horizon, "chosen": f"{chosen_p.title} + {chosen_s.title}",
            "purchases MAE (BG/NBD, chosen)": f"{v[(base, 'purchases', 'mae')]:.4f}, {v[(auto, 'purchases', 'mae')]:.4f}",
            "purchases RMSE": f"{v[(base, 'purchases', 'rmse')]:.4f}, {v[(auto, 'purchases', 'rmse')]:.4f}",
            "spend MAE": f"{v[(base, 'spend', 'mae')]:.2f}, {v[(auto, 'spend', 'mae')]:.2f}",
            "spend RMSE": f"{v[(base, 'spend', 'rmse')]:.2f}, {v[(auto, 'spend', 'rmse')]:.2f}",
            "total purchases: actual, chosen (90%)": f"{total:,.0f}, {expected:,.0f} ({lo:,.0f}-{hi:,.0f})",
            "aggregate error": f"{100 * (expected - total) / total:+.1f}%",
            "covered": lo <= total <= hi,
        })
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")
    print(f"\nthe 90% interval of the total covers the actual total at {int(table['covered'].sum())} of "
          f"{len(table)} (cut-off, horizon) pairs")
    print(f"clvmodels {clv.__version__}, python {sys.version.split()[0]}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
