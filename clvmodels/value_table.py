"""The customer value table (the CLV management table of CRM practice): one row per customer, everything a
business asks of it, ready to export.

Columns, in order: with ``history`` (:func:`clvmodels.data.rfm.purchase_history`) the customer's first and
last purchase dates, days since the last purchase, purchase days and total spend; the summary's RFM
(frequency, recency, T, monetary_value); from :func:`clvmodels.customer_value` P(alive), expected spend,
and for each horizon expected purchases and discounted value (with ``interval=``, each followed by its
bounds, ``... lower 90%`` and ``... upper 90%``); then from :mod:`clvmodels.segments` the value tier (on the
first horizon's value), the lifecycle stage, the R/F/M scores and named RFM segment, the at-risk flag and
its reason, the ``segment_columns``, the value x satisfaction quadrant when satisfaction is given, and value
net of acquisition cost when a cost is given (``attrs["ranked_by"]`` names the column the tier and the
at-risk flag rank). :data:`COLUMN_DICTIONARY` says what each column means and in which unit; :func:`write_value_table` writes it as a second sheet of an Excel file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .draws import DEFAULT_DRAWS
from .errors import DataError
from .files import atomic_path, table_format, write_table
from .segments import at_risk, lifecycle_stages, net_value, rfm_scores, value_satisfaction_quadrants, value_tiers
from .scoring import score_customers
from .timeunits import Horizon, horizon_label
from .value import customer_value

__all__ = ["value_table", "write_value_table", "column_dictionary", "COLUMN_DICTIONARY"]

#: Each column's meaning and unit, by name or pattern (H: a horizon such as 1y; L: an interval level).
#: "unit" is the summary's time unit (weeks by default); money is the log's currency.
COLUMN_DICTIONARY: dict[str, tuple[str, str]] = {
    "customer_id": ("the customer's id in the log", ""),
    "first_purchase": ("date of the first purchase", "date"),
    "last_purchase": ("date of the last purchase up to the summary's end", "date"),
    "days_since_last_purchase": ("days from the last purchase to the summary's end", "days"),
    "purchase_days": ("days with a purchase (purchases on one day count once): frequency + 1", "days"),
    "total_spend": ("everything the customer spent, the first purchase included, net of returns", "money"),
    "frequency": ("repeat purchase days: purchase days after the first", "count"),
    "recency": ("time from the first to the last purchase (the models' recency; CRM recency is "
                "days_since_last_purchase)", "unit"),
    "T": ("time from the first purchase to the summary's end: the customer's age", "unit"),
    "litt": ("sum of the log gaps between repeat purchases (for the CNBD-k models)", "log unit"),
    "monetary_value": ("mean spend per repeat purchase day (the first purchase left out)", "money"),
    "p_alive": ("probability the customer has not dropped out, by the chosen purchase model", "probability"),
    "expected_spend": ("expected spend per future purchase, by the spend model", "money"),
    "expected_purchases_H": ("expected purchases over the horizon H", "count"),
    "value_H": ("expected spend over the horizon H, discounted to today", "money"),
    "X lower L / X upper L": ("the bounds of X's central L interval (the estimates' sampling distribution "
                              "or posterior draws)", "as X"),
    "value_tier": ("low, medium or high by the first horizon's value (cuts: its median and 80th percentile; "
                   "equal values share a tier)", ""),
    "purchase_tier": ("for a log without amounts, low, medium or high by the first horizon's expected purchases "
                      "(cuts as for value_tier)", ""),
    "lifecycle_stage": ("new, growing, mature, declining or lost: lost or declining when P(alive) or the time "
                        "since the last purchase says so (the lifecycle rules in the glossary)", ""),
    "R": ("RFM recency score, 1-5 (5: bought most recently; at most 1 when lost, 2 when declining)", "score"),
    "F": ("RFM frequency score, 1-5 (1: no repeat purchase)", "score"),
    "M": ("RFM monetary score, 1-5 (1: no repeat purchase)", "score"),
    "rfm_score": ("the scores as one code (R, F, M; R and F for a log without amounts)", ""),
    "rfm_segment": ("named RFM segment (champions, loyal, ...)", ""),
    "at_risk": ("a valuable customer whose P(alive) has fallen, or who has been silent too long, and who is not "
                "lost yet (the At risk section's rule)", "true/false"),
    "at_risk_reason": ("why the customer is flagged", ""),
    "reason": ("why the customer is on the at-risk list", ""),
    "value_if_active": ("the first horizon's value if the customer is still active: value / P(alive) (at-risk "
                        "list)", "money"),
    "value_at_stake": ("value if active x (1 - P(alive)): what is lost if the customer has gone (at-risk list)",
                       "money"),
    "purchases_if_active": ("for a log without amounts, the first horizon's expected purchases if the customer "
                            "is still active (at-risk list)", "count"),
    "purchases_at_stake": ("purchases if active x (1 - P(alive)) (at-risk list)", "count"),
    "cohort": ("month of the first purchase", ""),
    "quadrant": ("value x satisfaction quadrant", ""),
    "net_value_H": ("value_H minus the acquisition cost", "money"),
}


#: The summary's time units as a dictionary writes them.
UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months"}


def _entry(column: str) -> tuple[str, str]:
    """A column's meaning and unit key (:data:`COLUMN_DICTIONARY`), horizons and interval bounds filled in."""
    bound = re.fullmatch(r"(.+) (lower|upper) ([0-9.]+%)", column)
    key = re.sub(r"_[0-9.]+[A-Za-z]+$", "_H", bound.group(1) if bound else column)
    meaning, unit = COLUMN_DICTIONARY.get(key, ("a customer attribute from the log", ""))
    if bound:
        meaning = f"the {bound.group(2)} bound of {bound.group(1)}'s central {bound.group(3)} interval"
    if key.endswith("_H"):
        horizon = column.split()[0].rsplit("_", 1)[1]
        meaning = meaning.replace("the horizon H", f"the horizon {horizon}").replace("value_H", f"value_{horizon}")
    return meaning, unit


def column_dictionary(table: pd.DataFrame, currency: str | None = None) -> pd.DataFrame:
    """The data dictionary of ``table``'s columns: column, meaning, unit (a column the dictionary does not
    know, such as a segment column from the log, is "a customer attribute from the log"). Durations are in
    the table's time unit (``attrs``), money in ``currency`` (default: "money (the log's currency)")."""
    time_unit = UNIT_NAMES.get(table.attrs.get("time_unit"), "the summary's time unit")
    units = {"unit": time_unit, "log unit": f"log {time_unit}", "money": currency or "money (the log's currency)"}
    rows = []
    for column in [table.index.name or "customer_id", *table.columns]:
        meaning, unit = _entry(column)
        rows.append({"column": column, "meaning": meaning, "unit": units.get(unit, unit)})
    return pd.DataFrame(rows)


def value_table(purchase_model, spend_model, summary: pd.DataFrame, horizons: Sequence[Horizon] = ("1y", "2y", "3y"),
                annual_discount_rate: float = 0.10, *, satisfaction=None, acquisition_cost=None,
                interval: float | None = None, time_unit: str | None = None, max_draws: int = DEFAULT_DRAWS,
                history: pd.DataFrame | None = None, segment_columns: Sequence[str] = (),
                silent_for: Horizon | None = None) -> pd.DataFrame:
    """Build the customer value table (see the module docstring), indexed like ``summary``.

    Parameters
    ----------
    purchase_model, spend_model
        Fitted models (maximum-likelihood or Bayesian), as for :func:`clvmodels.customer_value`. Without
        a spend model (a log without amounts) the table forecasts purchases alone: no spend, value, M
        score, quadrant or net value; the tiers and the at-risk list rank the first horizon's expected
        purchases instead of its value.
    summary
        Customer summary with frequency, recency, T and monetary_value.
    horizons, annual_discount_rate, interval, time_unit, max_draws
        Passed to :func:`clvmodels.customer_value`.
    satisfaction
        Optional satisfaction score per customer (Series aligned by index): adds ``quadrant``.
    acquisition_cost
        Optional cost, one number or one per customer: adds ``net_value_<h>`` for each horizon.
    history
        From :func:`clvmodels.data.rfm.purchase_history` at the summary's end: the first columns.
    segment_columns
        Columns of ``summary`` (customer attributes such as a channel or the cohort) carried into the table.
    silent_for
        The at-risk flag also alerts on valuable customers without a purchase for longer than this
        (:func:`clvmodels.segments.at_risk`).
    """
    unit = time_unit or getattr(purchase_model, "time_unit_", None) or summary.attrs.get("time_unit")
    labels = [horizon_label(h, unit) for h in horizons]
    if spend_model is not None:
        values = customer_value(purchase_model, spend_model, summary, horizons, annual_discount_rate,
                                time_unit=unit, interval=interval, max_draws=max_draws)
        first = f"value_{labels[0]}"
    else:
        given = [name for name, v in (("satisfaction", satisfaction), ("acquisition_cost", acquisition_cost))
                 if v is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} act on customer values, which need a spend model")
        values = score_customers(summary, purchase_model, None, horizons, interval=interval, max_draws=max_draws)
        values.attrs.update(time_unit=unit, interval=interval)
        first = f"expected_purchases_{labels[0]}"
    rfm_cols = [c for c in ("frequency", "recency", "T", "monetary_value") if c in summary.columns]
    parts = [summary[rfm_cols], values]
    if history is not None:
        missing = summary.index.difference(history.index)
        if len(missing):
            raise DataError(f"the purchase history lacks {len(missing):,} of the summary's customers (e.g. "
                            f"{list(missing[:3])}): take both at the same end")
        parts.insert(0, history.reindex(summary.index))
    absent = [c for c in segment_columns if c not in summary.columns]
    if absent:
        raise DataError("segment columns are not in the summary", columns=absent)
    table = pd.concat(parts, axis=1)
    table[f"{'value' if spend_model is not None else 'purchase'}_tier"] = value_tiers(table[first])
    table["lifecycle_stage"] = lifecycle_stages(summary, table["p_alive"], time_unit=unit)
    table = pd.concat([table, rfm_scores(summary, lifecycle=table["lifecycle_stage"])], axis=1)
    risk = at_risk(table, value=first, n=None, silent_for=silent_for, time_unit=unit)
    table["at_risk"] = table.index.isin(risk.index)
    table["at_risk_reason"] = ""
    table.loc[risk.index, "at_risk_reason"] = risk["reason"]
    for column in segment_columns:
        table[column] = summary[column]
    if satisfaction is not None:
        table["quadrant"] = value_satisfaction_quadrants(table[first], satisfaction)
    if acquisition_cost is not None:
        for lab in labels:
            table[f"net_value_{lab}"] = net_value(table[f"value_{lab}"], acquisition_cost).to_numpy()
    table.attrs.update(values.attrs, ranked_by=first)
    return table


#: Excel number formats by the dictionary's unit key.
EXCEL_FORMATS = {"money": "#,##0.00", "probability": "0.000", "unit": "0.0", "log unit": "0.0"}


def write_value_table(table: pd.DataFrame, path: str | os.PathLike, currency: str | None = None) -> Path:
    """Write the table as CSV, Parquet or Excel (.xlsx, needs openpyxl), by extension, atomically. An Excel
    file has two sheets: "customers" (header frozen, filters on, numbers formatted by unit: money with two
    decimals, probabilities with three) and "data dictionary" (:func:`column_dictionary`, money in
    ``currency``)."""
    if table_format(path) != "excel":
        return write_table(table, path)
    import importlib.util

    if importlib.util.find_spec("openpyxl") is None:
        raise DataError("writing .xlsx needs openpyxl: pip install 'clvmodels[excel]'")
    from openpyxl.utils import get_column_letter

    dictionary = column_dictionary(table, currency)
    shown = table.reset_index()
    with atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            shown.to_excel(writer, sheet_name="customers", index=False)
            dictionary.to_excel(writer, sheet_name="data dictionary", index=False)
            sheet = writer.sheets["customers"]
            sheet.freeze_panes = "B2"
            sheet.auto_filter.ref = sheet.dimensions
            for k, column in enumerate(shown.columns, start=1):
                letter = get_column_letter(k)
                sheet.column_dimensions[letter].width = min(40, max(10, len(str(column)) + 2))
                fmt = EXCEL_FORMATS.get(_entry(str(column))[1]) or (
                    "0.00" if str(column).startswith(("expected_purchases", "purchases_")) else None)
                if fmt and pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(shown[column]):
                    for cell in sheet[letter][1:]:
                        cell.number_format = fmt
            words = writer.sheets["data dictionary"]
            for letter, width in (("A", 28), ("B", 90), ("C", 12)):
                words.column_dimensions[letter].width = width
    return Path(path)
