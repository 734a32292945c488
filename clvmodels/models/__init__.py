"""Maximum-likelihood models on customer summaries: numpy and scipy only."""

from ._mle import FitResult
from .bgnbd import BetaGeo
from .gamma_gamma import GammaGamma
from .persistence import load_model, load_models, save_models

__all__ = ["BetaGeo", "GammaGamma", "FitResult", "load_model", "load_models", "save_models"]
