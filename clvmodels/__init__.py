"""clvmodels: probabilistic customer-lifetime-value models, and proof of which forecast to trust.

``import clvmodels`` is light: it loads numpy, scipy, pandas and DuckDB, never PyMC, PyTensor or
matplotlib (the Bayesian and plotting layers are loaded when first used).
"""

from .data import (
    SimulatedData,
    TransactionLog,
    acquisition_cohorts,
    calibration_holdout,
    datasets,
    load_cdnow,
    load_cdnow_summary,
    load_donations,
    period_summary,
    read_transactions,
    rfm_summary,
    simulate,
)
from .errors import ConvergenceError, DataError, DataWarning, NotFittedError, SamplingWarning
from .version import __version__

from .models import BetaGeo, FitResult, GammaGamma, load_model, load_models, save_models
from .value import customer_value
from .persistence import load, save
from .backtest import BacktestResult, backtest  # noqa: E402 - binds clvmodels.backtest to the function
from .selection import SelectedModel, select_model

#: Modules loaded on first use (they import matplotlib, openpyxl or PyMC), as attributes: ``clv.plots``.
_LAZY_MODULES = ("plots", "report", "segments", "value_table", "scoring", "spark")

def __getattr__(name: str):
    # The Bayesian layer imports PyMC: loaded on first use, never by `import clvmodels`.
    if name.startswith("Bayes"):
        from .bayes.persistence import BAYES_MODELS  # (importing clvmodels.bayes registers them)

        if name in BAYES_MODELS:
            return BAYES_MODELS[name]
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    from .models import MODEL_REGISTRY  # every model class, by name: clv.NBD

    if name in MODEL_REGISTRY:
        return MODEL_REGISTRY[name]
    raise AttributeError(f"module 'clvmodels' has no attribute {name!r}")

__all__ = [
    "__version__",
    "DataError",
    "DataWarning",
    "SamplingWarning",
    "ConvergenceError",
    "NotFittedError",
    "TransactionLog",
    "read_transactions",
    "rfm_summary",
    "calibration_holdout",
    "period_summary",
    "acquisition_cohorts",
    "load_cdnow",
    "load_donations",
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
    "save",
    "load",
    "customer_value",
    "backtest",
    "BacktestResult",
    "select_model",
    "SelectedModel",
]
