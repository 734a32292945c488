"""Gamma-Gamma spend that depends on purchasing: each customer's spend scale follows their frequency.

Gamma-Gamma (Fader, Hardie & Lee 2005, JMR 42(4)) assumes a customer's spend per purchase independent of
how often they buy; on many logs frequent buyers spend more (or less) per purchase (CDNOW: Spearman 0.21
among repeat buyers). Here the spend scale's gamma rate parameter follows the customer's number of repeat
purchases x as a covariate does (Fader & Hardie 2007's parametrisation, :mod:`.covariate_effects`):

    nu_i ~ Gamma(q, gamma_i),  gamma_i = gamma (1 + x_i)^c = gamma exp(c log(1 + x_i)),

so a customer's expected spend per purchase before seeing their spend, p gamma_i / (q - 1), is (1 + x)^c
times that of a customer without repeat purchases; c = 0 is Gamma-Gamma. The model is conditional on x:
the likelihood of the mean spend given x (FHL 2005 JMR eq. 3 with gamma_i), fitted to the repeat buyers,
and E[Z | x, zbar] = (gamma_i + x zbar) p / (p x + q - 1) (eq. 5 with gamma_i). A customer without repeat
purchases (x = 0) gets p gamma / (q - 1): the trend in x carried to x = 0. The fit reports the
likelihood-ratio test of c = 0 (Gamma-Gamma) and takes the ``covariates`` option as Gamma-Gamma does.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from ._base import as_float_array
from .gamma_gamma import GammaGamma

__all__ = ["FrequencyGammaGamma", "log_frequency"]


def log_frequency(summary: pd.DataFrame) -> np.ndarray:
    """log(1 + x), x the summary's frequency (repeat purchases): the spend scale's covariate."""
    return np.log1p(as_float_array(summary, "frequency"))


class FrequencyGammaGamma(GammaGamma):
    """Gamma-Gamma whose spend scale follows purchase frequency, gamma_i = gamma (1 + x_i)^c (module
    docstring), fitted by maximum likelihood on the customers with frequency > 0.

    Parameters
    ----------
    maxiter, start, covariates
        As for :class:`clvmodels.GammaGamma` (further covariates act on gamma_i alongside frequency).

    Attributes
    ----------
    params_ : dict
        p, q, gamma (a customer without repeat purchases' scale) and ``"gamma: log(1 + frequency)"``, c.
    """

    model_name = "FrequencyGammaGamma"
    short_name, title = "gamma-gamma-frequency", "Gamma-Gamma with frequency"
    derived_covariates: ClassVar[dict] = {"log(1 + frequency)": log_frequency}
    plain_class = GammaGamma
