"""Time units, horizons and discount rates: the one place where durations are converted.

A summary has one time unit: ``"D"`` (day), ``"W"`` (week = 7 days) or ``"M"`` (month = 365.25 / 12
days, the mean Gregorian month). Horizons are durations such as ``"1y"``, ``"18M"``, ``"52W"`` or
``"365D"`` and are converted exactly, with 1 year = 365.25 days. A number is taken as a duration already
in the summary's unit.
"""

from __future__ import annotations

import math
import re
from typing import Union

__all__ = [
    "TIME_UNITS",
    "DAYS_PER",
    "unit_days",
    "check_unit",
    "horizon_days",
    "to_units",
    "horizon_label",
    "horizon_words",
    "continuous_discount_rate",
]

#: Length in days of each unit accepted in horizons; only D, W and M may be a summary's unit.
DAYS_PER = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Y": 365.25}
#: The units a summary may be expressed in.
TIME_UNITS = ("D", "W", "M")

_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")
_ALIASES = {
    "d": "D", "day": "D", "days": "D",
    "w": "W", "week": "W", "weeks": "W",
    "m": "M", "month": "M", "months": "M",
    "y": "Y", "year": "Y", "years": "Y",
}

Horizon = Union[str, int, float]


def check_unit(unit: str) -> str:
    """Return the canonical summary unit (``"D"``, ``"W"`` or ``"M"``) or raise ValueError."""
    canon = unit.upper() if isinstance(unit, str) else unit
    if canon not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
    return canon


def unit_days(unit: str) -> float:
    """Length of one summary unit in days."""
    return DAYS_PER[check_unit(unit)]


def horizon_days(horizon: Horizon, unit: str | None = None) -> float:
    """Length of a horizon in days.

    ``"1y"`` is 365.25 days, ``"18M"`` is 18 x 365.25/12 days, ``"52W"`` is 364 days. A bare number is a
    count of ``unit`` (which must then be given).
    """
    if isinstance(horizon, bool):
        raise ValueError(f"not a horizon: {horizon!r}")
    if isinstance(horizon, (int, float)):
        if unit is None:
            raise ValueError(f"horizon {horizon!r} has no unit; write it as e.g. '52W' or '1y'")
        value, key = float(horizon), check_unit(unit)
    else:
        m = _HORIZON.match(str(horizon))
        key = _ALIASES.get(m.group(2).lower()) if m else None
        # "M" means month and "m" too: minutes are never a CLV horizon.
        if m is None or key is None:
            raise ValueError(
                f"cannot read horizon {horizon!r}: use a number and a unit, e.g. '1y', '18M', '52W', '365D'"
            )
        value = float(m.group(1))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"horizon must be a positive duration, got {horizon!r}")
    return value * DAYS_PER[key]


def to_units(horizon: Horizon, unit: str) -> float:
    """A horizon expressed in the summary's time unit (e.g. ``to_units("1y", "W") == 52.178...``)."""
    return horizon_days(horizon, unit) / unit_days(unit)


def horizon_label(horizon: Horizon, unit: str | None = None) -> str:
    """A stable text label for a horizon, used in column names (``"1y"``, ``"52W"``): the number as written
    and the unit's letter (a spelled-out unit, ``"1 year"``, becomes ``"1y"``; ``"2 weeks"``, ``"2W"``)."""
    if isinstance(horizon, str):
        horizon_days(horizon, unit)  # validate
        number, word = _HORIZON.match(horizon).groups()
        return number + (word if len(word) == 1 else _ALIASES[word.lower()].replace("Y", "y"))
    return f"{horizon:g}{check_unit(unit) if unit else ''}"


#: Each unit's name, singular and plural, as a sentence writes a duration.
UNIT_WORDS = {"D": ("day", "days"), "W": ("week", "weeks"), "M": ("month", "months"), "Y": ("year", "years")}


def horizon_words(horizon: Horizon, unit: str | None = None) -> str:
    """A horizon as a sentence writes it: ``"180D"`` is "180 days", ``"1y"`` "1 year", ``26`` in weeks
    "26 weeks"."""
    label = horizon_label(horizon, unit)
    number, letter = _HORIZON.match(label).groups()
    singular, plural = UNIT_WORDS[_ALIASES[letter.lower()] if letter != "M" else "M"]
    return f"{number} {singular if float(number) == 1 else plural}"


def continuous_discount_rate(annual_rate: float, unit: str) -> float:
    """Continuously compounded discount rate per ``unit`` equivalent to an annual rate.

    An annual rate d is delta = ln(1 + d) per year (so that exp(-delta * 1y) = 1 / (1 + d)), scaled to
    the unit by its length in years. Fader, Hardie & Lee (2005, JMR) use delta = ln(1.15)/52 per week;
    with a 365.25-day year this gives ln(1.15) x 7/365.25.
    """
    if not (math.isfinite(annual_rate) and annual_rate > -1):
        raise ValueError(f"annual discount rate must be > -1, got {annual_rate!r}")
    return math.log1p(annual_rate) * unit_days(unit) / DAYS_PER["Y"]
