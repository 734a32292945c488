"""The model chosen by validation: rolling-origin backtests inside the calibration window.

:func:`select_model` cuts the log at several origins before ``calibration_end`` (each with a holdout of
``horizon`` that ends by ``calibration_end``: the transactions after it, which the user will score on,
are never read), fits every candidate purchase model and spend model on each origin's calibration
summary, and scores their forecasts of the holdout:

- purchase models by the mean log predictive score of each customer's holdout count, log P(Y = y |
  history) (a strictly proper scoring rule for counts: Gneiting & Raftery 2007, JASA 102(477); Czado,
  Gneiting & Held 2009), with the RMSE, MAE and aggregate error of the expected counts beside it;
- spend models by the mean absolute error of each buying customer's holdout spend given their holdout
  purchases (their number times the model's expected spend per purchase), with the RMSE beside it.

The winners (the highest mean log score; the lowest mean spend error) are refitted on the whole
calibration window and returned as a :class:`SelectedModel`, which answers the contract's calls and
carries the evidence: every candidate's scores per origin, and the ranking.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .data.rfm import RFM_COLUMNS, calibration_holdout, rfm_summary
from .data.transactions import TransactionLog, read_transactions, to_date
from .draws import DEFAULT_DRAWS, bound_names
from .errors import ConvergenceError, DataError, DataWarning, warn
from .models import MODEL_REGISTRY
from .metrics import log_score, score, tie_key, total_interval
from .models._base import Estimator
from .progress import progress
from .timeunits import Horizon, horizon_days, horizon_label, unit_days

__all__ = ["select_model", "SelectedModel", "default_purchase_candidates", "default_spend_candidates"]

#: A customer's predictive probability of their holdout count is floored here before its log (a model that
#: gives an observed count probability 0 scores log(1e-300), about -690, not minus infinity).
PROBABILITY_FLOOR = 1e-300


def default_purchase_candidates(covariates: Sequence[str] | None = None) -> list[Estimator]:
    """Every registered continuous-time purchase model (BG/NBD first), and with ``covariates`` each one that
    takes them again with them."""
    # (the simplest first, so that a tie keeps it: the CNBD-k models, with their k, after the models they generalise)
    plain = sorted((cls() for cls in MODEL_REGISTRY.values() if cls.role == "purchase" and not cls.discrete_time),
                   key=lambda m: len(m.option_names()))
    with_covariates = [type(m)(covariates=list(covariates)) for m in plain
                       if covariates and "covariates" in m.option_names()]
    return plain + with_covariates


def default_spend_candidates(covariates: Sequence[str] | None = None) -> list[Estimator]:
    """Every registered spend model (Gamma-Gamma and the one whose spend follows frequency), and with
    ``covariates`` each again with them."""
    plain = [cls() for cls in MODEL_REGISTRY.values() if cls.role == "spend"]
    return plain + [type(m)(covariates=list(covariates)) for m in plain if covariates]


def _origins(first, end, horizon_days_: float, folds: int, step_days: float) -> list:
    """Origins (cut-off dates) whose holdout of ``horizon_days_`` ends by ``end``, ``step_days`` apart,
    the latest first; each leaves at least as much history before it as its holdout."""
    out = []
    for k in range(folds):
        cut = end - timedelta(days=int(np.ceil(horizon_days_ + k * step_days)))
        if (cut - first).days >= horizon_days_:
            out.append(cut)
    return out


class SelectedModel:
    """The purchase model (and spend model) chosen by :func:`select_model`, fitted on the whole calibration
    window, answering the contract's calls; and the evidence for the choice.

    Attributes
    ----------
    purchase_model_, spend_model_
        The fitted winners (``spend_model_`` None for a log without amounts).
    evidence_ : DataFrame
        Every candidate's score per origin: columns ``origin``, ``role`` (purchase or spend),
        ``candidate``, ``metric``, ``value``, ``message``; a failed fit's ``metric`` is ``"error"``, its value
        NaN and its message the error's.
    ranking_ : DataFrame
        Per role and candidate: each metric's mean over the origins, the origins it won, its rank.
    reason_ : str
        Why the winners won, in one paragraph.
    origin_totals_ : DataFrame
        Per origin, the winners' forecast of the holdout's total purchases and spend, and the actual totals
        (``purchases_expected``, ``purchases_actual``, ``spend_expected``, ``spend_actual``): what
        :meth:`totals` calibrates its intervals on.
    calibration_end_, horizon_days_
        The window and the holdout length the origins used.
    """

    def __init__(self, purchase_model, spend_model, evidence: pd.DataFrame, ranking: pd.DataFrame, reason: str,
                 calibration_end, horizon_days_: float, origin_totals: pd.DataFrame) -> None:
        self.purchase_model_ = purchase_model
        self.spend_model_ = spend_model
        self.evidence_ = evidence
        self.ranking_ = ranking
        self.reason_ = reason
        self.calibration_end_ = calibration_end
        self.horizon_days_ = horizon_days_
        self.origin_totals_ = origin_totals

    def __repr__(self) -> str:
        spend = f", {self.spend_model_.label}" if self.spend_model_ is not None else ""
        return f"SelectedModel({self.purchase_model_.label}{spend})"

    def summary(self) -> str:
        """The choice and its evidence as text: the reason, then each role's ranking with its metrics."""
        parts = [self.reason_]
        for role in ("purchase", "spend"):
            table = self.ranking_[self.ranking_["role"] == role].drop(columns="role").dropna(axis=1, how="all")
            if not table.empty:
                parts += ["", f"{role} models (means over the origins):",
                          table.to_string(float_format=lambda v: f"{v:.4f}")]
        return "\n".join(parts)

    def totals(self, summary: pd.DataFrame, horizons: Sequence[Horizon] = ("1y", "2y", "3y"), level: float = 0.9,
               annual_discount_rate: float = 0.10) -> pd.DataFrame:
        """The customers' total expected purchases (and discounted value, with a spend model) per horizon,
        with ``level`` intervals calibrated on the winners' totals at the rolling origins
        (:func:`clvmodels.metrics.total_interval`; value's interval from the origins' spend totals).

        The origins' holdouts are ``horizon_days_`` long. A longer horizon's log error is taken to grow with
        the square root of its length, as accumulated independent errors do (its interval's scale is the
        origins' times sqrt(horizon / ``horizon_days_``)); a shorter one keeps the origins' scale. A total
        over a longer horizon cannot be smaller than over a shorter one, so each lower bound is at least
        those of the shorter horizons. The benchmark ``bench_selection.py`` states how often the intervals
        covered the actual totals on CDNOW.

        Returns
        -------
        DataFrame indexed by horizon: ``customers``, ``purchases``, ``purchases lower``, ``purchases upper``
        (with a spend model also ``value``, ``value lower``, ``value upper``), and ``origins``: how many
        origins the purchases' intervals rest on (``value origins``: the value's).
        """
        ot = self.origin_totals_
        value = (self.customer_value(summary, horizons, annual_discount_rate=annual_discount_rate)
                 if self.spend_model_ is not None else None)
        rows, days = [], []
        for h in horizons:
            label = horizon_label(h, self.purchase_model_.time_unit_)
            row = {"horizon": label, "customers": len(summary)}
            days.append(horizon_days(h, self.purchase_model_.time_unit_))
            scale = np.sqrt(max(1.0, days[-1] / self.horizon_days_))
            row["purchases"] = float(value[f"expected_purchases_{label}"].sum() if value is not None
                                     else self.purchase_model_.expected_purchases(summary, h).sum())
            row[bound_names("purchases", level)[0]], row[bound_names("purchases", level)[1]] = total_interval(
                row["purchases"], ot["purchases_expected"], ot["purchases_actual"], level, scale)
            if value is not None:
                row["value"] = float(value[f"value_{label}"].sum())
                row[bound_names("value", level)[0]], row[bound_names("value", level)[1]] = total_interval(
                    row["value"], ot["spend_expected"], ot["spend_actual"], level, scale)
            row["origins"] = int(np.isfinite(ot["purchases_expected"]).sum())
            if value is not None:  # (the spend model may have been fitted at fewer origins)
                row["value origins"] = int(np.isfinite(ot["spend_expected"]).sum())
            rows.append(row)
        table = pd.DataFrame(rows).set_index("horizon")
        shortest_first = np.argsort(days, kind="stable")
        for what in ("purchases", "value"):
            lower = bound_names(what, level)[0]
            if lower in table:
                bounds = table[lower].to_numpy(copy=True)
                bounds[shortest_first] = np.fmax.accumulate(bounds[shortest_first])
                table[lower] = bounds
        return table

    # the contract's calls, by the winners ----------------------------------------------------------
    def p_alive(self, summary, interval=None, max_draws=DEFAULT_DRAWS):
        return self.purchase_model_.p_alive(summary, interval, max_draws)

    def expected_purchases(self, summary, t: Horizon, interval=None, max_draws=DEFAULT_DRAWS):
        return self.purchase_model_.expected_purchases(summary, t, interval, max_draws)

    def purchase_interval(self, summary, t: Horizon, level=0.9, max_draws=DEFAULT_DRAWS):
        return self.purchase_model_.purchase_interval(summary, t, level, max_draws)

    def purchase_probabilities(self, summary, t: Horizon, n_max=10, max_draws=DEFAULT_DRAWS):
        return self.purchase_model_.purchase_probabilities(summary, t, n_max, max_draws)

    def expected_spend(self, summary, interval=None, max_draws=DEFAULT_DRAWS):
        if self.spend_model_ is None:
            raise ValueError("the log had no amounts: no spend model was chosen")
        return self.spend_model_.expected_spend(summary, interval, max_draws)

    def customer_value(self, summary, horizons=("1y", "2y", "3y"), annual_discount_rate: float = 0.10,
                       interval: float | None = None, **options) -> pd.DataFrame:
        """:func:`clvmodels.customer_value` of the two winners."""
        from .value import customer_value

        if self.spend_model_ is None:
            raise ValueError("the log had no amounts: value needs a spend model; expected_purchases is the forecast")
        return customer_value(self.purchase_model_, self.spend_model_, summary, horizons,
                              annual_discount_rate=annual_discount_rate, interval=interval, **options)


def _fit_quietly(template, summary: pd.DataFrame, time_unit: str):
    """A fitted copy of ``template`` (data warnings about the origin's summary, such as Gamma-Gamma's
    correlation note, are the final fit's to give, once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return copy.deepcopy(template).fit(summary, time_unit=time_unit)


def select_model(
    transactions: TransactionLog | pd.DataFrame | str,
    calibration_end: Any = None,
    *,
    horizon: Horizon | None = None,
    folds: int = 3,
    purchase_candidates: Sequence[Estimator] | None = None,
    spend_candidates: Sequence[Estimator] | None = None,
    covariates: Sequence[str] | None = None,
    time_unit: str = "W",
    show_progress: bool = True,
    **read_options: Any,
) -> SelectedModel:
    """Choose the purchase model (and spend model) by rolling-origin validation inside the calibration
    window (module docstring), and fit the winners on the whole window.

    Parameters
    ----------
    transactions
        A :class:`TransactionLog` or anything :func:`read_transactions` reads (with ``read_options``; read
        with ``attributes=`` to offer ``covariates``).
    calibration_end
        The end of the window the choice may look at (default: the log's end). Nothing after it is read.
    horizon
        Each origin's holdout (default: a quarter of the window, in whole weeks).
    folds
        Origins, the latest ``horizon`` before ``calibration_end`` and each earlier one half a horizon
        before the next; an origin with less history before it than its holdout is skipped.
    purchase_candidates, spend_candidates
        Unfitted models to compare (default: :func:`default_purchase_candidates`,
        :func:`default_spend_candidates`; spend only for a log with amounts).
    covariates
        Summary columns (the log's attributes) for the candidates' covariate variants.
    time_unit
        Unit of the summaries.
    """
    if isinstance(transactions, TransactionLog):
        log = transactions
    else:
        read_options.setdefault("amount", "amount")
        log = read_transactions(transactions, **read_options)
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 1:
        raise ValueError(f"folds must be a whole number >= 1, got {folds!r}")
    end = log.observation_end if calibration_end is None else to_date(calibration_end, "calibration_end")
    if end > log.observation_end:
        raise DataError(f"calibration_end {end} is after the end of the log ({log.observation_end})")
    window = (end - log.first_date).days
    h_days = (horizon_days(horizon, time_unit) if horizon is not None
              else max(7.0, 7.0 * np.floor(window / 4 / 7)))
    origins = _origins(log.first_date, end, h_days, folds, h_days / 2)
    if not origins:
        raise DataError(f"the window from {log.first_date} to {end} is too short for a holdout of {h_days:g} days "
                        "with as much history before it: give a shorter horizon= or a later calibration_end")
    purchase = list(purchase_candidates) if purchase_candidates is not None else default_purchase_candidates(covariates)
    spend = ([] if not log.has_amount else
             list(spend_candidates) if spend_candidates is not None else default_spend_candidates(covariates))
    if not purchase:
        raise ValueError("give at least one purchase model")
    wanted = {c for m in (*purchase, *spend) for c in (getattr(m, "covariates", None) or [])}
    missing = sorted(wanted - set(log.attributes))
    if missing:
        raise DataError(f"covariates {', '.join(missing)} are not attributes of the log: read it with "
                        f"read_transactions(..., attributes=[{','.join(missing)}]) (attributes: "
                        f"{', '.join(log.attributes) or 'none'})", columns=missing)
    labels = [m.label for m in (*purchase, *spend)]
    if len(set(labels)) != len(labels):
        raise ValueError(f"candidates repeat: {labels}")
    keep = (*RFM_COLUMNS, *log.attributes)
    rows: list[dict] = []
    forecasts: dict[tuple[str, str], np.ndarray] = {}  # (origin, candidate): each customer's forecast
    actual_totals: dict[str, tuple[float, float]] = {}  # origin: the holdout's total purchases and spend
    with progress(len(origins) * (len(purchase) + len(spend)), "select_model", enabled=show_progress) as bar:
        for cut in origins:
            hold_end = cut + timedelta(days=int(np.floor(h_days)))
            data = calibration_holdout(log, cut, hold_end, time_unit=time_unit)
            summary = data[[c for c in keep if c in data.columns]]
            t = (hold_end - cut).days / unit_days(time_unit)
            y = data["holdout_frequency"].to_numpy(np.float64)
            actual_totals[cut.isoformat()] = (float(y.sum()), float(data["holdout_spend"].sum())
                                              if "holdout_spend" in data else np.nan)
            for model in purchase:
                bar.set_postfix_str(f"{cut} {model.label}")
                scored, forecasts[cut.isoformat(), model.label] = _score_purchase(model, summary, y, t, time_unit,
                                                                                    cut)
                rows += scored
                bar.update()
            for model in spend:
                bar.set_postfix_str(f"{cut} {model.label}")
                scored, forecasts[cut.isoformat(), model.label] = _score_spend(model, summary, data, y > 0,
                                                                                 time_unit, cut)
                rows += scored
                bar.update()
    evidence = pd.DataFrame(rows, columns=["origin", "role", "candidate", "metric", "value", "message"])
    ranking = _ranking(evidence)
    final = rfm_summary(log, end, time_unit)
    final = final[[c for c in keep if c in final.columns]]
    winners, reasons = {}, []
    for role, candidates, metric in (("purchase", purchase, "log_score"), ("spend", spend, "spend_mae")):
        if not candidates:
            continue
        table = ranking[ranking["role"] == role] if len(ranking) else ranking
        if table.empty:  # (every candidate failed at every origin)
            errors = evidence.loc[(evidence["role"] == role) & (evidence["metric"] == "error"), "message"]
            text = (f"no {role} model could be fitted at any origin (first error: {errors.iloc[0]})")
            if role == "purchase":
                raise DataError(text)
            warn(f"{text}: only the purchase model is chosen; spend needs amounts that vary within customers")
            reasons.append(f"{text[0].upper()}{text[1:]}.")
            continue
        best = table.index[0]
        model = next(m for m in candidates if m.label == best)
        winners[role] = copy.deepcopy(model).fit(final, time_unit=time_unit)
        reasons.append(_reason(role, table, metric, len(origins)))
    reason = (f"Chosen by {len(origins)} rolling origin{'s' if len(origins) > 1 else ''} inside the window to "
              f"{end} (holdouts of {h_days:g} days, none after {end}): " + " ".join(reasons))
    totals = _origin_totals(forecasts, actual_totals, *(winners[r].label if r in winners else None
                                                        for r in ("purchase", "spend")))
    return SelectedModel(winners["purchase"], winners.get("spend"), evidence, ranking, reason, end, h_days, totals)


def _origin_totals(forecasts: dict, actual_totals: dict, purchase: str, spend: str | None) -> pd.DataFrame:
    """The winners' total forecasts of each origin's holdout against the actual totals: purchases, and spend
    (each customer's expected purchases times their expected spend per purchase); NaN where a winner could
    not be fitted at that origin."""
    rows = []
    for origin, (purchases, spend_total) in actual_totals.items():
        expected = forecasts.get((origin, purchase))
        per_purchase = forecasts.get((origin, spend)) if spend is not None else None
        rows.append({"origin": origin, "purchases_expected": np.nan if expected is None else float(expected.sum()),
                     "purchases_actual": purchases,
                     "spend_expected": (float(expected @ per_purchase) if expected is not None and
                                        per_purchase is not None else np.nan),
                     "spend_actual": spend_total if spend is not None else np.nan})
    return pd.DataFrame(rows, columns=["origin", "purchases_expected", "purchases_actual", "spend_expected",
                                       "spend_actual"])


def _score_purchase(model, summary, y, t, time_unit, cut) -> tuple[list[dict], np.ndarray | None]:
    """The evidence rows of one purchase candidate at one origin, and its customers' expected purchases
    (None where it could not be fitted)."""
    label, origin = model.label, cut.isoformat()
    try:
        fitted = _fit_quietly(model, summary, time_unit)
        expected = fitted.expected_purchases(summary, t).to_numpy()
        cdf = fitted.purchase_cdf(summary, t, y)
    except (DataError, ConvergenceError, ArithmeticError, ValueError) as exc:
        return [{"origin": origin, "role": "purchase", "candidate": label, "metric": "error", "value": np.nan,
                 "message": str(exc)}], None
    metrics = {"log_score": log_score(cdf["below"].to_numpy(), cdf["at_most"].to_numpy())}
    metrics.update({k: v for k, v in score(expected, y).items() if k in ("rmse", "mae", "aggregate_error_pct")})
    metrics["abs_aggregate_error_pct"] = abs(metrics["aggregate_error_pct"])  # (its mean over origins: no cancelling)
    return [{"origin": origin, "role": "purchase", "candidate": label, "metric": k, "value": v}
            for k, v in metrics.items()], expected


def _score_spend(model, summary, data, buyers, time_unit, cut) -> tuple[list[dict], np.ndarray | None]:
    """The evidence rows of one spend candidate at one origin, and every customer's expected spend per
    purchase (None where it could not be fitted)."""
    label, origin = model.label, cut.isoformat()
    try:
        fitted = _fit_quietly(model, summary, time_unit)
        per_purchase = fitted.expected_spend(summary).to_numpy()
    except (DataError, ConvergenceError, ValueError) as exc:
        return [{"origin": origin, "role": "spend", "candidate": label, "metric": "error", "value": np.nan,
                 "message": str(exc)}], None
    predicted = data["holdout_frequency"].to_numpy(np.float64)[buyers] * per_purchase[buyers]
    actual = data["holdout_spend"].to_numpy(np.float64)[buyers]
    err = predicted - actual
    return [{"origin": origin, "role": "spend", "candidate": label, "metric": k, "value": float(v)}
            for k, v in (("spend_mae", np.mean(np.abs(err))), ("spend_rmse", np.sqrt(np.mean(err ** 2))))], \
        per_purchase


def _ranking(evidence: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric over the origins per (role, candidate), the origins each candidate won, and the
    rank (purchase: highest mean log score; spend: lowest mean spend MAE; a candidate that failed at any
    origin ranks last)."""
    parts = []
    for role, key, better in (("purchase", "log_score", "max"), ("spend", "spend_mae", "min")):
        ev = evidence[evidence["role"] == role]
        fitted = ev[ev["metric"] == key].groupby("candidate")["origin"].nunique()
        # an origin where no candidate could be fitted tells them nothing apart
        ev = ev[ev["origin"].isin(ev.loc[ev["metric"] != "error", "origin"])]
        if ev.empty:
            continue
        table = ev[ev["metric"] != "error"].pivot_table(index="candidate", columns="metric", values="value",
                                                        aggfunc="mean")
        failed = set(ev.loc[ev["metric"] == "error", "candidate"])
        table = table.reindex(list(dict.fromkeys(ev["candidate"])))
        # (scores are compared to 9 significant digits, as in the ranking: every candidate tied with an origin's
        # best wins it, so that a BG/CNBD-k at k = 1, the BG/NBD up to rounding, wins where the BG/NBD does)
        per_origin = ev[ev["metric"] == key].pivot_table(index="origin", columns="candidate", values="value") \
            .apply(lambda column: column.map(tie_key))
        best = per_origin.max(axis=1) if better == "max" else per_origin.min(axis=1)
        won = per_origin.eq(best, axis=0).sum()
        table["origins_won"] = won.reindex(table.index).fillna(0).astype(int)
        table["origins_fitted"] = fitted.reindex(table.index).fillna(0).astype(int)
        table["failed"] = [c in failed for c in table.index]
        # ties, to 9 significant digits, keep the candidates' order (the family's simplest first): a BG/CNBD-k at
        # k = 1 is the BG/NBD up to rounding
        order = table[key].where(~table["failed"]).map(tie_key)
        order = order.sort_values(ascending=better == "min", na_position="last", kind="stable")
        table = table.loc[order.index]
        table.insert(0, "rank", order.rank(method="min", ascending=better == "min", na_option="bottom").astype(int))
        table.insert(0, "role", role)
        parts.append(table)
    return pd.concat(parts) if parts else pd.DataFrame()


def _reason(role: str, table: pd.DataFrame, metric: str, n_origins: int) -> str:
    """Why ``table``'s first candidate won: its score, the origins it won and was fitted at, and the next
    candidate fitted at every origin (a candidate that failed at one is no runner-up, whatever it scored)."""
    best = table.index[0]
    what = "mean log predictive score of the holdout purchases" if role == "purchase" else \
        "mean absolute error of the buyers' holdout spend"
    text = (f"{best} has the {'highest' if role == 'purchase' else 'lowest'} {what} ({table.loc[best, metric]:,.4g}; "
            f"best at {table.loc[best, 'origins_won']} of {n_origins} origins")
    if table.loc[best, "origins_fitted"] < n_origins:
        text += f", and could be fitted at only {table.loc[best, 'origins_fitted']} of them"
    text += ")"
    others = table.index[1:]
    runners = [c for c in others if not table.loc[c, "failed"]]
    if runners:
        runner = runners[0]
        if tie_key(table.loc[runner, metric]) == tie_key(table.loc[best, metric]):
            text += f", tied with {runner} (the same forecasts: the simpler model is kept)"
        else:
            text += f", ahead of {runner} ({table.loc[runner, metric]:,.4g})"
    failed = [c for c in others if table.loc[c, "failed"]]
    if failed:
        text += (f"; {', '.join(failed)} could not be fitted at every origin" + (" and rank" if len(failed) > 1
                 else " and ranks") + " last (the evidence has the errors)")
    return text + "."
