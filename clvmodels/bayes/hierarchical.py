"""Bayesian BG/NBD and Gamma-Gamma in PyMC: one population, or segments partially pooled through
hyper-priors; and the layer the family's Bayesian models share (:class:`PurchaseBayes`,
:mod:`clvmodels.bayes.family`).

Priors (weakly informative, on the log scale so that they act the same in any time unit):

- pooled: log r, log a, log b ~ Normal(0, 2); log alpha ~ Normal(log s, 2) with s the median age T
  (alpha is a time scale);
- hierarchical (``segment=`` a column): each segment's parameters are sampled in coordinates the data
  decorrelate (BG/NBD: log r, log r/alpha, logit a/(a+b), log(a+b); Gamma-Gamma: log p, log q and the
  spend per purchase at the average purchase-spend rate, log(p gamma / q); :meth:`_BayesModel._coordinates`). For each
  coordinate, a population mean ~ Normal(the prior means above in these coordinates, 2), a spread sigma
  and segment values u_s ~ Normal(mu, sigma), so that small segments borrow strength from large ones.
  The spread's prior is HalfNormal(0.5); with fewer than ``CENTRE_MIN_SEGMENTS`` segments, whose spread
  the data hardly inform, Gamma(4, 20) (mean 0.2, 95% in 0.05-0.44), which vanishes at sigma = 0
  (boundary-avoiding, Chung et al. 2013) and so removes the neck of the funnel in (u_s, sigma) where
  samplers diverge. Each segment value is sampled non-centred (u_s = mu + sigma z_s,
  z_s ~ Normal(0, 1)) unless the segment's own data pin it down more tightly than segments differ, in
  which case it is sampled directly (:func:`_segment_values`); the sampler adapts a mass matrix with
  low-rank corrections.

The likelihood is the model's (BG/NBD: FHL 2005 eq. 6) on compressed rows with weights
(:mod:`clvmodels.bayes.logp`, held equal to the numpy version by the tests). Sampling: nutpie by default (:mod:`clvmodels.bayes.sampling`
decides whether compiling nutpie's parallel callback pays), PyMC's NUTS as a fallback (``sampler="pymc"``).
Chains start near the maximum-likelihood estimate (each segment's own where its parameter is centred),
jittered by U(-1, 1) on the unconstrained scale as nutpie does by default.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..draws import DEFAULT_DRAWS, check_max_draws, thin
from ..errors import DataError, DataWarning, SamplingWarning, warn
from ..models._base import Predictor, as_float_array
from ..models._mle import weighted_median
from ..models.rows import compress
from ..models.bgnbd import BetaGeo, BetaGeoPredictions
from ..models.gamma_gamma import GammaGamma, GammaGammaPredictions
from .blas import link_blas
from .imports import import_arviz, import_pymc
from .options import SAMPLER_OPTIONS, check_sampler_option
from .persistence import BAYES_MODELS, load_bayes, save_bayes

__all__ = ["BayesBetaGeo", "BayesGammaGamma", "PurchaseBayes"]

#: Thresholds of the diagnostics warning (Vehtari et al. 2021: R-hat <= 1.01, bulk ESS >= 100 per chain).
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


#: A parameter is sampled centred when its standard error in every segment is this many times smaller
#: than the spread between segments (about 1 is where the two parameterisations break even in theory).
CENTRE_RATIO = 2.0
#: ... and only with this many segments: the spread between fewer is too uncertain to act on.
CENTRE_MIN_SEGMENTS = 5


def _segment_values(mu, sigma, centred: np.ndarray, estimates: np.ndarray):
    """Segment values u_sj ~ Normal(mu_j, sigma_j) of the sampling coordinates, as a (segment, coordinate)
    tensor.

    Where the segments' own data pin a coordinate down more tightly than segments differ
    (``centred[s, j]``), u_sj is sampled directly (centred; it starts at the segment's own estimate,
    ``estimates`` in the sampling coordinates). Elsewhere it is non-centred, u_sj = mu_j + sigma_j z_sj
    with z_sj ~ Normal(0, 1): there the prior dominates, and centring would leave a funnel in
    (u_sj, sigma_j). Each choice gives the sampler the better-conditioned geometry (Papaspiliopoulos,
    Roberts & Skold 2007; Betancourt & Girolami 2015); the model is the same."""
    pm = import_pymc()
    import pytensor.tensor as pt

    n_seg, k = centred.shape
    flat = centred.ravel()
    parts, order = [], []
    for is_centred in (False, True):
        idx = np.flatnonzero(flat == is_centred)
        if not len(idx):
            continue
        cols = idx % k
        if is_centred:
            parts.append(pm.Normal("log_theta_centred", mu[cols], sigma[cols], shape=len(idx),
                                   initval=estimates.ravel()[idx]))
        else:
            parts.append(mu[cols] + sigma[cols] * pm.Normal("z", 0.0, 1.0, shape=len(idx)))
        order.append(idx)
    values = pt.concatenate(parts) if len(parts) > 1 else parts[0]
    return values[np.argsort(np.concatenate(order))].reshape((n_seg, k))


#: NUTS' default target acceptance for a hierarchy of fewer than ``CENTRE_MIN_SEGMENTS`` segments.
FEW_TARGET_ACCEPT = 0.995
#: Gamma(shape, rate) prior of the spread between fewer than ``CENTRE_MIN_SEGMENTS`` segments.
FEW_SPREAD = (4.0, 20.0)


def _spread_prior(n_segments: int, k: int):
    """The between-segment spread sigma_j of each sampling coordinate: HalfNormal(0.5), or Gamma(4, 20)
    with fewer than ``CENTRE_MIN_SEGMENTS`` segments (see the module docstring)."""
    pm = import_pymc()

    if n_segments < CENTRE_MIN_SEGMENTS:
        return pm.Gamma("sigma_u", alpha=FEW_SPREAD[0], beta=FEW_SPREAD[1], dims="coordinate",
                        initval=np.full(k, 0.1))
    return pm.HalfNormal("sigma_u", sigma=0.5, dims="coordinate", initval=np.full(k, 0.1))


class _BayesModel(Predictor):
    """Sampling, diagnostics, segments, draws and persistence shared by the Bayesian models."""

    #: Names of the coordinates a hierarchy is sampled in (:meth:`_coordinates`).
    coordinate_names: tuple[str, ...] = ()
    title = ""
    #: The maximum-likelihood model whose fit starts the chains (``mle_``).
    mle_class: type = type(None)
    _fitted_attribute = "idata_"
    #: A Bayesian model is saved alone, its posterior beside its file (:func:`clvmodels.persistence.save`).
    saved_alone = True
    #: Cost of one row of the likelihood against one of BG/NBD's (the sampler's choice of backend).
    row_cost = 1.0
    #: Checks of a model file's options besides the segment and the sampler's (:mod:`clvmodels.bayes.persistence`).
    option_checks: dict = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.mle_class is not type(None) and not cls.__name__.startswith("_"):  # (a model, not a base)
            BAYES_MODELS[cls.__name__] = cls

    def __init__(self, segment: str | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 sampler: str = "nutpie", random_seed: int | None = None, target_accept: float | None = None, *,
                 covariates: list[str] | None = None) -> None:
        self.segment = segment
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.sampler = sampler
        self.random_seed = random_seed
        self.target_accept = target_accept
        self.covariates = covariates

    @property
    def design_(self):
        """The covariate design (the maximum-likelihood twin's, fitted with the same covariates), or None."""
        return getattr(self.mle_, "design_", None) if hasattr(self, "mle_") else None

    def save(self, path) -> list:
        """Save as JSON metadata plus a netCDF posterior beside it (see :mod:`clvmodels.bayes.persistence`)."""
        return save_bayes(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`."""
        model = load_bayes(path)
        if not isinstance(model, cls):
            raise DataError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # fitting ------------------------------------------------------------------------------------
    def _segment_column(self, summary: pd.DataFrame) -> pd.Series:
        """The summary's segment column (DataError if it has none)."""
        if self.segment not in summary.columns:
            raise DataError(f"the summary has no segment column {self.segment!r}", columns=[self.segment])
        return summary[self.segment]

    def _segments(self, summary: pd.DataFrame) -> tuple[np.ndarray, list]:
        if self.segment is None:
            return np.zeros(len(summary), dtype=np.int64), ["all"]
        col = self._segment_column(summary)
        if col.isna().any():
            rows = np.flatnonzero(col.isna().to_numpy())
            raise DataError("missing segment", columns=[self.segment], rows=rows[:5], n_rows=len(rows))
        found, distinct = pd.factorize(col)  # (the type check once per distinct label, not per customer)
        kept = np.array([isinstance(v, (str, bool, int, float, np.integer, np.floating, np.bool_)) for v in distinct])
        if not kept.all():  # labels a model file keeps as they are: text, numbers, booleans
            rows = np.flatnonzero(~kept[found])
            raise DataError(f"segment labels must be text, numbers or booleans (a model file keeps them as "
                            f"they are), not {type(col.iloc[rows[0]]).__name__}: convert the column first, for "
                            "example a date cohort with .dt.strftime('%Y-%m')", columns=[self.segment],
                            rows=rows[:5], n_rows=len(rows))
        codes, labels = pd.factorize(col, sort=True)
        return codes.astype(np.int64), list(labels)

    def _pooled_log_theta(self, prior_mu: np.ndarray, start: np.ndarray):
        """The log-parameters of the pooled model, with independent Normal(prior_mu, 2) priors, sampled in
        the coordinates the data decorrelate (:meth:`_coordinates`; BG/NBD: r and alpha are strongly
        correlated a posteriori, r and the mean purchase rate r/alpha much less; Gamma-Gamma: q and gamma
        along the spend per purchase). Each map from log-parameters to coordinates has Jacobian
        determinant 1, so the priors on the log-parameters apply unchanged, as a potential."""
        pm = import_pymc()

        u = pm.Flat("u", dims="coordinate", initval=self._coordinates(start[None, :])[0][0])
        log_theta = self._natural(u[None, :])[0]
        pm.Potential("prior", pm.logp(pm.Normal.dist(prior_mu, 2.0), log_theta).sum())
        return log_theta

    def _prepare(self, summary: pd.DataFrame, seg: np.ndarray, time_unit: str | None, weights: np.ndarray | None):
        """Fit the MLE twin; return (compressed data columns, their segment codes, weights, prior means)."""
        raise NotImplementedError

    def _mle_options(self) -> dict:
        """Options of the maximum-likelihood fit that starts the chains (with the covariates, if any)."""
        return {"covariates": self.covariates} if self.covariates else {}

    def _segment_mle_options(self) -> dict:
        """Options of each segment's own maximum-likelihood fit (once the whole summary is fitted; without
        covariates, whose levels a segment may lack: these fits only guide the sampler)."""
        return {k: v for k, v in self._mle_options().items() if k != "covariates"}

    def _total_loglik(self, params, data, seg, w):
        """PyTensor weighted total log-likelihood; ``params`` are scalars or per-segment vectors."""
        raise NotImplementedError

    def fit(self, summary: pd.DataFrame, *, weights=None, time_unit: str | None = None):
        """Sample the posterior given a customer summary (and the segment column, if any). ``weights``
        (array or column name) counts how many customers each row stands for, as in the MLE models."""
        for name in SAMPLER_OPTIONS:
            check_sampler_option(name, getattr(self, name))
        link_blas()
        pm = import_pymc()

        if self.covariates and "covariates" not in self.mle_class.option_names():
            raise DataError(f"{self.title} takes no covariates")
        if self.covariates and self.segment in self.covariates:
            raise DataError(f"{self.segment!r} is the segment column and a covariate: give it as one or the other",
                            columns=[self.segment])
        seg, labels = self._segments(summary)
        if isinstance(weights, str):
            weights = as_float_array(summary, weights)
        elif weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
        groups = seg
        if self.covariates:  # groups of customers sharing their segment and covariates (the rows' codes)
            from ..data.covariates import CovariateDesign

            (group_seg, Zg), groups = _covariate_groups(seg, CovariateDesign(list(self.covariates)).fit(summary)
                                                        .matrix(summary))
        data, useg, w, prior_mu = self._prepare(summary, groups, time_unit, weights)
        k = len(self.param_names)
        start = np.log([self.mle_.params_[name] for name in self.param_names])
        hierarchical = self.segment is not None
        if hierarchical:
            estimates, centred = self._centring(summary, seg, len(labels), weights, time_unit)
            self.centred_ = pd.DataFrame(centred, index=pd.Index(labels, name=self.segment),
                                         columns=list(self.coordinate_names))
        coords = {"param": list(self.param_names), "coordinate": list(self.coordinate_names),
                  "segment": [str(s) for s in labels]}
        if self.covariates:
            coords["coefficient"] = self._effects().coefficient_names
        with pm.Model(coords=coords) as model:
            if hierarchical:
                coords_start = self._coordinates(start[None, :])[0][0]
                mu = pm.Normal("mu_u", mu=self._coordinates(prior_mu[None, :])[0][0], sigma=2.0, dims="coordinate",
                               initval=coords_start)
                sigma = _spread_prior(len(labels), k)
                u = _segment_values(mu, sigma, centred, self._coordinates(estimates)[0])
                log_theta = pm.Deterministic("log_theta", self._natural(u), dims=("segment", "param"))
                theta = pm.math.exp(log_theta)
                params = [theta[:, j] for j in range(k)]
                for j, name in enumerate(self.param_names):
                    pm.Deterministic(name, theta[:, j], dims="segment")
            else:
                log_theta = self._pooled_log_theta(prior_mu, start)
                theta = pm.math.exp(log_theta)
                params = [theta[j] for j in range(k)]
                for j, name in enumerate(self.param_names):
                    pm.Deterministic(name, theta[j])
            if self.covariates:
                params = self._covariate_params(params, group_seg, Zg, hierarchical)
            pm.Potential("loglik", self._total_loglik(params, data, useg, w))
        if self.sampler == "nutpie":
            from . import sampling

            idata = sampling.sample_nutpie(model, draws=self.draws, tune=self.tune, chains=self.chains,
                                           seed=self.random_seed, target_accept=self._target_accept(len(labels)),
                                           rows=len(w) * self.row_cost,
                                           steps_per_draw=30 if hierarchical else 6,
                                           low_rank=hierarchical)
        else:
            with model:
                # (the chains start at the MLE through the variables' initval)
                idata = pm.sample(draws=self.draws, tune=self.tune, chains=self.chains, random_seed=self.random_seed,
                                  progressbar=False, target_accept=self._target_accept(len(labels)))
        self.idata_ = idata
        self.segments_ = labels
        self.time_unit_ = self.mle_.time_unit_
        self._diagnose(self._target_accept(len(labels)))
        return self

    def _effects(self):
        from ..models.covariate_effects import CovariateEffects

        return CovariateEffects(self.param_names, self.mle_class.covariate_signs, self.design_.names_)

    def _covariate_params(self, params: list, group_seg: np.ndarray, Zg: np.ndarray, hierarchical: bool) -> list:
        """PyTensor: each group's parameters (one vector per parameter, over the groups of
        :func:`_covariate_groups`) from the segment's (or the population's) and the coefficients ``coef``
        ~ Normal(0, 2 / reach), reach the covariate's largest |value| (a priori the covariate moves some
        customer's log-parameter by Normal(0, 2), as the log-parameters' own priors allow); the same
        formula as :meth:`clvmodels.models.covariate_effects.CovariateEffects.apply`."""
        pm = import_pymc()
        import pytensor.tensor as pt

        effects = self._effects()
        reach = np.max(np.abs(Zg), axis=0)
        n_cov = len(effects.covariates)
        mle_coef = np.array([self.mle_.params_[n] for n in effects.coefficient_names])
        coef = pm.Normal("coef", 0.0, np.tile(2.0 / reach, len(effects.acted)), dims="coefficient",
                         initval=mle_coef)
        cols = [p[group_seg] if hierarchical else pt.ones(len(Zg)) * p for p in params]
        for e, j in enumerate(effects.acted):
            cols[j] = cols[j] * pt.exp(effects.sign[e] * pt.dot(Zg, coef[e * n_cov:(e + 1) * n_cov]))
        return cols

    def group_draws(self, summary: pd.DataFrame, interval: float | None = None,
                    max_draws: int = DEFAULT_DRAWS) -> tuple[np.ndarray, np.ndarray]:
        """The posterior draws per group of customers sharing their segment and covariates (draw, group,
        parameter), and each customer's group; without covariates, per segment."""
        if not self.covariates:
            return super().group_draws(summary, interval, max_draws)
        base = self.param_draws(interval, max_draws)
        (group_seg, Zg), codes = _covariate_groups(self.segment_index(summary), self.design_.matrix(summary))
        coef = self.idata_.posterior["coef"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        return self._effects().apply(base[:, group_seg, :], thin(coef, max_draws), Zg), codes

    def _segment_fits(self, summary: pd.DataFrame, seg: np.ndarray, n_segments: int,
                      weights: np.ndarray | None, time_unit: str | None) -> list:
        """Each segment fitted alone by maximum likelihood (None where it cannot be fitted)."""
        from ..errors import ConvergenceError

        fits = []
        for s in range(n_segments):
            rows = seg == s
            try:
                fits.append(type(self.mle_)(**self._segment_mle_options()).fit(summary[rows], weights=None if weights is None else weights[rows],
                                                  time_unit=time_unit))
            except (DataError, ConvergenceError):
                fits.append(None)
        return fits

    def _centring(self, summary: pd.DataFrame, seg: np.ndarray, n_segments: int, weights: np.ndarray | None,
                  time_unit: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's own log-parameter estimates (segment, param; NaN where a segment cannot be fitted
        alone) and which segment parameters to sample centred: a parameter whose standard error (log
        scale) is ``CENTRE_RATIO`` times below its spread between segments in every segment, the spread
        estimated robustly from the segments' estimates (their median absolute deviation, as a standard
        deviation, less the median squared standard error). Where any segment cannot be fitted alone, or
        there are fewer than ``CENTRE_MIN_SEGMENTS`` segments, none is centred."""
        k = len(self.param_names)
        est, se = np.full((n_segments, k), np.nan), np.full((n_segments, k), np.nan)
        with warnings.catch_warnings():  # (the whole summary's fit has warned already)
            warnings.simplefilter("ignore", DataWarning)
            fits = self._segment_fits(summary, seg, n_segments, weights, time_unit)
        for s, fit in enumerate(fits):
            if fit is None:
                continue
            theta = np.array([fit.params_[n] for n in self.param_names])
            est[s] = np.log(theta)
            # standard errors in the sampling coordinates (delta method from the log scale)
            jac = self._coordinates(est[s][None, :])[1]
            with np.errstate(invalid="ignore"):
                se[s] = np.sqrt(np.diag(jac[0] @ fit.result_.cov_log @ jac[0].T))
        ok = np.isfinite(est).all(axis=1) & np.isfinite(se).all(axis=1)
        if not ok.all() or n_segments < CENTRE_MIN_SEGMENTS:
            return est, np.zeros((n_segments, k), dtype=bool)
        u = self._coordinates(est)[0]
        # (a robust spread: one segment's degenerate fit, e.g. a and b running off to 1e6, must not count)
        mad = 1.4826 * np.median(np.abs(u - np.median(u, axis=0)), axis=0)
        spread = np.sqrt(np.maximum(mad ** 2 - np.median(se ** 2, axis=0), 0.0))
        # a parameter is centred in every segment or in none (mixing both for one parameter makes the
        # sampler diverge: tests/test_bayes_hierarchy.py)
        return est, np.broadcast_to((CENTRE_RATIO * se < spread).all(axis=0), (n_segments, k)).copy()

    def _target_accept(self, n_segments: int) -> float:
        """NUTS' target acceptance: as given, else 0.8 (the samplers' default) for one population, 0.95 for
        a hierarchy and ``FEW_TARGET_ACCEPT`` for one of fewer than ``CENTRE_MIN_SEGMENTS`` segments. There
        every segment value is non-centred while the spread's posterior is as wide as its prior; where the spread is
        drawn large against segments the data pin down, z_s is confined to a narrow band (an inverted
        funnel), which only smaller steps follow (tests/test_bayes_divergences.py)."""
        if self.target_accept is not None:
            return float(self.target_accept)
        if self.segment is None:
            return 0.8
        return FEW_TARGET_ACCEPT if n_segments < CENTRE_MIN_SEGMENTS else 0.95

    def _coordinates(self, log_theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates in which a hierarchy is sampled, of log-parameters (rows), and their Jacobians
        (row, coordinate, log-parameter). The base class: the log-parameters themselves."""
        n, k = log_theta.shape
        return log_theta.copy(), np.broadcast_to(np.eye(k), (n, k, k)).copy()

    def _natural(self, u):
        """PyTensor: log-parameters (segment, param) from the sampling coordinates (inverse of
        :meth:`_coordinates`)."""
        return u

    # diagnostics --------------------------------------------------------------------------------
    def diagnostics(self) -> pd.DataFrame:
        """Posterior mean, sd, 94% HDI, bulk/tail ESS and R-hat of every parameter (ArviZ)."""
        az = import_arviz()

        self.check_is_fitted()
        return az.summary(self.idata_, var_names=[*self.param_names, *(["coef"] if self.covariates else [])],
                          round_to="none")

    @property
    def divergences_(self) -> int:
        self.check_is_fitted()
        stats = self.idata_.sample_stats
        name = "diverging" if "diverging" in stats else None
        return int(stats[name].sum()) if name else 0

    def _diagnose(self, target_accept: float) -> None:
        """Warn once, with what helps, where the diagnostics fail common thresholds (``target_accept``:
        the value the sampler ran at)."""
        diag = self.diagnostics()
        problems = []
        if (diag["r_hat"] > RHAT_MAX).any():
            problems.append(f"R-hat up to {diag['r_hat'].max():.4f} (> {RHAT_MAX})")
        if (diag["ess_bulk"] < ESS_PER_CHAIN_MIN * self.chains).any():
            problems.append(f"bulk ESS down to {diag['ess_bulk'].min():.0f}")
        advice = []
        if len(problems):
            advice.append(f"draw more (draws={2 * self.draws}, tune={2 * self.tune})")
        if self.divergences_:
            problems.append(f"{self.divergences_} divergent transitions")
            advice.append("divergences mean the sampler could not follow the posterior's curvature: raise "
                          f"target_accept above {target_accept:g} (e.g. {1 - (1 - target_accept) / 2:g}; "
                          "--target-accept on the command line) for smaller steps, and if they persist the model "
                          "needs another parametrisation or prior (for a hierarchy: fewer, larger segments)")
        if problems:
            warn("the sampler's diagnostics fail common thresholds: " + "; ".join(problems) + ". To do: "
                 + "; ".join(advice) + ". Check the data before trusting the posterior.", SamplingWarning)

    #: How the model was fitted, and what :meth:`estimates` shows (the report's captions).
    fit_method = "Bayesian"
    estimates_caption = "posterior mean, sd, 94% HDI, bulk ESS and R-hat"

    def estimates(self) -> pd.DataFrame:
        """The parameters: posterior mean, sd, 94% HDI, bulk ESS and R-hat."""
        return self.diagnostics()[["mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "r_hat"]]

    def fit_statement(self) -> str:
        """One sentence on the sampling: chains, draws, divergences, R-hat, and whether they pass."""
        rhat = float(self.diagnostics()["r_hat"].max())
        ok = rhat <= RHAT_MAX and self.divergences_ == 0
        shown = f"{rhat:.4g}"  # (as the report's tables write it, unless that hides a failed threshold)
        shown = f"{rhat:.5g}" if rhat > RHAT_MAX and float(shown) <= RHAT_MAX else shown
        return (f"{self.chains} chains x {self.draws:,} draws, {self.divergences_:,} divergent transitions, largest "
                f"R-hat {shown}: " + ("the sampler's diagnostics pass." if ok else "the diagnostics fail common "
                "thresholds (R-hat <= 1.01, no divergences); treat these intervals with care."))

    def summary(self) -> str:
        """Diagnostics table, divergences and the sampler settings, as text."""
        diag = self.diagnostics()
        return "\n".join([
            f"Bayesian {self.title} ({'hierarchical over ' + repr(self.segment) if self.segment else 'pooled'}; "
            f"{self.chains} chains x {self.draws:,} draws, {self.sampler})",
            diag.to_string(float_format=lambda v: f"{v:.4g}"),
            f"divergences: {self.divergences_}",
            *([f"covariates: {self.design_.description}"] if self.design_ is not None else []),
        ])

    # predictions --------------------------------------------------------------------------------
    def param_draws(self, interval: float | None = None, max_draws: int = DEFAULT_DRAWS) -> np.ndarray:
        """Posterior draws as an array (draw, segment, parameter), thinned to at most ``max_draws``: the
        same array with or without ``interval`` (a point prediction is the posterior mean)."""
        self.check_is_fitted()
        check_max_draws(max_draws)
        cached = getattr(self, "_draws_cache", None)
        if cached is not None and cached[0] is self.idata_ and cached[1] == max_draws:
            return cached[2]
        post = self.idata_.posterior
        arrays = []
        for name in self.param_names:
            v = post[name].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
            arrays.append(v.reshape(v.shape[0], -1))
        out = thin(np.stack(arrays, axis=-1), max_draws)  # (draw, segment, param): a new array either way
        out.flags.writeable = False
        self._draws_cache = (self.idata_, max_draws, out)
        return out

    @property
    def segment_column(self) -> str | None:
        """The ``segment`` option: the summary column the hierarchy's segments come from."""
        return self.segment

    def segments(self) -> dict[str, list]:
        """``{segment column: segments_}`` for a model by segment; empty for a pooled one."""
        self.check_is_fitted()
        return {self.segment: list(self.segments_)} if self.segment is not None else {}

    def segment_index(self, summary: pd.DataFrame) -> np.ndarray:
        """Each customer's position in ``segments_`` (DataError for a segment not seen in fitting)."""
        if self.segment is None:
            return super().segment_index(summary)
        col = self._segment_column(summary)
        unknown = ~col.isin(self.segments_)
        if unknown.any():
            raise DataError("segment not seen in fitting", columns=[self.segment],
                            rows=np.flatnonzero(unknown.to_numpy())[:5], n_rows=int(unknown.sum()))
        return pd.Index(self.segments_).get_indexer(col)

    def shrinkage(self, summary: pd.DataFrame, interval: float = 0.9) -> pd.DataFrame:
        """Per segment and parameter: customers, the unpooled maximum-likelihood estimate (the segment
        fitted alone; NaN where it cannot be fitted), and the hierarchical posterior mean and interval.
        Small segments' posteriors sit between their own estimate and the population's."""
        self.check_is_fitted()
        if self.segment is None:
            raise ValueError("shrinkage needs a hierarchical model (segment=...)")
        seg = self.segment_index(summary)
        post = self.idata_.posterior
        tail = (1 - interval) / 2
        rows = []
        fits = self._segment_fits(summary, seg, len(self.segments_), None, self.time_unit_)
        for k, (label, fit) in enumerate(zip(self.segments_, fits)):
            part = summary[seg == k]
            unpooled = fit.params_ if fit is not None else {}
            for name in self.param_names:
                draws = post[name].isel(segment=k).to_numpy().ravel()
                rows.append({"segment": label, "customers": len(part), "parameter": name,
                             "unpooled_mle": unpooled.get(name, np.nan), "posterior_mean": draws.mean(),
                             f"lower {interval:.0%}": np.quantile(draws, tail),
                             f"upper {interval:.0%}": np.quantile(draws, 1 - tail),
                             "population_mle": self.mle_.params_[name]})
        return pd.DataFrame(rows)


def _covariate_groups(seg: np.ndarray, Z: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The groups of customers sharing their segment and covariates: ((each group's segment, its covariates
    (groups, covariates)), each customer's group)."""
    from ..models.covariate_effects import patterns

    Zu, pattern = patterns(Z)
    (group_seg, group_pattern), codes = np.unique(np.stack([seg, pattern]), axis=1, return_inverse=True)
    return (group_seg.astype(np.int64), Zu[group_pattern]), codes.ravel().astype(np.int64)


def _pair_coordinates(log_theta: np.ndarray, pairs) -> tuple[np.ndarray, np.ndarray]:
    """Sampling coordinates of log-parameters (rows) by pairs of parameters, and their Jacobians (row,
    coordinate, log-parameter). A ``("rate", i, j)`` pair of a gamma's shape i and scale j gives (log shape,
    log shape/scale): the mean rate, which the data pin down far better than either. A ``("share", i, j)``
    pair of a beta's two parameters gives (logit i/(i+j), log(i+j)): the mean probability and the
    concentration. Each map has Jacobian determinant 1 (up to sign)."""
    n, k = log_theta.shape
    if sorted(i for pair in pairs for i in pair[1:]) != list(range(k)):
        raise ValueError(f"the coordinate pairs {pairs} must cover the {k} parameters once each")
    u, jac = np.empty((n, k)), np.zeros((n, k, k))
    with np.errstate(invalid="ignore"):  # (a segment that cannot be fitted alone: NaN in, NaN out)
        for kind, i, j in pairs:
            li, lj = log_theta[:, i], log_theta[:, j]
            if kind == "rate":
                u[:, i], u[:, j] = li, li - lj
                jac[:, i, i] = jac[:, j, i] = 1.0
                jac[:, j, j] = -1.0
            else:
                u[:, i], u[:, j] = li - lj, np.logaddexp(li, lj)
                share = np.exp(li - u[:, j])
                jac[:, i, i], jac[:, i, j] = 1.0, -1.0
                jac[:, j, i], jac[:, j, j] = share, 1.0 - share
    return u, jac


def _pair_natural(u, pairs):
    """PyTensor: log-parameters (segment, param) from the coordinates of :func:`_pair_coordinates`."""
    pm = import_pymc()
    import pytensor.tensor as pt

    cols: list = [None] * len(pairs) * 2
    for kind, i, j in pairs:
        if kind == "rate":
            cols[i], cols[j] = u[:, i], u[:, i] - u[:, j]
        else:
            cols[i], cols[j] = -pm.math.log1pexp(-u[:, i]) + u[:, j], -pm.math.log1pexp(u[:, i]) + u[:, j]
    return pt.stack(cols, axis=1)


class PurchaseBayes(_BayesModel):
    """A Bayesian purchase model of the family: the data are frequency, recency and T, compressed to
    distinct rows with weights; its parameters come in pairs (``coordinate_pairs``, sampled in the
    coordinates of :func:`_pair_coordinates`); the priors are those of the module docstring, log
    Normal(log s, 2) for the time scales (``time_scales``) and log Normal(0, 2) for the others."""

    #: (kind, i, j) pairs of parameter positions (:func:`_pair_coordinates`).
    coordinate_pairs: tuple = ()
    #: Parameters that are time scales (their prior is centred on the median age).
    time_scales: tuple[str, ...] = ()
    def _prepare(self, summary, seg, time_unit, weights):
        self.mle_ = self.mle_class(**self._mle_options()).fit(summary, weights=weights, time_unit=time_unit)
        x, t_x, T = (as_float_array(summary, c) for c in ("frequency", "recency", "T"))
        (ux, ut, uT, useg), w = compress(x, t_x, T, seg.astype(np.float64), weights=weights)
        scale = np.log(max(weighted_median(T, weights), 1e-3))
        return (ux, ut, uT), useg.astype(np.int64), w, np.array(
            [scale if name in self.time_scales else 0.0 for name in self.param_names])

    def _coordinates(self, log_theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _pair_coordinates(log_theta, self.coordinate_pairs)

    def _natural(self, u):
        return _pair_natural(u, self.coordinate_pairs)


class BayesBetaGeo(BetaGeoPredictions, PurchaseBayes):
    """Bayesian BG/NBD, pooled or hierarchical over a segment column (see the module docstring).

    Sampled in (log r, log r/alpha, logit a/(a+b), log(a+b)): the data pin down the purchase rate r/alpha
    and the mean dropout probability a/(a+b) far better than r and a+b.

    Attributes
    ----------
    idata_ : arviz.InferenceData
        The posterior (parameters on the natural scale, per segment when hierarchical).
    mle_ : BetaGeo
        The maximum-likelihood fit used to start the chains.
    segments_ : list
        Segment labels, in the order of the posterior's ``segment`` dimension.
    """

    mle_class = BetaGeo
    coordinate_names = ("log_r", "log_rate", "logit_dropout", "log_concentration")
    coordinate_pairs = (("rate", 0, 1), ("share", 2, 3))
    time_scales = ("alpha",)
    title = "BG/NBD"

    def _total_loglik(self, params, data, seg, w):
        from .logp import BgnbdRows, bgnbd_total_loglik

        return bgnbd_total_loglik(*params, BgnbdRows(*data, seg, self.dropout_at_zero), w)


class BayesGammaGamma(GammaGammaPredictions, _BayesModel):
    """Bayesian Gamma-Gamma spend model, pooled or hierarchical over a segment column.

    Priors on the log scale: log p ~ Normal(0, 2), log q ~ Normal(log 3, 2) (centred away from q <= 1, where
    mean spend does not exist), log gamma ~ Normal(log m, 2) with m the mean repeat spend (gamma is a
    money scale). Likelihood: FHL (2005, JMR) eq. (3) on the repeat buyers.
    """

    mle_class = GammaGamma
    coordinate_names = ("log_p", "log_q", "log_typical_spend")
    title = "Gamma-Gamma"

    def _prepare(self, summary, seg, time_unit, weights):
        self.mle_ = self.mle_class(**self._mle_options()).fit(summary, weights=weights, time_unit=time_unit)
        x, m = (as_float_array(summary, c) for c in ("frequency", "monetary_value"))
        rep = x > 0
        (ux, um, useg), w = compress(x[rep], m[rep], seg[rep].astype(np.float64),
                                     weights=None if weights is None else weights[rep])
        return (ux, um), useg.astype(np.int64), w, np.array([0.0, np.log(3.0), np.log(float(um.mean()))])

    def _coordinates(self, log_theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p, log q, log(p gamma / q)): p gamma / q = p / E[nu] is the spend per purchase of a customer
        with the average nu, which the data pin down; q and gamma along it form a ridge. (It is the mean
        log spend, log p + log gamma - digamma(q), up to digamma(q) - log q, about -1/(2q); the linear map
        keeps special functions, whose gradients nutpie's compiler cannot take, out of the graph.)"""
        log_p, log_q, log_g = log_theta.T
        u = np.column_stack([log_p, log_q, log_p + log_g - log_q])
        jac = np.broadcast_to(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, -1.0, 1.0]]),
                              (len(log_theta), 3, 3)).copy()
        return u, jac

    def _natural(self, u):
        import pytensor.tensor as pt

        return pt.stack([u[:, 0], u[:, 1], u[:, 2] - u[:, 0] + u[:, 1]], axis=1)

    def _total_loglik(self, params, data, seg, w):
        from .logp import gamma_gamma_total_loglik

        return gamma_gamma_total_loglik(*params, *data, w, seg=seg)
