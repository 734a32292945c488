"""The segmentations businesses already use, computed from a customer summary and model forecasts.

Every function takes per-customer inputs (Series or columns of the value table) and returns labels or
scores indexed like them; none fits a model. What each needs:

- :func:`value_tiers`: a value per customer (e.g. ``value_1y``), cut by quantiles or thresholds;
- :func:`rfm_scores`: the summary's recency (time since the last purchase, T - recency), frequency and
  monetary value, scored 1-5 by quintile, and a named segment from the scores;
- :func:`value_satisfaction_quadrants`: value and a satisfaction score per customer;
- :func:`lifecycle_stages`: P(alive) from a purchase model plus the time since the last purchase
  (BG/NBD puts P(alive) = 1 for customers without repeat purchases, so recency is needed as well);
- :func:`at_risk`: valuable customers whose P(alive) fell below a threshold, ranked by value at stake;
- :func:`net_value`: value minus an acquisition cost (one number or one per customer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import DataError
from .timeunits import UNIT_WORDS, Horizon, horizon_words, to_units

__all__ = ["value_tiers", "value_concentration", "rfm_scores", "RFM_SEGMENTS", "value_satisfaction_quadrants",
           "lifecycle_stages", "LIFECYCLE_STAGES", "LIFECYCLE_PATH", "R_CAP", "at_risk", "net_value"]


def _series(values, name: str) -> pd.Series:
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values), name=name)
    if not pd.api.types.is_numeric_dtype(s):
        raise DataError(f"{name} must be numeric, got dtype {s.dtype}", columns=[name])
    bad = ~np.isfinite(s.to_numpy(dtype=np.float64))
    if bad.any():
        raise DataError(f"{name} must be finite", columns=[name], rows=np.flatnonzero(bad)[:5], n_rows=int(bad.sum()))
    return s


def value_tiers(value, *, quantiles: Sequence[float] = (0.5, 0.8), thresholds: Sequence[float] | None = None,
                labels: Sequence[str] = ("low", "medium", "high")) -> pd.Series:
    """Tier of each customer by value: below the first cut "low", then "medium", from the last "high".

    Cuts are the value's ``quantiles`` (default: the median and the 80th percentile, so the top fifth is
    "high") or fixed ``thresholds`` in money. Values are compared to 9 significant digits of the largest,
    so that customers with the same history, whose values may differ in the last bits of a computation,
    share their tier. Returns an ordered categorical.
    """
    v = _series(value, "value")
    scale = float(np.max(np.abs(v))) if len(v) else 0.0
    decimals = 9 - int(np.ceil(np.log10(scale))) if scale > 0 else 0
    rounded = np.round(v.to_numpy(dtype=np.float64), decimals)
    cuts = np.asarray(thresholds if thresholds is not None else np.quantile(rounded, list(quantiles)), dtype=np.float64)
    if len(cuts) != len(labels) - 1 or np.any(np.diff(cuts) < 0):
        raise ValueError(f"need {len(labels) - 1} increasing cuts for {len(labels)} labels, got {list(cuts)}")
    codes = np.searchsorted(cuts, rounded, side="right")
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(labels), ordered=True), index=v.index,
                     name="value_tier")


def _rank_score(values: np.ndarray, low: int, high: int, higher_is_better: bool = True) -> np.ndarray:
    """Scores low..high by equal-count bins of rank; ties share the lower score."""
    if len(values) == 0:
        return np.empty(0, dtype=int)
    v = values if higher_is_better else -values
    rank_min = pd.Series(v).rank(method="min").to_numpy()
    return (low + np.floor((high - low + 1) * (rank_min - 1) / len(v))).astype(int)


#: Named RFM segments, first match wins; FM is the rounded mean of the F and M scores.
RFM_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("champions", "R >= 4 and FM >= 4"),
    ("loyal", "R >= 3 and FM >= 3"),
    ("potential loyalists", "R >= 4 and FM == 2"),
    ("new or one-off", "R >= 4 and FM == 1"),
    ("needs attention", "R == 3"),
    ("can't lose", "R <= 2 and FM >= 4"),
    ("at risk", "R <= 2 and FM == 3"),
    ("about to sleep", "R == 2"),
    ("hibernating", "R == 1 and FM == 2"),
    ("lost", "R == 1 and FM == 1"),
)


#: The highest R score a lifecycle stage allows (:func:`rfm_scores` with ``lifecycle=``).
R_CAP = {"lost": 1, "declining": 2}


def rfm_scores(summary: pd.DataFrame, lifecycle: pd.Series | None = None) -> pd.DataFrame:
    """RFM scores 1-5 and a named segment per customer (the practitioners' RFM analysis).

    R scores the time since the last purchase (T - recency; recent is 5) by quintile of rank. F (repeat
    purchases) and M (mean repeat spend) are 1 for customers without repeat purchases, and 2-5 by quartile
    among repeat buyers: in most customer bases the majority never come back, and quintiles over everyone
    would leave the middle scores empty. Ties share the lower score. Scores are relative to this
    customer base. ``rfm_segment`` follows :data:`RFM_SEGMENTS`. A summary without ``monetary_value`` (a
    log without amounts) gets R and F alone, and the segments read F where their rules say FM.

    With ``lifecycle`` (:func:`lifecycle_stages`, aligned by customer) R is capped by :data:`R_CAP`, so that
    the two labels agree: a frequent buyer whose recent silence makes them lost is not a "champion" by
    quintile of recency, but "can't lose".
    """
    missing = [c for c in ("frequency", "recency", "T") if c not in summary.columns]
    if missing:
        raise DataError("the summary lacks columns for RFM scores", columns=missing)
    since_last = _series(summary["T"] - summary["recency"], "T - recency").to_numpy(dtype=np.float64)
    freq = _series(summary["frequency"], "frequency").to_numpy(dtype=np.float64)
    rep = freq > 0
    f_score = np.ones(len(freq), dtype=int)
    f_score[rep] = _rank_score(freq[rep], 2, 5)
    m_score = None
    if "monetary_value" in summary.columns:
        money = summary["monetary_value"].to_numpy(dtype=np.float64)
        bad = rep & ~np.isfinite(money)
        if bad.any():
            raise DataError("monetary_value must be finite for customers with repeat purchases",
                            columns=["monetary_value"], rows=np.flatnonzero(bad)[:5], n_rows=int(bad.sum()))
        m_score = np.ones(len(freq), dtype=int)
        m_score[rep] = _rank_score(money[rep], 2, 5)
    r_score = _rank_score(since_last, 1, 5, higher_is_better=False)
    if lifecycle is not None:
        stage = lifecycle.reindex(summary.index).astype(object).to_numpy()
        cap = np.array([R_CAP.get(s, 5) for s in stage])
        r_score = np.minimum(r_score, cap)
    scores = {"R": r_score, "F": f_score, **({"M": m_score} if m_score is not None else {})}
    out = pd.DataFrame(scores, index=summary.index)
    out["rfm_score"] = out.astype(str).sum(axis=1)
    fm = f_score if m_score is None else np.floor((f_score + m_score) / 2 + 0.5)
    env = {"R": out["R"].to_numpy(), "FM": fm}
    label = np.full(len(out), "", dtype=object)
    for name, rule in RFM_SEGMENTS:
        hit = (label == "") & _rule(rule, env)
        label[hit] = name
    out["rfm_segment"] = pd.Categorical(label, categories=[n for n, _ in RFM_SEGMENTS])
    return out


def _rule(rule: str, env: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a rule of :data:`RFM_SEGMENTS` ("R >= 4 and FM == 2") on score arrays."""
    ops = {">=": np.greater_equal, "<=": np.less_equal, "==": np.equal}
    mask = np.ones(len(env["R"]), dtype=bool)
    for clause in rule.split(" and "):
        name, op, num = clause.split()
        mask &= ops[op](env[name], int(num))
    return mask


def value_satisfaction_quadrants(value, satisfaction, *, value_cut: float | None = None,
                                 satisfaction_cut: float | None = None) -> pd.Series:
    """"high value, high satisfaction", "high value, low satisfaction", ... per customer.

    The cuts default to each variable's median; customers at a cut count as high. ``satisfaction`` is
    any score per customer (NPS, CSAT, a survey mean), aligned with ``value`` by index.
    """
    v = _series(value, "value")
    s = _series(satisfaction, "satisfaction")
    if isinstance(value, pd.Series) and isinstance(satisfaction, pd.Series):
        missing = v.index.difference(s.index)
        if len(missing):
            raise DataError(f"no satisfaction score for {len(missing):,} customers (e.g. {list(missing[:3])})",
                            columns=["satisfaction"])
        s = s.reindex(v.index)
    elif len(v) != len(s):
        raise DataError(f"value has {len(v):,} customers, satisfaction {len(s):,}", columns=["satisfaction"])
    vc = float(np.median(v)) if value_cut is None else value_cut
    sc = float(np.median(s)) if satisfaction_cut is None else satisfaction_cut
    hv = np.where(v.to_numpy() >= vc, "high value", "low value")
    hs = np.where(s.to_numpy() >= sc, "high satisfaction", "low satisfaction")
    labels = [f"{a}, {b}" for a in ("high value", "low value") for b in ("high satisfaction", "low satisfaction")]
    return pd.Series(pd.Categorical(np.char.add(np.char.add(hv, ", "), hs), categories=labels), index=v.index,
                     name="quadrant")


#: Lifecycle stages in order, and the rule of each (the first that holds wins; t = time since the last
#: purchase, age = time since the first).
LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = (
    ("new", "age <= new_within (first purchase in the last 90 days)"),
    ("lost", "P(alive) < 0.2, or t > lost_after (no purchase for a year)"),
    ("declining", "P(alive) < 0.5, or t > declining_after (no purchase for 240 days)"),
    ("growing", "age < mature_after (a customer for less than a year)"),
    ("mature", "otherwise"),
)


#: The stages in the order a customer passes through them (the categories' order, and the tables').
LIFECYCLE_PATH = ("new", "growing", "mature", "declining", "lost")


def lifecycle_stages(summary: pd.DataFrame, p_alive, *, time_unit: str | None = None, new_within: Horizon = "90D",
                     declining_after: Horizon = "240D", lost_after: Horizon = "1y", mature_after: Horizon = "1y",
                     thresholds: tuple[float, float] = (0.2, 0.5)) -> pd.Series:
    """Lifecycle stage per customer: new, growing, mature, declining or lost (:data:`LIFECYCLE_STAGES`).

    A stage agrees with both P(alive) and the time since the last purchase: the customer is lost (or
    declining) when either says so. P(alive) alone would not do: a model can keep it high for a customer
    who never came back (BG/NBD gives customers without repeat purchases P(alive) = 1, however long ago
    they bought), so a one-time buyer of two years ago is lost by the time since their purchase. Among
    the customers neither calls declining, those younger than ``mature_after`` are growing and the
    others mature. ``thresholds`` are the P(alive) cuts for lost and declining.
    """
    unit = time_unit or summary.attrs.get("time_unit")
    if not unit:
        raise ValueError("lifecycle_stages needs the summary's time unit: pass time_unit=...")
    pa_s = _series(p_alive, "p_alive")
    if isinstance(p_alive, pd.Series):  # aligned by customer, never by position
        missing = summary.index.difference(pa_s.index)
        if len(missing):
            raise DataError(f"no P(alive) for {len(missing):,} customers (e.g. {list(missing[:3])})",
                            columns=["p_alive"])
        pa_s = pa_s.reindex(summary.index)
    pa = pa_s.to_numpy(dtype=np.float64)
    if len(pa) != len(summary):
        raise DataError(f"p_alive has {len(pa):,} values for {len(summary):,} customers", columns=["p_alive"])
    lost, declining = thresholds
    if not 0 <= lost <= declining <= 1:
        raise ValueError(f"thresholds must be increasing within [0, 1], got {thresholds}")
    since = (summary["T"] - summary["recency"]).to_numpy(dtype=np.float64)
    age = summary["T"].to_numpy(dtype=np.float64)
    conditions = [age <= to_units(new_within, unit),
                  (pa < lost) | (since > to_units(lost_after, unit)),
                  (pa < declining) | (since > to_units(declining_after, unit)),
                  age < to_units(mature_after, unit)]
    names = [n for n, _ in LIFECYCLE_STAGES]
    stage = np.select(conditions, names[:4], default="mature")
    return pd.Series(pd.Categorical(stage, categories=LIFECYCLE_PATH, ordered=True), index=summary.index,
                     name="lifecycle_stage")


def at_risk(table: pd.DataFrame, *, value: str = "value_1y", p_alive_below: float = 0.5,
            p_alive_above: float = 0.2, top_share: float = 0.2, n: int | None = 100,
            silent_for: Horizon | None = None, time_unit: str | None = None) -> pd.DataFrame:
    """Valuable customers whose P(alive) fell below ``p_alive_below`` (or, with ``silent_for``, who have
    not bought for longer than that), ranked by value at stake: the customers to contact.

    Valuable: in the top ``top_share`` of ``value`` computed as if every customer were still active
    (value / P(alive)), which is what the customer was worth before the doubt. Value at stake: that
    value times the probability of having lost it, 1 - P(alive). Customers already lost are left out:
    those below ``p_alive_above`` (0.2, the P(alive) below which :func:`lifecycle_stages` calls a customer
    lost) and, where the table has a ``lifecycle_stage``, those it calls lost; the list holds customers
    worth winning back, not those already gone. Needs the columns ``value`` and ``p_alive`` (as in the
    value table; with ``silent_for`` also ``T`` and ``recency`` and the time unit, from ``time_unit`` or the
    table's ``attrs``); returns the ``n`` customers most at stake with a ``reason`` each, and the settings
    in ``attrs``. ``value`` may be a column of expected purchases (a log without amounts): the new
    columns are then ``purchases_if_active`` and ``purchases_at_stake`` instead of ``value_if_active``
    and ``value_at_stake``.
    """
    missing = [c for c in (value, "p_alive", *(("T", "recency") if silent_for is not None else ()))
               if c not in table.columns]
    if missing:
        raise DataError("the table lacks columns for the at-risk list", columns=missing)
    if not 0 < top_share <= 1 or not 0 <= p_alive_above < p_alive_below <= 1:
        raise ValueError("need 0 < top_share <= 1 and 0 <= p_alive_above < p_alive_below <= 1")
    unit = time_unit or table.attrs.get("time_unit")
    if silent_for is not None and not unit:
        raise ValueError("silent_for needs the table's time unit: pass time_unit=...")
    v = _series(table[value], value).to_numpy(dtype=np.float64)
    pa = _series(table["p_alive"], "p_alive").to_numpy(dtype=np.float64)
    alive_enough = pa >= max(p_alive_above, 1e-300)
    if "lifecycle_stage" in table.columns:
        alive_enough &= (table["lifecycle_stage"].astype(object) != "lost").to_numpy()
    if_active = np.full(len(v), np.nan)
    if_active[alive_enough] = v[alive_enough] / pa[alive_enough]
    cut = np.quantile(if_active[alive_enough], 1 - top_share) if alive_enough.any() else np.inf
    fallen = pa < p_alive_below
    since = (table["T"] - table["recency"]).to_numpy(dtype=np.float64) if silent_for is not None else None
    silent = since > to_units(silent_for, unit) if silent_for is not None else np.zeros(len(pa), dtype=bool)
    listed = np.flatnonzero(alive_enough & (if_active >= cut) & (fallen | silent))
    what = "purchases" if value.startswith("expected_purchases") else "value"
    worth = "{:.3g} expected purchases" if what == "purchases" else "worth {:,.0f}"
    reasons = [
        "; ".join(([f"P(alive) {pa[i]:.2f}, below {p_alive_below:g}"] if fallen[i] else [])
                  + ([f"no purchase for {since[i]:.0f} {UNIT_WORDS[unit][1]}, over {horizon_words(silent_for, unit)}"]
                     if silent[i] else []))
        + f"; {worth.format(if_active[i])} if active (top {top_share:.0%} of the customers not lost)"
        for i in listed]
    out = table.iloc[listed].assign(**{f"{what}_if_active": if_active[listed],
                                       f"{what}_at_stake": if_active[listed] * (1 - pa[listed]), "reason": reasons})
    out = out.sort_values(f"{what}_at_stake", ascending=False)
    out = out if n is None else out.head(n)
    out.attrs.update(value=value, p_alive_below=p_alive_below, p_alive_above=p_alive_above, top_share=top_share,
                     silent_for=silent_for, at_stake=f"{what}_at_stake", if_active=f"{what}_if_active")
    return out


def value_concentration(value, top: Sequence[float] = (0.1, 0.2)) -> pd.Series:
    """The share of the total value held by the ``top`` fractions of customers ranked by value (the points
    of the Lorenz curve read from the top): ``value_concentration(v)["top 10%"]`` is the share of the 10%
    most valuable. A fraction that splits customers of equal value gives the same share whichever of them
    is counted. Needs a positive total."""
    v = np.sort(_series(value, "value").to_numpy(dtype=np.float64))[::-1]
    total = v.sum()
    if not total > 0:
        raise DataError("value concentration needs a positive total value", columns=["value"])
    cum = np.concatenate([[0.0], np.cumsum(v)])
    out = {}
    for share in top:
        if not 0 < share <= 1:
            raise ValueError(f"each top fraction must be in (0, 1], got {share!r}")
        k = share * len(v)  # customers counted, possibly a fraction of the last one
        whole = int(np.floor(k))
        held = cum[whole] + (k - whole) * (v[whole] if whole < len(v) else 0.0)
        out[f"top {100 * share:.10g}%"] = float(held / total)
    return pd.Series(out, name="share of value")


def net_value(value, acquisition_cost) -> pd.Series:
    """Value minus acquisition cost: one cost for everyone, a Series per customer (aligned by index;
    every customer needs a cost), or an array in the order of ``value``."""
    v = _series(value, "value")
    if np.ndim(acquisition_cost) == 0:
        cost = float(acquisition_cost)
        if not np.isfinite(cost):
            raise DataError("acquisition_cost must be finite")
        return (v - cost).rename("net_value")
    if not isinstance(acquisition_cost, pd.Series):  # an array: one cost per customer, in order
        c = _series(acquisition_cost, "acquisition_cost")
        if len(c) != len(v):
            raise DataError(f"{len(c):,} acquisition costs for {len(v):,} customers", columns=["acquisition_cost"])
        return (v - c.to_numpy()).rename("net_value")
    c = _series(acquisition_cost, "acquisition_cost")  # a Series: aligned by customer
    missing = v.index.difference(c.index)
    if len(missing):
        raise DataError(f"no acquisition cost for {len(missing):,} customers (e.g. {list(missing[:3])})",
                        columns=["acquisition_cost"])
    return (v - c.reindex(v.index)).rename("net_value")
