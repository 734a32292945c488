"""Static customer covariates: summary columns as a numeric design matrix for the models.

A categorical column (text, category or boolean) is dummy-coded: one 0/1 column per level except the
reference level, whose customers are the baseline. The reference is the first level in sorted order
unless one is given, and is stated in :attr:`CovariateDesign.description`. A numeric column is used as
given (no centring or scaling: its coefficient is per unit of the column). Missing or infinite values,
a column with one value only, and, when predicting, a level not seen in fitting are refused with a
:class:`~clvmodels.errors.DataError` that names the customers and the column.

How a model uses the matrix (Fader & Hardie 2007, "Incorporating time-invariant covariates into the
Pareto/NBD and BG/NBD models"): each customer's gamma rate parameter is scaled by exp(-gamma'z), so a
positive coefficient raises the rate it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .columns import SUMMARY_COLUMNS

__all__ = ["CovariateDesign"]

#: Customers named in an error message.
_SHOWN = 5


def _customers(summary: pd.DataFrame, bad: np.ndarray) -> tuple[str, list[int], int]:
    """The first few offending customers' ids as text, their row positions, and how many there are."""
    rows = np.flatnonzero(bad)
    ids = ", ".join(str(c) for c in summary.index[rows[:_SHOWN]])
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"{ids}{more}", rows[:_SHOWN].tolist(), len(rows)


def _is_categorical(values: pd.Series) -> bool:
    return (isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(values)
            or pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values))


class CovariateDesign:
    """The covariate columns of a summary as a design matrix, learnt on the fitting summary.

    Parameters
    ----------
    columns
        Summary columns, each a static customer attribute (channel, region, acquisition cohort, ...).
    reference
        Reference level per categorical column (default: its first level in sorted order).

    Attributes
    ----------
    kinds_
        ``"categorical"`` or ``"numeric"`` per column.
    levels_
        The levels seen in fitting, per categorical column (reference first).
    names_
        The matrix's column names: ``"channel[web]"`` for a level, the column's own name if numeric.
    """

    def __init__(self, columns: Sequence[str], reference: Mapping[str, Any] | None = None) -> None:
        if isinstance(columns, str) or not len(columns):
            raise ValueError("covariates must be a list of column names, e.g. ['channel', 'region']")
        if len(set(columns)) != len(columns):
            raise ValueError(f"covariates name a column twice: {list(columns)}")
        self.columns = list(columns)
        self.reference = dict(reference or {})
        unknown = set(self.reference) - set(self.columns)
        if unknown:
            raise ValueError(f"reference levels given for columns that are not covariates: {sorted(unknown)}")

    def fit(self, summary: pd.DataFrame) -> "CovariateDesign":
        """Learn each column's kind and levels from the fitting summary; return self."""
        self._check_present(summary)
        self.kinds_, self.levels_ = {}, {}
        for col in self.columns:
            values = summary[col]
            self._check_complete(summary, col)
            if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
                raise DataError("a covariate must be numeric or categorical; convert dates to a number or a "
                                "label first (e.g. the acquisition month as text)", columns=[col])
            if _is_categorical(values):
                levels = sorted(pd.unique(values.astype(object)), key=lambda v: (str(type(v)), v))
                if len(levels) < 2:
                    raise DataError(f"a covariate needs at least two levels to estimate an effect; every "
                                    f"customer has {levels[0]!r}", columns=[col])
                ref = self.reference.get(col, levels[0])
                if ref not in levels:
                    raise DataError(f"reference level {ref!r} does not occur; the levels are "
                                    f"{', '.join(map(repr, levels))}", columns=[col])
                self.kinds_[col] = "categorical"
                self.levels_[col] = [ref] + [v for v in levels if v != ref]
            else:
                numbers = values.to_numpy(dtype=np.float64)
                if np.all(numbers == numbers[0]):
                    raise DataError(f"a covariate needs variation to estimate an effect; every customer has "
                                    f"{numbers[0]:g}", columns=[col])
                self.kinds_[col] = "numeric"
        self.names_ = [name for col in self.columns for name in self._names(col)]
        return self

    def _names(self, col: str) -> list[str]:
        if self.kinds_[col] == "numeric":
            return [col]
        return [f"{col}[{level}]" for level in self.levels_[col][1:]]

    def matrix(self, summary: pd.DataFrame) -> np.ndarray:
        """The design matrix of ``summary``'s customers, (customers, len(names_)), float64."""
        if not hasattr(self, "kinds_"):
            raise ValueError("the covariate design is not fitted yet: call fit(summary) first")
        self._check_present(summary)
        parts = []
        for col in self.columns:
            self._check_complete(summary, col)
            values = summary[col]
            if self.kinds_[col] == "numeric":
                if _is_categorical(values):
                    raise DataError("was numeric in fitting and is categorical here", columns=[col])
                parts.append(values.to_numpy(dtype=np.float64)[:, None])
                continue
            levels = self.levels_[col]
            as_object = values.astype(object)
            unseen = ~as_object.isin(levels).to_numpy()
            if unseen.any():
                who, rows, n = _customers(summary, unseen)
                new = ", ".join(map(repr, sorted(pd.unique(as_object[unseen]), key=str)[:_SHOWN]))
                raise DataError(f"level {new} was not seen in fitting (levels: {', '.join(map(repr, levels))}); "
                                f"customers {who}: map it to a level seen in fitting, or refit on a summary that "
                                "has it", columns=[col], rows=rows, n_rows=n)
            parts.append(np.stack([(as_object == level).to_numpy(dtype=np.float64) for level in levels[1:]],
                                  axis=1))
        return np.concatenate(parts, axis=1)

    @property
    def description(self) -> str:
        """One sentence per column: how it is coded (the report's and summaries' wording)."""
        parts = []
        for col in self.columns:
            if self.kinds_[col] == "numeric":
                parts.append(f"{col}: numeric, used as given (an effect per unit)")
            else:
                levels = self.levels_[col]
                parts.append(f"{col}: categorical, {len(levels)} levels, reference {levels[0]!r} "
                             f"(each other level's effect is relative to it)")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """The fitted design as JSON-ready data (model files)."""
        return {"columns": self.columns, "kinds": self.kinds_,
                "levels": {col: [_plain(v) for v in levels] for col, levels in self.levels_.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> "CovariateDesign":
        """The design :meth:`to_dict` wrote."""
        design = cls(list(data["columns"]), {col: levels[0] for col, levels in data["levels"].items()})
        design.kinds_ = dict(data["kinds"])
        design.levels_ = {col: list(levels) for col, levels in data["levels"].items()}
        design.names_ = [name for col in design.columns for name in design._names(col)]
        return design

    def _check_present(self, summary: pd.DataFrame) -> None:
        taken = [c for c in self.columns if c in SUMMARY_COLUMNS]
        if taken:
            raise DataError("a summary's own column cannot be a covariate (frequency, recency, T and the holdout "
                            "columns describe the purchases the model explains or forecasts)", columns=taken)
        missing = [c for c in self.columns if c not in summary.columns]
        if missing:
            others = [str(c) for c in summary.columns if c not in SUMMARY_COLUMNS]
            raise DataError("covariate columns are not in the summary (its other columns: "
                            f"{', '.join(others[:20]) or 'none'}): carry a column of the transaction log with "
                            "read_transactions(..., attributes=[...]), or add one per customer", columns=missing)

    def _check_complete(self, summary: pd.DataFrame, col: str) -> None:
        values = summary[col]
        bad = values.isna().to_numpy()
        if not _is_categorical(values) and not pd.api.types.is_datetime64_any_dtype(values):
            bad = bad | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            who, rows, n = _customers(summary, bad)
            raise DataError(f"covariate values are missing or not finite for customers {who}; fill them "
                            "(e.g. an 'unknown' level) or leave those customers out", columns=[col], rows=rows,
                            n_rows=n)


def _plain(value: Any) -> Any:
    """A level as a JSON value (numpy scalars as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value
