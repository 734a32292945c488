"""Bundled CDNOW data and a simulator of customers of every purchase model, with Gamma-Gamma spending.

CDNOW (Fader, Hardie & Lee 2005): customers who made their first purchase at the CDNOW web site in the
first quarter of 1997, followed to 1998-06-30. The files ship inside the package (gzip-compressed,
byte-identical once decompressed to the copies distributed in the MIT-licensed ``lifetimes`` wheel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..timeunits import check_unit, horizon_days, unit_days
from .processes import PROCESSES, draw_latent, draw_purchases

__all__ = ["load_cdnow", "load_cdnow_summary", "simulate", "simulate_summary", "SimulatedData", "CDNOW_PARAMS",
           "SPEND_PARAMS",
           "CDNOW_CALIBRATION_END", "CDNOW_HOLDOUT_END"]

#: Calibration and holdout ends used in the papers (weeks 39 and 78 of the CDNOW cohort).
CDNOW_CALIBRATION_END = "1997-09-30"
CDNOW_HOLDOUT_END = "1998-06-30"

#: Published maximum-likelihood estimates on the CDNOW sample, per week: Gamma-Gamma (Fader, Hardie & Lee
#: 2005, JMR; Fader & Hardie 2013 note), the default spend of every simulation.
SPEND_PARAMS = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}
#: The same with BG/NBD (Fader, Hardie & Lee 2005, Marketing Science, section 5): the default simulation.
CDNOW_PARAMS = {**PROCESSES["bgnbd"].defaults, **SPEND_PARAMS}

_FILES = {
    "sample": "CDNOW_sample.txt.gz",
    "master": "CDNOW_master.txt.gz",
    "summary": "cdnow_customers_summary_with_transactions.csv.gz",
}


def _open(name: str):
    return resources.files("clvmodels.data").joinpath("_cdnow", _FILES[name]).open("rb")


def load_cdnow(which: str = "sample") -> pd.DataFrame:
    """The CDNOW transaction log.

    Parameters
    ----------
    which
        ``"sample"``: the 1/10 sample of 2,357 customers used in the papers (6,919 transactions);
        ``customer_id`` is the sample's id (1..2357, as in the papers' summary file).
        ``"master"``: all 23,570 customers (69,659 transactions).

    Returns
    -------
    DataFrame
        One row per transaction: ``customer_id`` (int), ``date`` (datetime64), ``amount`` (dollars)
        and ``quantity`` (number of CDs). Several transactions of one customer on one day are separate
        rows here; :func:`clvmodels.read_transactions` merges them into one purchase.
    """
    if which == "sample":
        names = ["master_id", "customer_id", "date", "quantity", "amount"]
    elif which == "master":
        names = ["customer_id", "date", "quantity", "amount"]
    else:
        raise ValueError(f"which must be 'sample' or 'master', got {which!r}")
    with _open(which) as fh:
        df = pd.read_csv(fh, sep=r"\s+", header=None if which == "sample" else 0, names=names,
                         compression="gzip", dtype={"date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df[["customer_id", "date", "amount", "quantity"]].astype(
        {"customer_id": "int64", "amount": "float64", "quantity": "int64"})


def load_cdnow_summary() -> pd.DataFrame:
    """The papers' own calibration summary of the CDNOW sample (39 weeks, to 1997-09-30, in weeks).

    Columns renamed to this package's names: x -> frequency, t_x -> recency, T, zbar -> monetary_value.
    Values are rounded to two decimals in the source file.
    """
    with _open("summary") as fh:
        df = pd.read_csv(fh, compression="gzip")
    df = df.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    df = df.set_index("customer_id")
    df["frequency"] = df["frequency"].astype("int64")
    return df[["frequency", "recency", "T", "monetary_value"]]


@dataclass(frozen=True)
class SimulatedData:
    """A simulated transaction log and the truth behind it.

    Attributes
    ----------
    transactions : DataFrame
        customer_id, date, amount (and segment when segments were given), sorted by customer and date.
    customers : DataFrame
        Per customer: segment, first_purchase (date), ``lambda_`` (purchase rate per unit), ``p_dropout``
        (or the Pareto/NBD's dropout rate ``mu_``; neither for the NBD), ``nu`` (spend scale),
        ``dropout_time`` (units after the first purchase, NaN if still alive at ``end``) and ``n_repeat``
        (repeat purchases before ``end``, counted in continuous time).
    end : Timestamp
        The last day of the log.
    params : dict
        The population parameters used, per segment.
    time_unit : str
        The unit the rates are in.
    model : str
        The purchase process (:data:`clvmodels.data.processes.PROCESSES`).
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    end: pd.Timestamp
    params: dict[str, dict[str, float]]
    time_unit: str
    model: str = "bgnbd"


def _model_params(model: str, params: Mapping[str, float] | None) -> dict[str, float]:
    """The parameters of a simulation: the model's defaults and the CDNOW spend, or ``params`` (which must
    hold the model's and the spend's parameters)."""
    if model not in PROCESSES:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(PROCESSES)}")
    if params is None:
        if not PROCESSES[model].defaults:
            raise ValueError(f"the {model} simulation has no default parameters: pass params")
        return {**PROCESSES[model].defaults, **SPEND_PARAMS}
    out = dict(params)
    missing = (set(PROCESSES[model].params) | set(SPEND_PARAMS)) - set(out)
    if missing:
        raise ValueError(f"params is missing {sorted(missing)}")
    return out


def _draw_segment(model: str, n: int, params: Mapping[str, float], horizon: np.ndarray,
                  rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Simulate n customers in continuous time (units): purchases from ``model``'s process
    (:mod:`clvmodels.data.processes`), each purchase's value Gamma(p, nu) with nu ~ Gamma(q, gamma)
    (Fader, Hardie & Lee 2005, JMR, section 3; Colombo & Jiang 1999). Returns the per-customer truth
    (with ``nu``) and the purchase list (customer index, time since the first purchase, amount)."""
    latent = draw_latent(model, n, params, rng)
    nu = rng.gamma(params["q"], 1.0 / params["gamma"], n)
    history, idx, times = draw_purchases(model, latent, params, horizon, rng)
    amounts = rng.gamma(params["p"], 1.0 / nu[idx])
    traits = {k: v for k, v in latent.items() if k != "lifetime"}
    return {**traits, "nu": nu, **history}, idx, times, amounts


def simulate(
    n_customers: int,
    params: Mapping[str, float] | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    start: Any = "2020-01-01",
    acquisition: str = "12W",
    duration: str = "2y",
    time_unit: str = "W",
    segments: Mapping[str, tuple[float, Mapping[str, float]]] | None = None,
    model: str = "bgnbd",
) -> SimulatedData:
    """Simulate a transaction log from a purchase model and Gamma-Gamma spending.

    Parameters
    ----------
    n_customers
        Number of customers.
    params
        Population parameters of ``model`` (``r, alpha, a, b`` for BG/NBD, rates per ``time_unit``) and
        ``p, q, gamma`` (Gamma-Gamma). Default: the model's published CDNOW fit (weekly) and CDNOW's
        Gamma-Gamma (:data:`CDNOW_PARAMS` for BG/NBD).
    rng
        A ``numpy.random.Generator`` or an integer seed. Required: every draw is reproducible.
    start
        First possible day of a first purchase.
    acquisition
        Window over which first purchases are spread uniformly (a cohort); ``"1D"`` makes one cohort.
    duration
        Length of the whole log from ``start``; the log ends on ``start + duration`` (inclusive).
    time_unit
        The unit of the rates in ``params``.
    segments
        Optional ``{name: (share, overrides)}``: customers are split by share (rounded, shares summing to
        1) and each segment uses ``params`` updated with its ``overrides``. Adds a ``segment`` column.
    model
        The purchase process, by the model's short name: ``"bgnbd"`` (default), ``"mbgnbd"``,
        ``"bgcnbd"`` and ``"mbgcnbd"`` (with ``k`` in ``params``), ``"pnbd"`` or ``"nbd"``
        (:data:`clvmodels.data.processes.PROCESSES`).

    Notes
    -----
    Purchases happen in continuous time and are written as calendar days (time truncated to the day),
    so two purchases of one customer on one day become one purchase day once the log is read; this
    matters only for customers buying several times a day.
    """
    if rng is None:
        raise ValueError("simulate needs an explicit rng (numpy Generator or integer seed)")
    rng = np.random.default_rng(rng)
    unit = check_unit(time_unit)
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    base = _model_params(model, params)
    if segments:
        shares = np.array([s for s, _ in segments.values()], dtype=float)
        if np.any(shares <= 0) or not np.isclose(shares.sum(), 1.0):
            raise ValueError("segment shares must be positive and sum to 1")
        counts = np.floor(shares * n_customers).astype(int)
        counts[np.argmax(shares)] += n_customers - counts.sum()
        seg_params = {name: {**base, **dict(over)} for name, (_, over) in segments.items()}
    else:
        counts = np.array([n_customers])
        seg_params = {"all": base}

    days = unit_days(unit)
    acq_units = horizon_days(acquisition) / days
    total_units = horizon_days(duration) / days
    if acq_units > total_units:
        raise ValueError("acquisition window is longer than the whole log")
    start_day = pd.Timestamp(start).normalize()
    end_day = start_day + pd.Timedelta(days=int(np.floor(total_units * days)))
    # Observation ends at the start of the last day, so that T in a summary at ``end`` is exact.
    end_units = (end_day - start_day).days / days

    tx_parts, cust_parts, offset = [], [], 0
    for (name, sp), n in zip(seg_params.items(), counts):
        if n == 0:
            continue
        birth_day = np.floor(rng.uniform(0.0, acq_units * days, n))  # first purchase on a whole day
        horizon = end_units - birth_day / days
        truth, idx, times, amounts = _draw_segment(model, n, sp, horizon, rng)
        ids = offset + idx + 1
        # floor(birth + t) = birth + floor(t) for a whole-day birth: exact calendar days
        day = birth_day[idx] + np.floor(times * days)
        tx = pd.DataFrame({"customer_id": ids,
                           "date": start_day + pd.to_timedelta(day, unit="D"),
                           "amount": amounts})
        cust = pd.DataFrame({"customer_id": offset + np.arange(n) + 1,
                             "first_purchase": start_day + pd.to_timedelta(birth_day, unit="D"), **truth})
        if segments:
            tx["segment"] = name
            cust.insert(1, "segment", name)
        tx_parts.append(tx)
        cust_parts.append(cust)
        offset += n
    transactions = pd.concat(tx_parts, ignore_index=True).sort_values(["customer_id", "date"], kind="stable")
    transactions = transactions.reset_index(drop=True)
    customers = pd.concat(cust_parts, ignore_index=True).set_index("customer_id")
    return SimulatedData(transactions, customers, end_day, seg_params, unit, model)


def simulate_summary(
    n_customers: int,
    params: Mapping[str, float] | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    T: Any = 52.0,
    model: str = "bgnbd",
) -> pd.DataFrame:
    """Simulate customer summaries directly in continuous time (no calendar, no same-day merging).

    Parameters
    ----------
    n_customers
        Number of customers.
    params
        As in :func:`simulate` (default: the model's published CDNOW fit); rates per unit of ``T``.
    rng
        Generator or seed (required).
    T
        Each customer's age at the end of observation: a number, or an array of ``n_customers`` ages.
    model
        The purchase process, as in :func:`simulate`.

    Returns
    -------
    DataFrame
        Indexed by customer_id (1..n): frequency, recency (time of the last repeat purchase after the
        first, 0 if none), T, litt (the sum of the logs of the gaps between purchases, 0 if none) and
        monetary_value (mean of the repeat purchases' values, 0 if none), plus the truth (``lambda_``,
        ``p_dropout`` or ``mu_``, ``nu``).
    """
    if rng is None:
        raise ValueError("simulate_summary needs an explicit rng (numpy Generator or integer seed)")
    rng = np.random.default_rng(rng)
    p = _model_params(model, params)
    ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    if np.any(~np.isfinite(ages) | (ages < 0)):
        raise ValueError("T must be finite and >= 0")
    truth, idx, times, amounts = _draw_segment(model, n_customers, p, ages, rng)
    order = np.lexsort((times, idx))
    idx, times, amounts = idx[order], times[order], amounts[order]
    repeat = times > 0  # the first purchase is at time 0 (and is excluded, as in the papers)
    recency = np.zeros(n_customers)
    np.maximum.at(recency, idx[repeat], times[repeat])
    spend = np.bincount(idx[repeat], weights=amounts[repeat], minlength=n_customers)
    gaps = np.diff(times, prepend=0.0)
    with np.errstate(divide="ignore"):
        litt = np.bincount(idx[repeat], weights=np.log(gaps[repeat]), minlength=n_customers)
    freq = truth["n_repeat"]
    monetary = np.divide(spend, freq, out=np.zeros(n_customers), where=freq > 0)
    latent = {k: v for k, v in truth.items() if k not in ("dropout_time", "n_repeat")}
    return pd.DataFrame({"frequency": freq, "recency": recency, "T": ages, "litt": litt, "monetary_value": monetary,
                         **latent}, index=pd.RangeIndex(1, n_customers + 1, name="customer_id"))
