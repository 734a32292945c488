"""The Bayesian models' sampler options and their one check, used by the models, their files and the CLI
(numpy only: no PyMC here)."""

from __future__ import annotations

import numpy as np

__all__ = ["SAMPLERS", "SAMPLER_OPTIONS", "check_sampler_option"]

SAMPLERS = ("nutpie", "pymc")

#: What each sampler option must be (``None`` is also allowed for ``random_seed`` and ``target_accept``).
SAMPLER_OPTIONS = {"draws": "a positive integer", "tune": "a positive integer", "chains": "a positive integer",
                   "random_seed": "a non-negative integer", "target_accept": "between 0 and 1 (exclusive)",
                   "sampler": " or ".join(map(repr, SAMPLERS))}


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_sampler_option(name: str, value):
    """Return ``value`` if it is a valid value of sampler option ``name`` (:data:`SAMPLER_OPTIONS`), else
    raise ValueError naming the option."""
    if value is None and name in ("random_seed", "target_accept"):
        return value
    if name == "sampler":
        ok = isinstance(value, str) and value in SAMPLERS
    elif name == "target_accept":
        ok = (_is_integer(value) or isinstance(value, (float, np.floating))) and 0 < value < 1
    else:
        ok = _is_integer(value) and value >= (0 if name == "random_seed" else 1)
    if not ok:
        raise ValueError(f"{name} must be {SAMPLER_OPTIONS[name]}, got {value!r}")
    return value
