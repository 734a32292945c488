"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV: Using
Iso-Value Curves", JMR 42(4), section 3; Colombo & Jiang 1999).

Each transaction value of a customer is Gamma(p, nu); across customers nu ~ Gamma(q, gamma). It is
fitted to the customers with repeat purchases, on x (frequency) and zbar (monetary_value, the mean of
the repeat transactions), and assumes spend is independent of purchase frequency.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from ..errors import DataError, DataWarning, warn
from ..draws import DEFAULT_DRAWS
from ._base import Predictor, SummaryModel, bad_rows, fit_time_unit
from ._mle import fingerprint, fit_mle, subsample
from .rows import compress
from .covariate_effects import group_pairs
from .weighted_sums import group_sums, total

__all__ = ["GammaGamma", "GammaGammaPredictions", "loglik_terms", "loglik_and_grad", "group_loglik_and_grad",
           "conditional_expected_spend"]

PARAMS = ("p", "q", "gamma")
#: |Spearman correlation| between frequency and spend above which the independence assumption is flagged.
CORRELATION_WARNING = 0.3
#: The start of that warning's message (a fit with covariates decides on it once, not its inner fit).
CORRELATION_MESSAGE = "frequency and monetary_value are correlated"


def loglik_terms(p, q, gamma, x, zbar) -> np.ndarray:
    """Per-customer log-density of the mean spend zbar over x transactions (FHL 2005 JMR, eq. 3):

    f(zbar | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q zbar^(px-1) x^(px) / (gamma + x zbar)^(px+q).
    """
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + (px - 1) * np.log(zbar)
            + px * np.log(x) - (px + q) * np.log(gamma + x * zbar))


def loglik_and_grad(theta: np.ndarray, x, zbar, w, x_groups=None) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood of eq. (3) and its analytic gradient in (p, q, gamma) (one set of
    parameters for every customer: :func:`group_loglik_and_grad` with one group).

    ``x_groups = np.unique(x, return_inverse=True)`` may be given (computed here if not)."""
    xu, inv = x_groups if x_groups is not None else np.unique(x, return_inverse=True)
    ll, grad = group_loglik_and_grad(np.asarray(theta, dtype=np.float64)[None, :], x, zbar, w, (xu, inv, None))
    return ll, grad[0]


def group_loglik_and_grad(theta: np.ndarray, x, zbar, w, pairs) -> tuple[float, np.ndarray]:
    """Weighted total log-likelihood of eq. (3) with parameters per group (``theta`` (groups, 3): p, q,
    gamma), and its gradient in each group's parameters (groups, 3).

    The gamma functions depend on the group's p, q and x only: evaluated once per distinct (group, x)
    pair and gathered. ``pairs`` = (each pair's x, each row's pair, each pair's group), the last None for
    one group.
    """
    xu, inv, pair_group = pairs
    one = pair_group is None
    p_g, q_g, gamma_g = theta.T
    p_u, q_u = (p_g[0], q_g[0]) if one else (p_g[pair_group], q_g[pair_group])
    p, q, gamma = (p_g[0], q_g[0], gamma_g[0]) if one else (p_u[inv], q_u[inv], gamma_g[pair_group][inv])
    pxu = p_u * xu
    log_x = np.log(xu)[inv]
    log_z = np.log(zbar)
    log_denom = np.log(gamma + x * zbar)
    px = p * x
    terms = ((gammaln(pxu + q_u) - gammaln(pxu) - gammaln(q_u))[inv] + q * np.log(gamma) + (px - 1) * log_z
             + px * log_x - (px + q) * log_denom)
    psi = digamma(pxu + q_u)
    d_p = x * ((psi - digamma(pxu))[inv] + log_z + log_x - log_denom)
    d_q = (psi - digamma(q_u))[inv] + np.log(gamma) - log_denom
    d_gamma = q / gamma - (px + q) / (gamma + x * zbar)
    grad = group_sums(w, [d_p, d_q, d_gamma], None if one else pair_group[inv], len(theta))
    return float(total(w, terms)), grad


def conditional_expected_spend(p, q, gamma, x, zbar) -> np.ndarray:
    """E[Z | x, zbar] = (gamma + x zbar) p / (p x + q - 1) (FHL 2005 JMR, eq. 5): a weighted mean of the
    population mean p gamma / (q - 1) and the customer's own mean zbar. Needs p x + q > 1."""
    x = np.asarray(x, dtype=np.float64)
    zbar = np.where(x > 0, np.asarray(zbar, dtype=np.float64), 0.0)
    denom = p * x + q - 1.0
    if np.any(denom <= 0):
        raise ValueError(f"p x + q <= 1 for some customers (p = {np.min(p):.4g}, q = {np.min(q):.4g}): their "
                         "expected spend is infinite under the fitted Gamma-Gamma (for x = 0 this is q <= 1, no "
                         "population mean; with interval=, parameter draws that reach it make the interval "
                         "unbounded: predict without interval=)")
    return (gamma + x * zbar) * p / denom


def _diagnose(params: dict[str, float]) -> str:
    """What a failed fit's parameters say about the data: p running off is spend with no spread within
    customers (each transaction value Gamma(p, nu) has coefficient of variation 1 / sqrt(p))."""
    if params["p"] > 1e6:
        return ("every customer's purchases seem to cost the same each time (p grows without bound): Gamma-Gamma "
                "needs spend that varies within customers; fit the purchase model alone (clvmodels fit --model "
                "bgnbd) and take each customer's mean spend as their spend per purchase")
    return ""


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank; small counts (a frequency) by counting, not sorting."""
    if v.size and v.min() >= 0 and v.max() < 2 ** 20 and np.all(v == np.floor(v)):
        counts = np.bincount(v.astype(np.int64))
        below = np.cumsum(counts) - counts  # values smaller than each value
        return (below + (counts + 1) / 2.0)[v.astype(np.int64)]
    return pd.Series(v).rank(method="average").to_numpy()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's of the ranks, ties given their average rank (as
    ``scipy.stats.spearmanr``, without importing scipy.stats, a third of a second)."""
    ra, rb = (_average_ranks(np.asarray(v, dtype=np.float64)) for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(total(ra, rb) / np.sqrt(total(ra, ra) * total(rb, rb)))


class GammaGammaPredictions(Predictor):
    """Gamma-Gamma's per-customer predictions over parameter draws: the same calls and shapes for the
    maximum-likelihood and the Bayesian fits (:class:`clvmodels.models._base.Predictor`)."""

    param_names = PARAMS
    required_columns = ("frequency", "monetary_value")
    time_dependent = False
    role = "spend"

    def _check_values(self, x: np.ndarray, m: np.ndarray, *_: np.ndarray) -> None:
        bad_rows(~np.isfinite(x) | (x < 0) | (x != np.round(x)), "frequency must be a whole number >= 0",
                 ["frequency"])
        bad_rows((x > 0) & ~np.isfinite(m), "monetary_value is missing, NaN or infinite for a repeat buyer",
                 ["monetary_value"])
        bad_rows((x > 0) & (m <= 0), "monetary_value must be positive for customers with repeat purchases "
                 "(Gamma-Gamma models positive spend)", ["monetary_value"])

    @staticmethod
    def expected_spend_kernel(theta, x, m, seg=None) -> np.ndarray:
        """E[Z | x, zbar] (eq. 5) at every draw."""
        return conditional_expected_spend(*theta, x, m)

    def expected_spend(self, summary: pd.DataFrame, interval: float | None = None,
                       max_draws: int = DEFAULT_DRAWS) -> pd.Series | pd.DataFrame:
        """Expected value of each customer's future transactions (eq. 5); for customers without repeat
        purchases, the population mean p gamma / (q - 1)."""
        return self._predict(summary, "expected_spend", self.expected_spend_kernel, interval, max_draws)


class GammaGamma(GammaGammaPredictions, SummaryModel):
    """Gamma-Gamma spend model fitted by maximum likelihood on customers with frequency > 0.

    Parameters
    ----------
    covariates
        Summary columns of static customer attributes that scale each customer's expected spend per
        purchase by exp(c'z): gamma_i = gamma exp(c'z_i) (categorical columns dummy-coded against their
        first level in sorted order, numeric ones as given). p, q and gamma are then the reference
        customers' (z = 0); the fit also tests the coefficients (:meth:`likelihood_ratio_test`).
    maxiter, start
        As for :class:`clvmodels.BetaGeo`.

    Attributes
    ----------
    params_ : dict
        Fitted p, q, gamma.
    result_ : FitResult
        Standard errors, covariance, log-likelihood, AIC/BIC and convergence details.
    frequency_spend_correlation_ : float
        Spearman correlation of frequency and monetary_value among repeat buyers (the model assumes 0).
    """

    model_name = "GammaGamma"
    short_name, title = "gamma-gamma", "Gamma-Gamma"
    saved_attributes = {"frequency_spend_correlation_": (-1.0, 1.0)}
    #: gamma_i = gamma exp(c'z): each customer's expected spend per purchase, p gamma_i / (q - 1), is
    #: scaled by exp(c'z) (the gamma rate parameter of nu scaled as in Fader & Hardie 2007).
    covariate_signs = {"gamma": 1}

    def __init__(self, maxiter: int = 2000, start: dict[str, float] | None = None,
                 covariates: list[str] | None = None) -> None:
        super().__init__(maxiter, start)
        self.covariates = covariates

    def fit(self, summary: pd.DataFrame, *, weights: Any = None, time_unit: str | None = None) -> "GammaGamma":
        """Fit to the customers with frequency > 0 (columns frequency, monetary_value, and the
        ``covariates`` columns)."""
        x, m, w = self._prepare(summary, weights)
        if self.has_covariates:  # (the fit without them, inside, checks the data and measures the correlation)
            with warnings.catch_warnings():  # (whether the correlation matters is this model's to say, below)
                warnings.filterwarnings("ignore", CORRELATION_MESSAGE, DataWarning)
                self._fit_covariates(summary, (x, m), w, weights, time_unit)
            self.frequency_spend_correlation_ = self.result_.extra["frequency-spend Spearman"]
            self._warn_dependence(self.frequency_spend_correlation_)
            return self
        repeat = (x > 0) & (w > 0)
        if repeat.sum() < 2:
            raise DataError("Gamma-Gamma needs at least two customers with repeat purchases "
                            f"(found {int(repeat.sum())})", columns=["frequency"])
        x, m, w = x[repeat], m[repeat], w[repeat]
        # means of equal amounts differ in their last bits only: no spread within rounding is no spread
        if np.ptp(m) <= 1e-9 * np.max(m):
            raise DataError(f"every repeat buyer has the same mean spend ({np.median(m):.6g}): Gamma-Gamma "
                            "cannot be identified (it separates the spread of spend within and between "
                            "customers); fit the purchase model alone (clvmodels fit --model bgnbd) and take "
                            "spend per purchase as that constant", columns=["monetary_value"])
        # (rows standing for several customers count as many: the same as on the expanded summary)
        counts = w.astype(np.int64) if np.array_equal(w, np.round(w)) and w.sum() <= 1e8 else None
        xs, ms = (x, m) if counts is None or np.all(counts == 1) else (np.repeat(x, counts), np.repeat(m, counts))
        corr = spearman(xs, ms) if np.ptp(xs) > 0 else 0.0
        self._warn_dependence(corr)
        (ux, um), uw = compress(x, m, weights=w)
        # Start at the method-of-moments-like point: q = 2 gives mean spend p*gamma; p = 1.
        start = np.array([self.start[k] for k in PARAMS]) if self.start else np.array(
            [1.0, 2.0, float(np.average(um, weights=uw))])
        groups = np.unique(ux, return_inverse=True)
        sub = subsample(uw)
        if sub is not None:
            sx, sm, sw = ux[sub[0]], um[sub[0]], sub[1]
            sub_groups = np.unique(sx, return_inverse=True)
        result = fit_mle("Gamma-Gamma", PARAMS, lambda th: loglik_and_grad(th, ux, um, uw, groups), start,
                         n_obs=float(uw.sum()), n_unique=len(uw), time_unit=fit_time_unit(summary, time_unit),
                         maxiter=self.maxiter, extra={"frequency-spend Spearman": round(corr, 4)},
                         advice="Check for extreme or zero spend values, or pass start=.", diagnose=_diagnose,
                         presolve=(lambda th: loglik_and_grad(th, sx, sm, sw, sub_groups)) if sub is not None else None)
        self.frequency_spend_correlation_ = corr
        self._set_result(result, fingerprint((ux, um), uw))
        return self

    def _warn_dependence(self, corr: float) -> None:
        """Warn (once, with what helps) when spend and frequency are correlated among repeat buyers and this
        model assumes them independent (no frequency covariate)."""
        if abs(corr) > CORRELATION_WARNING and not any("frequency" in name for name in self.derived_covariates):
            warn(f"frequency and monetary_value are correlated (Spearman {corr:+.2f}) among repeat buyers; "
                 "Gamma-Gamma assumes spend is independent of purchase frequency: FrequencyGammaGamma "
                 "(--model gamma-gamma-frequency) lets spend per purchase follow frequency; compare the two "
                 "in a backtest")

    def _group_objective(self, arrays, w, codes, plain):
        """Eq. (3) with parameters per covariate pattern, on the repeat buyers
        (:func:`group_loglik_and_grad`)."""
        x, m = arrays
        repeat = (x > 0) & (w > 0)
        (ux, um, ug), uw = compress(x[repeat], m[repeat], codes[repeat], weights=w[repeat])
        _, _, pair_group, xu, inv = group_pairs(ug, ux)
        pairs = (xu, inv, pair_group)
        return ((lambda theta: group_loglik_and_grad(theta, ux, um, uw, pairs)), float(uw.sum()), len(uw),
                fingerprint((ux, um, ug), uw))

    def population_mean_spend(self) -> float:
        """Mean spend per transaction across customers, p gamma / (q - 1)."""
        self.check_is_fitted()
        p, q, gamma = self._p()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")
