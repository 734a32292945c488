"""Exploratory study (issue 5, not yet a test): hierarchical vs unpooled vs pooled BG/NBD by segment.

Ten simulated segments of very different sizes (3,000 down to 40 customers) with segment-specific r and
alpha; one year of calibration, one of holdout. Prints each segment's aggregate holdout error for the
hierarchical posterior mean, the segment fitted alone (MLE; NaN where it cannot be fitted) and the
pooled MLE, and the coverage of the hierarchical model's 90% posterior-predictive intervals.

Usage::

    python benchmarks/study_hierarchical.py      # about 2-3 minutes on 2 cores
"""
import warnings, time, numpy as np, pandas as pd
warnings.simplefilter("ignore")
import clvmodels as clv
rng = np.random.default_rng(0)
sizes = [3000, 2000, 1200, 800, 500, 300, 150, 80, 60, 40]
share = np.array(sizes) / sum(sizes)
segs = {f"s{k}": (share[k], {"r": float(np.exp(np.log(0.4) + 0.35 * rng.standard_normal())),
                             "alpha": float(np.exp(np.log(6.0) + 0.3 * rng.standard_normal())),
                             "a": 0.7, "b": 3.0}) for k in range(10)}
sim = clv.simulate(sum(sizes), rng=11, acquisition="12W", duration="104W", time_unit="W", segments=segs)
log = clv.read_transactions(sim.transactions, amount="amount", observation_end=sim.end)
cut = pd.Timestamp("2020-01-01") + pd.Timedelta(weeks=52)
cal = clv.calibration_holdout(log, cut, sim.end, time_unit="W")
cal["seg"] = sim.customers.loc[cal.index, "segment"]
h = cal["holdout_duration"].iloc[0]
t = time.time()
hb = clv.BayesBetaGeo(segment="seg", random_seed=1).fit(cal)
print("fit", time.time() - t)
pooled = clv.BetaGeo().fit(cal)
rows = []
e_h = hb.expected_purchases(cal, h).iloc[:, 0]
e_p = pooled.expected_purchases(cal, h)
iv = hb.purchase_interval(cal, h, level=0.9)
cover = ((cal.holdout_frequency >= iv.lower) & (cal.holdout_frequency <= iv.upper)).mean()
for s, part in cal.groupby("seg"):
    act = part.holdout_frequency.sum()
    try:
        un = clv.BetaGeo().fit(part).expected_purchases(part, h).sum()
    except Exception:  # a segment too small to fit alone
        un = np.nan
    rows.append((s, len(part), act, e_h[part.index].sum(), un, e_p[part.index].sum()))
df = pd.DataFrame(rows, columns=["seg", "n", "actual", "hier", "unpooled", "pooled"])
for c in ["hier", "unpooled", "pooled"]:
    df[c + "_err"] = (df[c] - df.actual) / df.actual * 100
print(df.round(1).to_string())
print("mean abs err", {c: round(df[c + "_err"].abs().mean(), 2) for c in ["hier", "unpooled", "pooled"]}, "coverage", cover)
