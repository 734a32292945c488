"""PyMC and ArviZ imported without ArviZ's import-time notice.

ArviZ 0.23 warns, once a day per machine (a stamp file in the user's cache), with a FutureWarning at import
that its own API is being refactored. It is about ArviZ's API, which clvmodels calls for the user, so there
is nothing the user could act on; PyMC imports ArviZ, so the notice would come from any Bayesian fit. The
functions here import them with that one warning, by its message, ignored; every other warning passes.
"""

from __future__ import annotations

import functools
import warnings
from types import ModuleType

__all__ = ["import_arviz", "import_pymc"]

#: The start of ArviZ's notice (after its leading newline).
ARVIZ_NOTICE = r"\s*ArviZ is undergoing a major refactor"


@functools.cache
def import_arviz() -> ModuleType:
    """The ``arviz`` module, imported once without its refactor notice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ARVIZ_NOTICE, FutureWarning)
        import arviz

    return arviz


@functools.cache
def import_pymc() -> ModuleType:
    """The ``pymc`` module, imported once after :func:`import_arviz` (which it imports)."""
    import_arviz()
    import pymc

    return pymc
