"""Exceptions and warnings raised by clvmodels.

Every error that comes from the user's data is a :class:`DataError`; it says which rows or columns are
bad and why, so that the command line can print it as one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

__all__ = ["ClvError", "DataError", "ConvergenceError", "NotFittedError", "DataWarning", "SamplingWarning", "warn"]

_MAX_ROWS_SHOWN = 5


class ClvError(Exception):
    """Base class of the errors raised by clvmodels."""


class DataError(ClvError, ValueError):
    """Input data that cannot be used as given.

    Parameters
    ----------
    reason
        What is wrong, in one sentence.
    columns
        The columns concerned, if any.
    rows
        Row positions (0-based, in input order) of the offending rows, if any; the first few are shown.
    n_rows
        How many rows are affected in total (defaults to ``len(rows)``).
    """

    def __init__(
        self,
        reason: str,
        *,
        columns: Sequence[str] = (),
        rows: Sequence[int] = (),
        n_rows: int | None = None,
    ) -> None:
        self.reason = reason
        self.columns = tuple(columns)
        self.rows = tuple(int(r) for r in rows)
        self.n_rows = len(self.rows) if n_rows is None else int(n_rows)
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.columns:
            parts.append("column" + ("s " if len(self.columns) > 1 else " ") + ", ".join(repr(c) for c in self.columns))
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows[:_MAX_ROWS_SHOWN])
            more = f" and {self.n_rows - min(len(self.rows), _MAX_ROWS_SHOWN)} more" if self.n_rows > _MAX_ROWS_SHOWN else ""
            parts.append(f"{self.n_rows} row{'s' if self.n_rows != 1 else ''} "
                         f"(0-based row {shown}{more})")
        where = (" [" + "; ".join(parts) + "]") if parts else ""
        return f"{self.reason}{where}"


class ConvergenceError(ClvError, RuntimeError):
    """The optimiser or sampler did not converge; the message says what to try."""


class NotFittedError(ClvError, ValueError, AttributeError):
    """A model was used for prediction before ``fit`` was called."""


class DataWarning(UserWarning):
    """Data that can be used but deserves a look (duplicated rows, a violated model assumption)."""


class SamplingWarning(UserWarning):
    """A Bayesian fit whose sampler diagnostics (R-hat, ESS, divergences) fail common thresholds; the
    message says what to change (``warnings.simplefilter("ignore", SamplingWarning)`` silences it)."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message: str, category: type[Warning] = DataWarning) -> None:
    """Issue a warning attributed to the first caller outside clvmodels (not to library internals)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the caller of this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
