"""clvmodels: probabilistic customer-lifetime-value models, and proof of which forecast to trust.

``import clvmodels`` is light: it loads numpy, scipy, pandas and DuckDB, never PyMC, PyTensor or
matplotlib (the Bayesian and plotting layers are loaded when first used).
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .data import (
    SimulatedData,
    TransactionLog,
    calibration_holdout,
    datasets,
    load_cdnow,
    load_cdnow_summary,
    read_transactions,
    rfm_summary,
    simulate,
)
from .errors import ConvergenceError, DataError, DataWarning, NotFittedError

# The model layer (scipy) is loaded on first use, so that `import clvmodels` stays quick for scripts
# that only summarise logs.
_LAZY = {
    "BetaGeo": "clvmodels.models",
    "GammaGamma": "clvmodels.models",
    "FitResult": "clvmodels.models",
    "load_model": "clvmodels.models",
    "load_models": "clvmodels.models",
    "save_models": "clvmodels.models",
    "customer_value": "clvmodels.value",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clvmodels' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

try:
    __version__ = _version("clvmodels")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "DataError",
    "DataWarning",
    "ConvergenceError",
    "NotFittedError",
    "TransactionLog",
    "read_transactions",
    "rfm_summary",
    "calibration_holdout",
    "load_cdnow",
    "load_cdnow_summary",
    "simulate",
    "SimulatedData",
    "datasets",
    "BetaGeo",
    "GammaGamma",
    "FitResult",
    "load_model",
    "load_models",
    "save_models",
    "customer_value",
]
