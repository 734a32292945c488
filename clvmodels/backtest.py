"""Holdout backtests: fit every candidate on data up to a cut-off, forecast, score against what happened.

For each cut-off c, the calibration summary is the log up to c; for each horizon h the actual repeat
purchases and spend of each calibration customer are those in (c, c + h]. Every candidate (the BG/NBD +
Gamma-Gamma models and the heuristic formulas) is fitted on the calibration summary only and forecasts
each customer's purchases and spend over h. A horizon the log does not cover (c + h after its end) is
reported as unavailable, never extrapolated.

Metrics per (cut-off, model, horizon, target in {purchases, spend}):

- ``aggregate_error_pct``: 100 (sum predicted - sum actual) / sum actual;
- ``mae``, ``rmse``: per customer;
- ``wape``: sum |predicted - actual| / sum actual;
- ``spearman``: rank correlation of predicted and actual (NaN when either is the same for everyone);
- ``top_decile_share``: share of the actual total captured by the 10% of customers predicted highest;
- ``cumulative_error_pct`` (purchase models with a tracking curve, purchases only): the error of the
  expected cumulative repeat purchases from each customer's first purchase to c + h, as in Fader,
  Hardie & Lee (2005) figure 3;
- ``coverage`` (purchase models with a ``purchase_interval`` method, such as BG/NBD's predictive
  interval from P(Y(h) = n | history)): share of customers whose actual count lies in the interval.
  Counts are discrete, so a calibrated interval covers at least its level, often well above it when
  most customers buy nothing;
- ``pit_coverage`` (models with a ``purchase_cdf`` method): the same level scored on the randomised
  probability integral transform, U uniform on [P(Y < y), P(Y <= y)] (Czado, Gneiting & Held 2009,
  Biometrics 65(4)): the expected share of customers with U inside [(1 - level)/2, (1 + level)/2].
  A calibrated model scores the level itself, so this one can fail in both directions.

Calibration by decile of the predicted value is in :attr:`BacktestResult.calibration`.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date as _date
from typing import Any

import numpy as np
import pandas as pd

from .data.rfm import RFM_COLUMNS, calibration_holdout
from .data.transactions import TransactionLog, read_transactions, to_date
from .errors import ConvergenceError, DataError, warn
from .files import write_table, write_text
from .metrics import interval_coverage, pit_coverage, score, tie_key
from .models import MODEL_REGISTRY, model_keys
from .models.gamma_gamma import GammaGamma
from .models.heuristics import HEURISTICS
from .progress import progress
from .timeunits import Horizon, horizon_days, horizon_label, unit_days

__all__ = ["Candidate", "AutoCandidate", "default_candidates", "candidate_names", "DEFAULT_CANDIDATES", "backtest",
           "BacktestResult", "score", "interval_coverage", "pit_coverage"]

TARGETS = ("purchases", "spend")


@dataclass
class Candidate:
    """A forecaster to backtest: a purchase model and, optionally, a separate spend model.

    ``purchase`` needs ``fit(summary, time_unit=...)`` and ``expected_purchases(summary, t)``; spend per
    purchase comes from ``spend.expected_spend(summary)`` (or the purchase model's own
    ``expected_spend`` when ``spend`` is None). Templates are copied before every fit.
    """

    label: str
    purchase: Any
    spend: Any = None

    def forecasts_spend(self) -> bool:
        """Whether the candidate forecasts spend: a spend model, or a purchase model with its own."""
        return self.spend is not None or hasattr(self.purchase, "expected_spend")

    def fitted(self, summary: pd.DataFrame, time_unit: str, *, spend: bool = True, log: Any = None,
               cutoff: Any = None) -> tuple[Any, Any]:
        """Fitted copies of the purchase and the spend model (None without ``spend``: purchases only), on
        the calibration ``summary`` (of ``log`` up to ``cutoff``)."""
        purchase = copy.deepcopy(self.purchase).fit(summary, time_unit=time_unit)
        if not spend:
            return purchase, None
        spend_model = copy.deepcopy(self.spend).fit(summary, time_unit=time_unit) if self.spend is not None else purchase
        return purchase, spend_model


class AutoCandidate(Candidate):
    """The model chosen by validation (:func:`clvmodels.select_model`) at each cut-off: its rolling origins
    lie before the cut-off, so the holdout the backtest scores stays unseen. ``options`` go to
    :func:`~clvmodels.select_model` (``folds``, ``horizon``, ``purchase_candidates``, ...). ``selections_``
    keeps each cut-off's :class:`~clvmodels.SelectedModel` (its evidence and calibrated totals)."""

    def __init__(self, label: str = "Chosen by validation", **options: Any) -> None:
        super().__init__(label, None)
        self.options = options
        self.selections_: dict[str, Any] = {}

    def forecasts_spend(self) -> bool:
        return True  # (the spend model chosen alongside)

    def fitted(self, summary: pd.DataFrame, time_unit: str, *, spend: bool = True, log: Any = None,
               cutoff: Any = None) -> tuple[Any, Any]:
        from .selection import select_model

        chosen = select_model(log, cutoff, time_unit=time_unit, show_progress=False, **self.options)
        self.selections_[str(cutoff)] = chosen
        return chosen.purchase_model_, (chosen.spend_model_ if spend else None)


#: The formulas by short name.
FORMULAS = {cls.short_name: cls for cls in HEURISTICS}


def candidate_names() -> tuple[str, ...]:
    """Every name :func:`default_candidates` takes: each registered continuous-time purchase model's short
    name in the order of registration (BG/NBD first; with Gamma-Gamma for spend; BG/BB's summaries by
    period are not the backtest's), and the formulas'."""
    purchase = tuple(key for key, name in model_keys().items()
                     if MODEL_REGISTRY[name].role == "purchase" and not MODEL_REGISTRY[name].discrete_time)
    return purchase + tuple(FORMULAS) + ("auto",)


#: The candidates backtested by default (command line ``--models``): every purchase model with Gamma-Gamma,
#: and the formulas ("auto", the model chosen by validation, on request: it refits every model per origin).
DEFAULT_CANDIDATES = tuple(n for n in candidate_names() if n != "auto")


def default_candidates(names: Sequence[str] = DEFAULT_CANDIDATES, *, spend: bool = True) -> list[Candidate]:
    """Purchase models + Gamma-Gamma by short name ("bgnbd": BG/NBD + Gamma-Gamma; without ``spend``, for a
    log without amounts, the purchase model alone, "BG/NBD"), the formulas, each in its per-customer and
    population forms, and "auto": the models chosen by validation at each cut-off (:class:`AutoCandidate`)."""
    known = candidate_names()
    by_period = [n for n in names if n in model_keys() and n not in known]
    if by_period:
        raise ValueError(f"{by_period[0]} ({MODEL_REGISTRY[model_keys()[by_period[0]]].title}) is fitted on summaries "
                         "by period (whole periods as purchase opportunities); the backtest builds continuous-time "
                         f"summaries, so it scores {', '.join(known)}. To check it out of sample, fit it on a summary by "
                         "period with holdout columns (period_summary(log, period, calibration_end=...); on the "
                         "command line, summarize --period P --calibration-end DATE) and compare its expected "
                         "purchases with them")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown model {', '.join(unknown)}; choose from {', '.join(known)}")
    keys = model_keys()
    out = []
    for name in names:
        if name == "auto":
            out.append(AutoCandidate())
            continue
        if name in FORMULAS:
            for per_customer in (True, False):
                h = FORMULAS[name](per_customer=per_customer)
                out.append(Candidate(h.label, h))
            continue
        model = MODEL_REGISTRY[keys[name]]
        out.append(Candidate(f"{model.title} + Gamma-Gamma", model(), GammaGamma()) if spend
                   else Candidate(model.title, model()))
    return out


def _deciles(predicted: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Mean predicted and actual by decile of the prediction. Tied predictions share their average rank,
    so they land in one decile together: a constant forecast shows one decile, not a made-up lift."""
    from scipy.stats import rankdata

    rank = rankdata(predicted, method="average")
    decile = np.minimum(np.floor((rank - 0.5) / max(len(predicted), 1) * 10).astype(int), 9) + 1
    df = pd.DataFrame({"decile": decile, "predicted": predicted, "actual": actual})
    return df.groupby("decile", as_index=False).mean()


@dataclass
class BacktestResult:
    """Everything a backtest measured.

    Attributes
    ----------
    metrics : DataFrame
        Tidy: cutoff, model, horizon, target, metric, value.
    calibration : DataFrame
        cutoff, model, horizon, target, decile (1 = lowest predicted), predicted and actual means.
    predictions : DataFrame
        Per customer: cutoff, model, horizon, customer_id, calibration frequency, predicted and actual
        purchases and spend.
    unavailable : DataFrame
        cutoff and horizon pairs the log does not cover (not scored).
    failures : DataFrame
        Candidates that could not be fitted at a cut-off (cutoff, model, error, message); the others are
        scored all the same.
    tracking : DataFrame
        For the first cut-off: per period since the first purchase in the log, actual repeat purchases
        and, for purchase models with a tracking curve, expected ones (incremental).
    fits : dict
        Fitted (purchase, spend) models by (cutoff, model label).
    roles : dict
        Each candidate's label -> the role of its purchase forecaster: "purchase" (a probabilistic
        model) or "formula" (a business formula).
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    unavailable: pd.DataFrame
    tracking: pd.DataFrame
    failures: pd.DataFrame
    time_unit: str
    horizons: list[str]
    #: The level of the intervals whose coverage was scored.
    interval: float = 0.9
    #: What was scored: purchases, and spend when the log has amounts.
    targets: tuple[str, ...] = TARGETS
    fits: dict = field(default_factory=dict, repr=False)
    roles: dict = field(default_factory=dict)

    def table(self, metric: str = "mae", target: str = "purchases") -> pd.DataFrame:
        """One metric as a model x horizon table (mean over cut-offs)."""
        sel = self.metrics[(self.metrics["metric"] == metric) & (self.metrics["target"] == target)]
        out = sel.pivot_table(index="model", columns="horizon", values="value", aggfunc="mean", sort=False)
        return out[[h for h in self.horizons if h in out.columns]]

    def summary(self, target: str = "purchases", by: str = "rmse") -> pd.DataFrame:
        """Models ranked per horizon by ``by`` (mean over cut-offs; with several cut-offs also its
        standard deviation), with the other metrics alongside.

        The default is RMSE: every candidate forecasts an expected value (a mean), which squared error
        rewards. MAE rewards medians instead: on holdout counts where most customers buy nothing, a
        forecast near 0 for everyone scores well on MAE while missing most purchases.
        """
        if target not in self.targets:
            raise ValueError(f"{target} was not scored (the log has no amounts): choose from {', '.join(self.targets)}")
        m = self.metrics[self.metrics["target"] == target]
        wide = m.pivot_table(index=["horizon", "model", "cutoff"], columns="metric", values="value", sort=False)
        if by not in wide.columns:
            raise ValueError(f"unknown metric {by!r}; choose from {', '.join(wide.columns)}")
        agg = wide.groupby(level=["horizon", "model"], sort=False).mean()
        if wide.index.get_level_values("cutoff").nunique() > 1:
            agg[f"{by}_sd"] = wide[by].groupby(level=["horizon", "model"], sort=False).std()
        ascending = by not in ("spearman", "top_decile_share")
        key = agg[by].abs() if by.endswith("_pct") else agg[by]
        if by in ("coverage", "pit_coverage"):  # best at the level itself: under- and over-coverage both miss
            key = (agg[by] - self.interval).abs()
        # models equal to 9 significant digits tie (e.g. a CNBD-k whose k = 1 is the BG/NBD), and ties keep
        # the candidates' order: rounding noise decides no rank
        key = key.map(tie_key)
        agg["rank"] = key.groupby(level="horizon").rank(method="min", ascending=ascending,
                                                       na_option="bottom").astype(int)
        order = ["rank", by, f"{by}_sd", "rmse", "mae", "aggregate_error_pct", "cumulative_error_pct", "wape",
                 "spearman", "top_decile_share", "coverage", "pit_coverage"]
        cols = list(dict.fromkeys(c for c in order if c in agg.columns))
        agg = agg[cols].reset_index()
        agg["horizon"] = pd.Categorical(agg["horizon"], categories=self.horizons, ordered=True)
        return agg.sort_values(["horizon", "rank"], kind="stable").reset_index(drop=True)

    def scored_text(self) -> str:
        """Which horizons were scored after which cut-offs, e.g. ``"13W after 1997-09-30; 1y after ..."``."""
        pairs = self.metrics[["horizon", "cutoff"]].drop_duplicates()
        return _pairs_text(pairs, self.horizons)

    def not_scored_text(self) -> str:
        """Which horizons were not scored after which cut-offs, and why ("" when every one was)."""
        if self.unavailable.empty:
            return ""
        log_end = ", ".join(sorted(self.unavailable["log_end"].unique()))
        return (f"Not scored (the log ends {log_end}, nothing is extrapolated): "
                f"{_pairs_text(self.unavailable, self.horizons)}.")

    def to_csv(self, path: str | os.PathLike) -> None:
        """The tidy metrics table as CSV (or Parquet by extension), atomically."""
        write_table(self.metrics, path, index=False)

    def to_html(self, path: str | os.PathLike, **report_options: Any) -> list:
        """The model-comparison report (:func:`clvmodels.report.build_report`) for this backtest: a
        self-contained HTML file, its Markdown twin and the twin's figures; returns the paths written.
        ``report_options`` (``summary=``, ``log=``, ``models=``, ``value_table=``, ``title=``...) add
        sections."""
        from .report import build_report

        return build_report(backtest=self, **report_options).save(path)

    def to_json(self, path: str | os.PathLike) -> None:
        """Metrics, calibration deciles and unavailable horizons as JSON, atomically."""
        def records(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records", date_format="iso"))

        content = {"time_unit": self.time_unit, "horizons": self.horizons, "interval": self.interval,
                   "roles": self.roles, "metrics": records(self.metrics),
                   "calibration": records(self.calibration), "unavailable": records(self.unavailable)}
        write_text(json.dumps(content, indent=1) + "\n", path)


def _pairs_text(pairs: pd.DataFrame, horizons: Sequence[str]) -> str:
    """(horizon, cutoff) pairs as text, one group per horizon in the given order: "2y after A and B"."""
    def listed(items: list[str]) -> str:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    groups = []
    for h in horizons:
        cuts = sorted(pairs.loc[pairs["horizon"] == h, "cutoff"].unique())
        if cuts:
            groups.append(f"{h} after {listed(cuts)}")
    return "; ".join(groups)


def _cutoff_list(log: TransactionLog, calibration_end: Any, cutoffs: Any, shortest_days: float) -> list[_date]:
    first = to_date(calibration_end, "calibration_end")
    if cutoffs is None:
        return [first]
    if isinstance(cutoffs, str):
        step = horizon_days(cutoffs)
        out, k = [], 0
        while True:
            c = (pd.Timestamp(first) + pd.Timedelta(days=float(np.floor(k * step)))).date()
            if (c - log.observation_end).days + np.floor(shortest_days) > 0:  # the rule used for availability
                break
            out.append(c)
            k += 1
        return out or [first]
    return sorted({to_date(c, "cut-off") for c in [calibration_end, *cutoffs]})


def backtest(
    transactions: TransactionLog | pd.DataFrame | str | os.PathLike,
    calibration_end: Any,
    horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
    models: Sequence[Candidate] | None = None,
    *,
    cutoffs: Sequence[Any] | str | None = None,
    time_unit: str = "W",
    interval: float = 0.9,
    show_progress: bool = True,
    **read_options: Any,
) -> BacktestResult:
    """Backtest candidates on one or several calibration cut-offs.

    Parameters
    ----------
    transactions
        A :class:`TransactionLog` or anything :func:`read_transactions` reads (with ``read_options``).
    calibration_end
        The (first) cut-off date.
    horizons
        Durations after each cut-off to forecast and score, e.g. ``["1y", "2y", "3y"]`` or ``["39W"]``.
    models
        Candidates; default :func:`default_candidates` (BG/NBD + Gamma-Gamma and every heuristic).
    cutoffs
        More cut-offs for a spread of results: a list of dates (added to ``calibration_end``), or a step
        such as ``"3M"``: cut-offs every 3 months from ``calibration_end`` while the shortest horizon still
        fits in the log.
    time_unit
        Unit of the summaries.
    interval
        Level of the predictive intervals whose coverage is scored (for candidates that give intervals).
    show_progress
        A progress bar on stderr (when it is a terminal) over cut-offs x models.
    """
    horizons = list(horizons)
    labels_h = [horizon_label(h, time_unit) for h in horizons]
    if len(set(labels_h)) != len(labels_h):
        raise ValueError(f"horizons repeat: {labels_h}")
    days = {lab: horizon_days(h, time_unit) for lab, h in zip(labels_h, horizons)}
    readable = set(inspect.signature(read_transactions).parameters) - {"source"}
    unknown = sorted(set(read_options) - readable)
    if unknown:
        raise TypeError(f"backtest() got an unexpected keyword argument {unknown[0]!r} (candidates go in models=; the "
                        f"other keywords are read_transactions' options: {', '.join(sorted(readable))})")
    if isinstance(transactions, TransactionLog):
        if read_options:
            raise TypeError(f"backtest() got {', '.join(map(repr, read_options))}: options of read_transactions, "
                            "but the log is read already (a TransactionLog)")
        log = transactions
    else:
        read_options.setdefault("amount", "amount")
        log = read_transactions(transactions, **read_options)
    targets = TARGETS if log.has_amount else ("purchases",)
    if not log.has_amount:
        warn("the log has no amounts: the backtest scores purchases only (no spend metrics); read the log with "
             "amount= to score spend too")
    candidates = list(models) if models is not None else default_candidates(spend=log.has_amount)
    if not candidates:
        raise ValueError("give at least one model to backtest")
    if "spend" in targets:
        spendless = [c.label for c in candidates if not c.forecasts_spend()]
        if spendless:
            raise ValueError(f"candidate {spendless[0]!r} forecasts no spend: give it a spend model "
                             "(Candidate(label, purchase, spend=GammaGamma())), or read the log without amounts")
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique: {labels}")
    cuts = _cutoff_list(log, calibration_end, cutoffs, min(days.values()))

    metric_rows, calib_parts, pred_parts, unavailable, failures, fits, roles = [], [], [], [], [], {}, {}
    tracking = pd.DataFrame()
    with progress(len(cuts) * len(candidates), "backtest", enabled=show_progress) as bar:
        for cut in cuts:
            ends = {lab: (pd.Timestamp(cut) + pd.Timedelta(days=float(np.floor(d)))).date() for lab, d in days.items()}
            available = [lab for lab in labels_h if ends[lab] <= log.observation_end]
            unavailable += [{"cutoff": cut.isoformat(), "horizon": lab, "horizon_end": ends[lab].isoformat(),
                             "log_end": log.observation_end.isoformat()} for lab in labels_h if lab not in available]
            if not available:
                bar.update(len(candidates))
                continue
            actual = {lab: calibration_holdout(log, cut, ends[lab], time_unit=time_unit) for lab in available}
            summary = actual[available[0]]
            summary = summary[[c for c in (*RFM_COLUMNS, *log.attributes) if c in summary.columns]]
            for cand in candidates:
                bar.set_postfix_str(f"{cut} {cand.label}")
                try:
                    purchase, spend_model = cand.fitted(summary, time_unit, spend="spend" in targets, log=log,
                                                        cutoff=cut)
                except (DataError, ConvergenceError) as exc:  # one candidate's failure is a result too
                    failures.append({"cutoff": cut.isoformat(), "model": cand.label, "error": type(exc).__name__,
                                     "message": str(exc)})
                    bar.update()
                    continue
                fits[(cut.isoformat(), cand.label)] = (purchase, spend_model)
                roles[cand.label] = purchase.role
                spend_per = spend_model.expected_spend(summary).to_numpy() if spend_model is not None else None
                for lab in available:
                    # the window the actuals are counted in: whole days from the cut-off
                    h_units = (ends[lab] - cut).days / unit_days(time_unit)
                    purchases = purchase.expected_purchases(summary, h_units).to_numpy()
                    pred = {"purchases": purchases}
                    act = {"purchases": actual[lab]["holdout_frequency"].to_numpy(float)}
                    if spend_per is not None:
                        pred["spend"] = purchases * spend_per
                        act["spend"] = actual[lab]["holdout_spend"].to_numpy(float)
                    calibration_metrics = {}
                    if purchase.role == "purchase":  # a model's predictive distribution: both coverages in one pass
                        pc = purchase.purchase_cdf(summary, h_units, act["purchases"])
                        below, at_most = pc["below"].to_numpy(), pc["at_most"].to_numpy()
                        calibration_metrics["coverage"] = interval_coverage(below, at_most, interval)
                        calibration_metrics["pit_coverage"] = pit_coverage(below, at_most, interval)
                    for target in targets:
                        m = score(pred[target], act[target])
                        if target == "purchases":
                            m.update(calibration_metrics)
                        if target == "purchases" and purchase.role == "purchase":
                            expected_total = purchase.expected_cumulative_purchases(
                                -summary["T"].to_numpy(), [h_units], summary=_own(purchase, summary))[0]
                            actual_total = summary["frequency"].sum() + act["purchases"].sum()
                            m["cumulative_error_pct"] = float(100 * (expected_total - actual_total) / actual_total)
                        metric_rows += [{"cutoff": cut.isoformat(), "model": cand.label, "horizon": lab,
                                         "target": target, "metric": k, "value": v} for k, v in m.items()]
                        dec = _deciles(pred[target], act[target])
                        dec.insert(0, "target", target)
                        dec.insert(0, "horizon", lab)
                        dec.insert(0, "model", cand.label)
                        dec.insert(0, "cutoff", cut.isoformat())
                        calib_parts.append(dec)
                    pred_parts.append(pd.DataFrame({
                        "cutoff": cut.isoformat(), "model": cand.label, "horizon": lab,
                        "customer_id": summary.index.to_numpy(), "frequency": summary["frequency"].to_numpy(),
                        **{f"{kind}_{target}": values[target] for target in targets
                           for kind, values in (("predicted", pred), ("actual", act))}}))
                bar.update()
            if tracking.empty:
                tracking = _tracking(log, cut, max(ends[lab] for lab in available), summary, candidates, fits, cut.isoformat(),
                                     time_unit)
    if not metric_rows and failures:
        raise DataError("every candidate failed to fit: " + "; ".join(f"{f['model']}: {f['message']}"
                                                                  for f in failures[:3]))
    if not metric_rows:
        raise DataError(f"no horizon fits in the log after the cut-off(s) {', '.join(c.isoformat() for c in cuts)} "
                        f"(the log ends {log.observation_end}): choose an earlier calibration_end or shorter horizons")
    result = BacktestResult(
        metrics=pd.DataFrame(metric_rows),
        calibration=pd.concat(calib_parts, ignore_index=True),
        predictions=pd.concat(pred_parts, ignore_index=True),
        unavailable=pd.DataFrame(unavailable, columns=["cutoff", "horizon", "horizon_end", "log_end"]),
        failures=pd.DataFrame(failures, columns=["cutoff", "model", "error", "message"]),
        tracking=tracking,
        time_unit=time_unit,
        horizons=labels_h,
        interval=interval,
        targets=targets,
        fits=fits,
        roles=roles,
    )
    if unavailable:
        warn(f"{result.not_scored_text()} Scored: {result.scored_text()}. To score every horizon, choose shorter "
             "horizons or an earlier calibration end.")
    return result


def _own(model, summary: pd.DataFrame) -> pd.DataFrame | None:
    """The summary when ``model``'s customers have parameters of their own (covariates), else None: the
    population's tracking curve is one evaluation for all customers."""
    return summary if getattr(model, "covariates", None) else None


def _tracking(log: TransactionLog, cut: _date, end: _date, summary: pd.DataFrame, candidates, fits, key,
              time_unit: str) -> pd.DataFrame:
    """Actual and expected repeat purchases per period (of one time unit) from the log's first day to
    ``end``, for the customers in the calibration summary."""
    per = unit_days(time_unit)
    daily = log.query(
        "WITH f AS (SELECT customer_id, min(date) AS first FROM {daily} GROUP BY customer_id HAVING min(date) <= $cut) "
        "SELECT date_diff('day', $start, d.date) AS day FROM {daily} AS d JOIN f USING (customer_id) "
        "WHERE d.date > f.first AND d.date <= $end",
        {"cut": cut, "end": end, "start": log.first_date})
    n_periods = int(np.ceil(((end - log.first_date).days + 1) / per))
    period = np.floor(daily["day"].to_numpy(float) / per).astype(int)
    actual = np.bincount(period, minlength=n_periods)[:n_periods]
    out = pd.DataFrame({"period": np.arange(1, n_periods + 1), "actual": actual})
    birth = (cut - log.first_date).days / per - summary["T"].to_numpy()
    for cand in candidates:
        purchase = fits.get((key, cand.label), (None,))[0]  # (None: it failed to fit)
        if purchase is not None and purchase.role == "purchase":
            cum = purchase.expected_cumulative_purchases(birth, out["period"].to_numpy(float),
                                                         summary=_own(purchase, summary))
            out[cand.label] = np.diff(cum, prepend=0.0)
    out.attrs.update(start=log.first_date.isoformat(), cutoff_period=(cut - log.first_date).days / per,
                     time_unit=time_unit)
    return out
