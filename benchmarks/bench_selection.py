"""The model chosen by validation against BG/NBD + Gamma-Gamma on the whole CDNOW log (issue 15's proof).

CDNOW master (January 1997 to June 1998; its 80 purchases of amount 0 left out, as Gamma-Gamma models
positive spend: 23,502 of its 23,570 customers remain), cut-offs at the end of every quarter from
1997-03-31 to 1998-03-31, horizons 13, 26 and 39 weeks where the log covers them. At each cut-off the
backtest fits BG/NBD + Gamma-Gamma and ``auto`` (:func:`clvmodels.select_model`, whose rolling origins
lie before the cut-off) on the log up to it, and scores each customer's purchases and spend in the
holdout. Printed: per cut-off and horizon, the per-customer MAE and RMSE of both, which models were
chosen, and the aggregate error of the chosen model's total purchases with a 90% interval.

The totals' intervals: :meth:`SelectedModel.totals` at each cut-off, 90% intervals calibrated on the
chosen models' total forecasts at the rolling origins before the cut-off (Student's t on their log errors,
:func:`clvmodels.metrics.total_interval`); value undiscounted (annual rate 0), so that it is the holdout's
spend. Their coverage of the actual totals over the cut-offs and horizons is printed last. Accuracy, not
speed: no peers run.

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
from clvmodels.draws import bound_names

CUTOFFS = ["1997-03-31", "1997-06-30", "1997-09-30", "1997-12-31", "1998-03-31"]
HORIZONS = ["13W", "26W", "39W"]
LEVEL = 0.9


def main() -> None:
    start = time.time()
    auto = AutoCandidate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # (CDNOW repeats rows exactly; horizons past the log's end are listed)
        tx = clv.load_cdnow("master")
        # (Gamma-Gamma models positive spend: the master log's purchases of amount 0 are left out)
        log = clv.read_transactions(tx[tx["amount"] > 0], amount="amount")
        res = clv.backtest(log, CUTOFFS[0], HORIZONS, cutoffs=CUTOFFS[1:], show_progress=False,
                           models=[Candidate("BG/NBD + Gamma-Gamma", clv.BetaGeo(), clv.GammaGamma()), auto])
    m = res.metrics
    rows = []
    for (cut, horizon), part in m.groupby(["cutoff", "horizon"], sort=True):
        v = part.set_index(["model", "target", "metric"])["value"]
        chosen = auto.selections_[cut]
        base, name = "BG/NBD + Gamma-Gamma", auto.label
        actual = clv.calibration_holdout(log, cut, pd.Timestamp(cut) + pd.Timedelta(days=int(
            np.floor(clv.timeunits.horizon_days(horizon, "W")))), time_unit="W")
        t = actual["holdout_duration"].iloc[0]
        totals = chosen.totals(actual[["frequency", "recency", "T", "monetary_value"]], [t], level=LEVEL,
                               annual_discount_rate=0.0).iloc[0]
        (p_lo, p_hi), (s_lo, s_hi) = (bound_names(k, LEVEL) for k in ("purchases", "value"))
        total, spend = float(actual["holdout_frequency"].sum()), float(actual["holdout_spend"].sum())
        rows.append({
            "cut-off": cut, "horizon": horizon,
            "chosen": f"{chosen.purchase_model_.title} + {chosen.spend_model_.title}",
            "purchases MAE (BG/NBD, chosen)": f"{v[(base, 'purchases', 'mae')]:.4f}, {v[(name, 'purchases', 'mae')]:.4f}",
            "purchases RMSE": f"{v[(base, 'purchases', 'rmse')]:.4f}, {v[(name, 'purchases', 'rmse')]:.4f}",
            "spend MAE": f"{v[(base, 'spend', 'mae')]:.2f}, {v[(name, 'spend', 'mae')]:.2f}",
            "spend RMSE": f"{v[(base, 'spend', 'rmse')]:.2f}, {v[(name, 'spend', 'rmse')]:.2f}",
            "total purchases: actual, chosen (90%)":
                f"{total:,.0f}, {totals['purchases']:,.0f} ({totals[p_lo]:,.0f}-{totals[p_hi]:,.0f})",
            "error": f"{100 * (totals['purchases'] - total) / total:+.1f}%",
            "covered": bool(totals[p_lo] <= total <= totals[p_hi]),
            "total spend: actual, chosen (90%)":
                f"{spend:,.0f}, {totals['value']:,.0f} ({totals[s_lo]:,.0f}-{totals[s_hi]:,.0f})",
            "spend error": f"{100 * (totals['value'] - spend) / spend:+.1f}%",
            "spend covered": bool(totals[s_lo] <= spend <= totals[s_hi]),
            "origins": int(totals["origins"]),
        })
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")
    for what, col in (("purchases", "covered"), ("spend", "spend covered")):
        print(f"\nthe 90% interval of the total {what} covers the actual total at {int(table[col].sum())} of "
              f"{len(table)} (cut-off, horizon) pairs")
    print(f"clvmodels {clv.__version__}, python {sys.version.split()[0]}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
