"""Bayesian Pareto/NBD, MBG/NBD, (M)BG/CNBD-k and BG/BB: pooled, or partially pooled over a segment column,
through the layer of :mod:`clvmodels.bayes.hierarchical` (the same priors, sampler, diagnostics, draws and
model files as the Bayesian BG/NBD).

Each is its maximum-likelihood model's predictions (the kernels of :mod:`clvmodels.models`) over posterior
draws, with the likelihood of :mod:`clvmodels.bayes.logp`, which the tests hold equal to the numpy one
with its gradient. Sampling coordinates: a gamma's (shape, scale) as (log shape, log shape/scale), a
beta's (i, j) as (logit i/(i+j), log(i+j)). Time scales (alpha; Pareto/NBD's beta) have log Normal(log of
the median age, 2) priors, the other parameters log Normal(0, 2).

The (M)BG/CNBD-k are sampled at the k their maximum-likelihood fit chooses (``k_``, which is the fit's
``k`` when given: ``BayesBetaGeoCNBD(k=2)``); the timing density's share of the likelihood, which no
parameter changes, is left out of the posterior's log-density.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.bgbb import BetaGeoBetaBinom, BetaGeoBetaBinomPredictions
from ..models.cnbd import BetaGeoCNBD, CNBDPredictions
from ..models.mbgcnbd import ModifiedBetaGeoCNBD
from ..models.mbgnbd import ModifiedBetaGeo
from ..models.pnbd import ParetoNBD, ParetoNBDPredictions
from .hierarchical import BayesBetaGeo, PurchaseBayes

__all__ = ["BayesParetoNBD", "BayesModifiedBetaGeo", "BayesBetaGeoCNBD", "BayesModifiedBetaGeoCNBD",
           "BayesBetaGeoBetaBinom"]


def _weighted_sum(rows, w):
    import pytensor.tensor as pt

    return pt.sum(w * rows)


class BayesParetoNBD(ParetoNBDPredictions, PurchaseBayes):
    """Bayesian Pareto/NBD (Schmittlein, Morrison & Colombo 1987), pooled or hierarchical over ``segment``.

    Sampled in (log r, log r/alpha, log s, log s/beta): the mean purchase and dropout rates.
    Attributes as :class:`clvmodels.BayesBetaGeo`'s (``mle_`` a :class:`clvmodels.ParetoNBD`).
    """

    mle_class = ParetoNBD
    coordinate_names = ("log_r", "log_rate", "log_s", "log_dropout_rate")
    coordinate_pairs = (("rate", 0, 1), ("rate", 2, 3))
    time_scales = ("alpha", "beta")
    title = "Pareto/NBD"
    row_cost = 100.0   # (the integral: 40 nodes per row, about 100 times a BG/NBD row measured)

    def _total_loglik(self, params, data, seg, w):
        from .logp import pnbd_loglik

        return _weighted_sum(pnbd_loglik(*params, *data, seg=seg), w)


class BayesModifiedBetaGeo(BayesBetaGeo):
    """Bayesian MBG/NBD (Batislam, Denizel & Filiztekin 2007): the Bayesian BG/NBD with dropout possible at
    time zero. Attributes as :class:`clvmodels.BayesBetaGeo`'s (``mle_`` a :class:`clvmodels.ModifiedBetaGeo`)."""

    mle_class = ModifiedBetaGeo
    title = "MBG/NBD"
    dropout_at_zero = True


class _BayesCNBD(CNBDPredictions, PurchaseBayes):
    """The Bayesian (M)BG/CNBD-k (module docstring): ``k`` as for the maximum-likelihood fit (None chooses
    it by likelihood), the rest as :class:`clvmodels.BayesBetaGeo`."""

    coordinate_names = ("log_r", "log_rate", "logit_dropout", "log_concentration")
    coordinate_pairs = (("rate", 0, 1), ("share", 2, 3))
    time_scales = ("alpha",)

    #: The ``k`` option is checked as the maximum-likelihood fit checks it (here and in model files).
    option_checks = {"k": BetaGeoCNBD.option_checks["k"]}

    def __init__(self, segment: str | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 sampler: str = "nutpie", random_seed: int | None = None, target_accept: float | None = None, *,
                 covariates: list[str] | None = None, k: int | None = None) -> None:
        super().__init__(segment=segment, draws=draws, tune=tune, chains=chains, sampler=sampler,
                         random_seed=random_seed, target_accept=target_accept, covariates=covariates)
        self.k = k

    @property
    def k_(self) -> int:
        """The Erlang shape k sampled at: the maximum-likelihood fit's."""
        self.check_is_fitted()
        return int(self.mle_.k_)

    @property
    def row_cost(self) -> float:
        return float(getattr(self.mle_, "k_", 1)) + 1.0

    def _mle_options(self) -> dict:
        return {**super()._mle_options(), "k": self.k}

    def _segment_mle_options(self) -> dict:
        return {"k": int(self.mle_.k_)}   # (each segment alone at the k the whole fit chose)

    def _total_loglik(self, params, data, seg, w):
        from .logp import cnbd_loglik

        return _weighted_sum(cnbd_loglik(*params, *data, seg=seg, k=int(self.mle_.k_),
                                         dropout_at_zero=self.dropout_at_zero), w)


class BayesBetaGeoCNBD(_BayesCNBD):
    """Bayesian BG/CNBD-k (Reutterer, Platzer & Schröder 2021): Erlang-k inter-purchase times."""

    mle_class = BetaGeoCNBD
    title = "BG/CNBD-k"


class BayesModifiedBetaGeoCNBD(_BayesCNBD):
    """Bayesian MBG/CNBD-k (Reutterer, Platzer & Schröder 2021): the BG/CNBD-k with dropout possible at
    time zero."""

    mle_class = ModifiedBetaGeoCNBD
    title = "MBG/CNBD-k"
    dropout_at_zero = True


class BayesBetaGeoBetaBinom(BetaGeoBetaBinomPredictions, PurchaseBayes):
    """Bayesian BG/BB (Fader, Hardie & Shang 2010) for a summary by period, pooled or hierarchical.

    Sampled in (logit alpha/(alpha+beta), log(alpha+beta), logit gamma/(gamma+delta), log(gamma+delta)):
    the mean transaction and dropout probabilities and their concentrations.
    """

    mle_class = BetaGeoBetaBinom
    coordinate_names = ("logit_transact", "log_transact_concentration", "logit_dropout", "log_concentration")
    coordinate_pairs = (("share", 0, 1), ("share", 2, 3))
    title = "BG/BB"

    @property
    def row_cost(self) -> float:
        """One term per opportunity left after the last transaction, at most (the likelihood's columns)."""
        return 1.0 + getattr(self, "max_gap_", 1.0)

    def _prepare(self, summary: pd.DataFrame, seg, time_unit, weights):
        out = super()._prepare(summary, seg, time_unit, weights)
        (_, t_x, n), *_ = out
        self.max_gap_ = float(np.max(n - t_x, initial=1.0))
        return out

    def _total_loglik(self, params, data, seg, w):
        from .logp import bgbb_loglik

        return _weighted_sum(bgbb_loglik(*params, *data, seg=seg), w)
