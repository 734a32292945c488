"""Maximum-likelihood models on customer summaries: numpy and scipy only.

Every module of this package is imported here, so that each model class registers itself
(:data:`clvmodels.models.persistence.MODEL_REGISTRY`): a new model is one new module.
"""

import importlib
import pkgutil

from ._mle import FitResult
from .bgnbd import BetaGeo
from .gamma_gamma import GammaGamma
from .persistence import MODEL_REGISTRY, load_model, load_models, model_keys, save_models

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f".{_module.name}", __name__)

__all__ = ["BetaGeo", "GammaGamma", "FitResult", "load_model", "load_models", "save_models", "MODEL_REGISTRY",
           "model_keys"]
