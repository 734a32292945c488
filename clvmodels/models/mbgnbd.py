"""The MBG/NBD: the BG/NBD in which a customer can drop out at time zero too, right after the first
purchase (Batislam, Denizel & Filiztekin 2007, IJRM 24(3); Hoppe & Wagner 2007, Marketing: Journal of Research and Management).

While active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after every purchase, the first
included, they drop out with probability p ~ Beta(a, b). The BG/NBD lets only repeat purchases end a
customer's life, so that a customer without repeat purchases is always alive (P(alive) = 1 however long
ago they bought); here such a customer may have left at once. Every formula is the BG/NBD's with one more
dropout opportunity (x + 1 in the beta terms): the functions of :mod:`clvmodels.models.bgnbd` with
``dropout_at_zero=True``, so that each is written once. With k = 1 the MBG/CNBD-k is this model.
"""

from __future__ import annotations

from .bgnbd import BetaGeoFit

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeoFit):
    """MBG/NBD purchase and dropout model fitted by maximum likelihood (dropout possible at time zero).

    Parameters
    ----------
    covariates
        Summary columns of static customer attributes, acting as in :class:`clvmodels.BetaGeo`.
    maxiter
        Maximum L-BFGS-B iterations.
    start
        Optional starting values ``{"r", "alpha", "a", "b"}``; default r = a = b = 1 and alpha = the
        median age T.

    Attributes
    ----------
    params_ : dict
        Fitted r, alpha (in the summary's time unit), a, b.
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details.
    """

    model_name = "ModifiedBetaGeo"
    short_name, title = "mbgnbd", "MBG/NBD"
    dropout_at_zero = True
