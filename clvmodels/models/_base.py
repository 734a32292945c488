"""What every summary-based estimator shares: input checks, the not-fitted guard, horizons in units.

scikit-learn habits: the constructor stores options only; ``fit`` returns self; fitted attributes end
in ``_``; using an unfitted model raises :class:`NotFittedError`.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import DataError, NotFittedError
from ..timeunits import Horizon, check_unit, horizon_label, to_units
from ..draws import DEFAULT_DRAWS, check_max_draws, predict_over_draws
from ._mle import FitResult, fit_mle
from .covariate_effects import CovariateEffects, patterns
from .persistence import MODEL_REGISTRY, OPTION_CHECKS, load_models, save_models

#: Seed of the draws from a maximum-likelihood estimate's sampling distribution (predictions repeat exactly).
PARAM_DRAWS_SEED = 20_051_015

__all__ = ["SummaryModel", "Predictor", "Estimator", "as_float_array", "check_rfm", "check_summary_unit", "fit_time_unit", "bad_rows", "MODEL_REGISTRY"]

def as_float_array(summary: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as float64, or DataError if it is missing or not numeric (no silent casting)."""
    if not isinstance(summary, pd.DataFrame):
        raise TypeError(f"expected a customer summary DataFrame, got {type(summary).__name__}")
    if column not in summary.columns:
        raise DataError(f"the summary has no {column!r} column (columns: {', '.join(map(str, summary.columns))})",
                        columns=[column])
    col = summary[column]
    if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
        raise DataError(f"summary column {column!r} is not numeric ({col.dtype})", columns=[column])
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def check_summary_unit(summary: pd.DataFrame, model_unit: str | None,
                       model_says: str = "the model was fitted in") -> None:
    """Refuse a summary whose declared time unit (``summary.attrs["time_unit"]``, which Parquet summaries
    and :func:`clvmodels.rfm_summary` carry) differs from the unit a model was fitted in.

    Rates, recency and T are per unit, so mixing units gives wrong predictions; summaries are not
    converted, so that every prediction reads the data it was given. A summary without a declared unit
    (a CSV file) is taken to be in the model's unit.
    """
    declared = getattr(summary, "attrs", {}).get("time_unit")
    if declared and model_unit and check_unit(declared) != model_unit:
        raise DataError(f"the summary is in time unit {check_unit(declared)!r} but {model_says} "
                        f"{model_unit!r}: summarise the log again in {model_unit!r} (clvmodels summarize "
                        f"--time-unit {model_unit}) or fit the model on this summary")


def fit_time_unit(summary: pd.DataFrame, time_unit: str | None) -> str | None:
    """The time unit a fit is in: ``time_unit`` if given (refused if the summary declares another), else
    the summary's declared unit, else None."""
    if time_unit:
        check_summary_unit(summary, check_unit(time_unit), "the fit was asked for time unit")
    unit = time_unit or getattr(summary, "attrs", {}).get("time_unit")
    return check_unit(unit) if unit else None


def bad_rows(mask: np.ndarray, reason: str, columns: list[str]) -> None:
    if np.any(mask):
        rows = np.flatnonzero(mask)
        raise DataError(reason, columns=columns, rows=rows[:5], n_rows=len(rows))


def check_rfm(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Validate frequency / recency / T arrays: finite, counts whole, 0 <= recency <= T."""
    for name, v in (("frequency", x), ("recency", t_x), ("T", T)):
        bad_rows(~np.isfinite(v), f"{name} is missing, NaN or infinite", [name])
        bad_rows(v < 0, f"{name} is negative", [name])
    bad_rows(x != np.round(x), "frequency is not a whole number of repeat purchases", ["frequency"])
    bad_rows(t_x > T * (1 + 1e-12) + 1e-12, "recency is larger than T (last purchase after the end of the period)",
              ["recency", "T"])
    bad_rows((x == 0) & (t_x > 0), "recency is positive but frequency is 0 (recency counts repeat purchases)",
              ["frequency", "recency"])


class Estimator:
    """What every estimator shares (models and formulas, however fitted): options in ``__init__`` and
    read from its signature, ``fit`` returning self, fitted attributes ending in ``_``, one not-fitted
    check, and horizons in the fitted time unit."""

    #: The attribute a fit sets: present once the estimator is fitted.
    _fitted_attribute: ClassVar[str] = "time_unit_"
    #: What the estimator forecasts: "purchase" (the purchase-model calls), "spend" (expected_spend) or
    #: "formula" (a business formula's expected purchases and spend).
    role: ClassVar[str] = ""

    # options, for persistence and repr ------------------------------------------------------------
    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The constructor options, read from its signature."""
        import inspect

        return tuple(name for name, p in inspect.signature(cls.__init__).parameters.items()
                     if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor options (scikit-learn's name and signature for them)."""
        return {n: getattr(self, n) for n in self.option_names()}

    def set_params(self, **options: Any) -> "Estimator":
        """Change constructor options (takes effect at the next fit); returns self."""
        valid = self.get_params()
        for name, value in options.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no option {name!r} (options: {', '.join(valid)})")
            setattr(self, name, value)
        return self

    @property
    def label(self) -> str:
        """Its name for people: the title, and its covariates if any ("BG/NBD (covariates: channel)")."""
        covariates = getattr(self, "covariates", None)
        return getattr(self, "title", type(self).__name__) + (
            f" (covariates: {', '.join(covariates)})" if covariates else "")

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        fitted = ", fitted" if hasattr(self, self._fitted_attribute) else ""
        return f"{type(self).__name__}({opts}){fitted}"

    def check_is_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` (or ``load``) has run: the one not-fitted check."""
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(summary) first")

    def _units(self, t: Horizon) -> float:
        """A horizon in the model's time unit: numbers are taken as units already."""
        if isinstance(t, str):
            if not self.time_unit_:
                raise ValueError(f"horizon {t!r} needs the summary's time unit: fit with time_unit=... "
                                 "or give t as a number of units")
            return to_units(t, self.time_unit_)
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise ValueError(f"t must be one horizon: a number of time units or a duration such as '1y', got {t!r} "
                             "(for several horizons, one call each, or customer_value(..., horizons=[...]))")
        t = float(t)
        if not (np.isfinite(t) and t >= 0):
            raise ValueError(f"t must be a non-negative duration, got {t!r}")
        return t

    def _units_array(self, t: Any) -> np.ndarray:
        if isinstance(t, str):
            return np.asarray(self._units(t))
        arr = np.asarray(t, dtype=np.float64)
        if np.any(~np.isfinite(arr) | (arr < 0)):
            raise ValueError("t must be non-negative durations")
        return arr

    def _label(self, t: Horizon) -> str:
        return horizon_label(t, self.time_unit_)


class Predictor(Estimator):
    """The prediction contract every model follows, however it was fitted.

    A model gives its parameters as draws (:meth:`param_draws`, an array (draw, segment, parameter);
    :mod:`clvmodels.draws`) and each customer's segment position (:meth:`segment_index`); each prediction
    is a kernel of the model's formulas evaluated over those draws (:meth:`_predict`), and so has the
    same shape for every fit method: a Series by customer without an interval, a DataFrame of the value
    and its bounds with ``interval=``.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    required_columns: ClassVar[tuple[str, ...]] = ()
    #: Whether predictions depend on the summary's time unit (spend per purchase does not).
    time_dependent: ClassVar[bool] = True
    #: Whether the model's summary counts discrete purchase opportunities (recency and T whole numbers of
    #: periods, as BG/BB's) rather than continuous time.
    discrete_time: ClassVar[bool] = False

    def param_draws(self, interval: float | None = None, max_draws: int = DEFAULT_DRAWS) -> np.ndarray:
        """The parameters as draws (draw, segment, parameter); those a point prediction averages over
        without ``interval``, those its bounds come from with one."""
        raise NotImplementedError

    def segment_index(self, summary: pd.DataFrame) -> np.ndarray:
        """Each customer's position on the draws' segment axis (one population: all 0)."""
        return np.zeros(len(summary), dtype=np.int64)

    def group_draws(self, summary: pd.DataFrame, interval: float | None = None,
                    max_draws: int = DEFAULT_DRAWS) -> tuple[np.ndarray, np.ndarray]:
        """The parameters as draws over the groups of ``summary``'s customers who share them (draw,
        group, parameter), and each customer's group: the segments (:meth:`param_draws`,
        :meth:`segment_index`), or the covariate patterns of a model with covariates. Every prediction
        reads its parameters here."""
        return self.param_draws(interval, max_draws), self.segment_index(summary)

    @property
    def segment_column(self) -> str | None:
        """The summary column the draws' segment axis follows (None: one population)."""
        return None

    def segments(self) -> dict[str, list]:
        """A fitted model's segment column with its labels in axis order: empty for one population."""
        return {}

    #: Covariates a model derives from the summary's own columns, by name (e.g. log(1 + frequency) for a
    #: spend model that depends on purchasing): always in its design, before the ``covariates`` option's.
    derived_covariates: ClassVar[dict[str, Any]] = {}

    @property
    def has_covariates(self) -> bool:
        """Whether the model's parameters differ by customer through covariates (given or derived)."""
        return bool(getattr(self, "covariates", None) or self.derived_covariates)

    def refuse_covariates(self, what: str) -> None:
        """ValueError for ``what`` (a population-level quantity) when the model has covariates: its
        parameters differ by customer."""
        if self.has_covariates:
            raise ValueError(f"{what} needs one set of parameters, and this {type(self).__name__} has covariates: "
                             "its parameters differ by customer; predict per customer")

    def input_columns(self) -> list[str]:
        """The summary columns fitting and predictions read (known before fitting): the data columns, then
        any segment column."""
        return [*self.required_columns, *([self.segment_column] if self.segment_column else []),
                *(getattr(self, "covariates", None) or [])]

    def _check_values(self, *arrays: np.ndarray) -> None:
        """DataError for values the model cannot take (each model says which)."""

    def prediction_arrays(self, summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """The required columns of a summary to predict for: fitted model, same time unit, valid values."""
        self.check_is_fitted()
        if self.time_dependent:
            check_summary_unit(summary, self.time_unit_)
        arrays = tuple(as_float_array(summary, c) for c in self.required_columns)
        self._check_values(*arrays)
        return arrays

    def _predict(self, summary: pd.DataFrame, name: str, kernel, interval: float | None,
                 max_draws: int) -> pd.Series | pd.DataFrame:
        """``kernel(theta, *data, seg=codes)`` over the parameter draws, in the contract's shape
        (:func:`clvmodels.draws.predict_over_draws`)."""
        arrays = self.prediction_arrays(summary)
        point, seg = self.group_draws(summary, None, max_draws)
        spread = self.group_draws(summary, interval, max_draws)[0] if interval is not None else None
        return predict_over_draws(name, point, spread, seg, arrays, kernel, interval, summary.index)


class SummaryModel(Predictor):
    """Base class of the maximum-likelihood models fitted to a customer summary."""

    _fitted_attribute = "result_"

    model_name: ClassVar[str] = ""
    #: The name the command line and the backtest give the model (``--model bgnbd``), and its title.
    short_name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: Fitted attributes (besides the fit result) that a model file stores, with the range of each value.
    saved_attributes: ClassVar[dict[str, tuple[float, float]]] = {}
    #: How a model file's value of each constructor option is checked when loaded: a model with options
    #: of its own adds theirs (``{**OPTION_CHECKS, "k": ...}``).
    option_checks: ClassVar[dict[str, Any]] = OPTION_CHECKS

    def __init__(self, maxiter: int = 2000, start: dict[str, float] | None = None) -> None:
        self.maxiter = maxiter
        self.start = start

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.model_name:
            if "short_name" not in vars(cls) or not cls.short_name:
                raise TypeError(f"{cls.__name__}: a registered model sets its own short_name (the name model files "
                                "and --model use)")
            taken = [name for name, other in MODEL_REGISTRY.items()
                     if other.short_name == cls.short_name and name != cls.model_name]
            if taken:
                raise TypeError(f"{cls.__name__}: short_name {cls.short_name!r} is {taken[0]}'s already")
            unchecked = [name for name in cls.option_names() if name not in cls.option_checks]
            if unchecked:
                raise TypeError(f"{cls.__name__}: no check for the option(s) {', '.join(unchecked)} when a model "
                                "file is loaded: add them to option_checks")
            MODEL_REGISTRY[cls.model_name] = cls

    def validate(self, summary: pd.DataFrame, *, weights: Any = None) -> None:
        """Check a summary's columns and values as ``fit`` does, without fitting: DataError names the bad
        rows and columns. (A summary that passes can still leave the model unidentified: ``fit`` says so.)"""
        self._prepare(summary, weights)
        if getattr(self, "covariates", None):
            from ..data.covariates import CovariateDesign

            CovariateDesign(list(self.covariates)).fit(summary)

    # fitting helpers --------------------------------------------------------------------------------
    def _prepare(self, summary: pd.DataFrame, weights: Any) -> tuple[np.ndarray, ...]:
        period = getattr(summary, "attrs", {}).get("period")
        if period and self.role == "purchase" and not self.discrete_time:
            raise DataError(f"this is a summary by {period} (frequency counts the {period}s with a transaction, not "
                            f"purchases): {self.title} models purchases in continuous time; summarise the log without "
                            "a period (clvmodels summarize without --period, or rfm_summary), or fit BG/BB to it "
                            "(--model bgbb)")
        arrays = [as_float_array(summary, c) for c in self.required_columns]
        if len(arrays[0]) == 0:
            raise DataError("the summary is empty")
        self._check_values(*arrays)
        if weights is None:
            w = np.ones(len(arrays[0]))
        else:
            w = as_float_array(summary, weights) if isinstance(weights, str) else np.asarray(weights, dtype=np.float64)
            if w.shape != arrays[0].shape:
                raise DataError(f"weights has {len(w)} values for {len(arrays[0])} customers")
            bad_rows(~np.isfinite(w) | (w < 0), "weights must be finite and >= 0", ["weights"])
        if w.sum() < 2:
            raise DataError(f"{self.model_name} needs at least two customers to fit; got {w.sum():g}")
        return (*arrays, w)

    def _require_repeat_buyers(self, x: np.ndarray, w: np.ndarray) -> None:
        """DataError unless some customer (of positive weight) bought again: a dropout model cannot tell
        purchasing from dropout without repeat purchases."""
        if not np.any((x > 0) & (w > 0)):
            raise DataError(f"no customer has a repeat purchase: {self.title} cannot separate purchasing from "
                            "dropout", columns=["frequency"])

    def _set_result(self, result: FitResult, fingerprint_: str, design: Any = None) -> None:
        """Install a fit: the result and the attributes derived from it (after fit, or when loading);
        ``design``, a fitted :class:`~clvmodels.data.covariates.CovariateDesign` for a fit with covariates."""
        self.result_ = result
        self.params_ = dict(result.params)
        self.loglik_ = result.loglik
        self.time_unit_ = result.time_unit
        self.n_customers_ = result.n_obs
        self.fingerprint_ = fingerprint_
        self.design_ = design

    # covariates ---------------------------------------------------------------------------------------
    #: The parameters covariates act on, with the sign of each effect (:mod:`.covariate_effects`); a
    #: model that takes covariates sets it and has a ``covariates`` option.
    covariate_signs: ClassVar[dict[str, int]] = {}

    #: The model without the derived covariates (the likelihood-ratio test's null; default: the class).
    plain_class: ClassVar[type | None] = None

    def covariate_names(self, design: Any) -> list[str]:
        """The design's columns: the derived covariates, then those of ``design`` (a fitted
        :class:`~clvmodels.data.covariates.CovariateDesign`, or None)."""
        return [*self.derived_covariates, *(design.names_ if design is not None else [])]

    def covariate_matrix(self, summary: pd.DataFrame, design: Any) -> np.ndarray:
        """The covariates of ``summary``'s customers, (customers, len(covariate_names(design)))."""
        parts = [np.asarray(f(summary), dtype=np.float64)[:, None] for f in self.derived_covariates.values()]
        if design is not None:
            parts.append(design.matrix(summary))
        return np.concatenate(parts, axis=1)

    def _effects(self, design: Any) -> CovariateEffects:
        return CovariateEffects(self.param_names, self.covariate_signs, self.covariate_names(design))

    def _group_objective(self, arrays: tuple[np.ndarray, ...], w: np.ndarray, codes: np.ndarray,
                         plain: "SummaryModel"):
        """For a fit with covariates: (the weighted log-likelihood and its gradient per group of
        ``codes``, ``theta`` (groups, parameters) -> (ll, gradient (groups, parameters)); the number of
        customers it counts; the number of distinct rows; the data's fingerprint). ``plain`` is the fit
        without covariates (whose choices, such as a CNBD-k's k, this fit keeps). Each model that takes
        covariates defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not take covariates")

    def _fit_covariates(self, summary: pd.DataFrame, arrays: tuple[np.ndarray, ...], w: np.ndarray,
                        weights: Any, time_unit: str | None) -> None:
        """Fit with the ``covariates`` option's columns (Fader & Hardie 2007; :mod:`.covariate_effects`):
        the model without them first, whose estimate starts this fit (coefficients 0) and whose
        log-likelihood the likelihood-ratio test in ``result_.extra`` compares against."""
        from scipy.stats import chi2

        from ..data.covariates import CovariateDesign

        design = CovariateDesign(list(self.covariates)).fit(summary) if getattr(self, "covariates", None) else None
        Z = self.covariate_matrix(summary, design)
        plain = (self.plain_class or type(self))(**{**self.get_params(), "covariates": None}).fit(
            summary, weights=weights, time_unit=time_unit)
        Zu, codes = patterns(Z)
        effects = self._effects(design)
        objective, n_obs, n_unique, fingerprint_ = self._group_objective(arrays, w, codes, plain)

        def loglik_grad(full: np.ndarray) -> tuple[float, np.ndarray]:
            theta_g = effects.group_params(full, Zu)
            ll, grad_g = objective(theta_g)
            return ll, effects.gradient(grad_g, theta_g, full, Zu)

        reach = np.max(np.abs(Zu), axis=0)
        start = np.concatenate([plain._p(), np.zeros(len(effects.coefficient_names))])
        result = fit_mle(
            self.title, effects.names, loglik_grad, start, n_obs=n_obs, n_unique=n_unique,
            time_unit=plain.time_unit_, maxiter=self.maxiter,
            advice="A covariate level with few customers (or none who bought again), or a numeric covariate "
                   "that hardly varies or varies over thousands, cannot be estimated well: merge rare levels, "
                   "rescale the numeric covariate (e.g. to units of its standard deviation), or leave it out.",
            linear={name: float(reach[k % len(reach)]) for k, name in enumerate(effects.coefficient_names)})
        stat = max(2.0 * (result.loglik - plain.loglik_), 0.0)
        df = len(effects.coefficient_names)
        described = [*(f"{name}: derived from the summary" for name in self.derived_covariates),
                     *([design.description] if design is not None else [])]
        extra = {**plain.result_.extra, **result.extra, "covariates": "; ".join(described),
                 "covariate effects": ", ".join(f"{p} x exp({'+' if s > 0 else '-'}c'z)"
                                                for p, s in self.covariate_signs.items()),
                 "LR test vs no covariates": f"chi2 = {stat:.2f}, df = {df}, p = {chi2.sf(stat, df):.3g}",
                 "loglik without covariates": plain.loglik_}
        self._set_result(replace(result, extra=extra), fingerprint_, design)

    def likelihood_ratio_test(self) -> dict[str, float]:
        """The covariates' likelihood-ratio test against the model without them: ``statistic`` (2 x the
        gain in log-likelihood), ``df`` (the number of coefficients) and ``p_value`` (chi-squared)."""
        from scipy.stats import chi2

        self.check_is_fitted()
        if not self.has_covariates:
            raise ValueError(f"this {type(self).__name__} was fitted without covariates")
        stat = max(2.0 * (self.loglik_ - self.result_.extra["loglik without covariates"]), 0.0)
        df = len(self.result_.linear)
        return {"statistic": stat, "df": df, "p_value": float(chi2.sf(stat, df))}

    # the prediction contract -----------------------------------------------------------------------
    def _p(self) -> tuple[float, ...]:
        # from the fit result, so that editing the params_ copy cannot change predictions unseen
        self.refuse_covariates("a population-level quantity")
        return tuple(self.result_.params[n] for n in self.param_names)

    def param_draws(self, interval: float | None = None, max_draws: int = DEFAULT_DRAWS) -> np.ndarray:
        """The parameters as draws (draw, segment = 1, parameter): the estimate as one draw; with an
        ``interval``, ``max_draws`` draws from the estimate's asymptotic normal on the log scale (the
        covariance of the log-parameters by the delta method), from a fixed seed so that predictions
        repeat exactly. With covariates, the reference customers' (z = 0; predictions read
        :meth:`group_draws`)."""
        self.check_is_fitted()
        return self._estimate_draws(interval, max_draws)[:, None, :len(self.param_names)]

    def _estimate_draws(self, interval: float | None, max_draws: int) -> np.ndarray:
        """Every estimated quantity as draws (draw, quantity): the estimate, or with an ``interval``
        ``max_draws`` draws of its asymptotic normal on the working scale (:class:`FitResult`)."""
        check_max_draws(max_draws)
        res = self.result_
        estimate = np.array([res.params[n] for n in res.param_names])
        if interval is None:
            return estimate[None, :]
        cov = res.cov_log
        if not np.all(np.isfinite(cov)):
            raise ValueError(f"this {type(self).__name__} fit has no standard errors (its Hessian is singular), "
                             "so its predictions have no intervals; predict without interval=")
        # (a seed per model class: a purchase and a spend model's draws are independent when paired)
        rng = np.random.default_rng([PARAM_DRAWS_SEED, zlib.crc32(self.model_name.encode())])
        return res.from_working(rng.multivariate_normal(res.working(), cov, size=max_draws, method="eigh"))

    def group_draws(self, summary: pd.DataFrame, interval: float | None = None,
                    max_draws: int = DEFAULT_DRAWS) -> tuple[np.ndarray, np.ndarray]:
        """The parameters as draws per covariate pattern of ``summary``'s customers (with covariates;
        :mod:`.covariate_effects`), else :meth:`Predictor.group_draws`."""
        self.check_is_fitted()
        if not self.has_covariates:
            return super().group_draws(summary, interval, max_draws)
        Zu, codes = patterns(self.covariate_matrix(summary, self.design_))
        return self._effects(self.design_).group_params(self._estimate_draws(interval, max_draws), Zu), codes

    # reporting and persistence -----------------------------------------------------------------------
    #: How the model was fitted, and what :meth:`estimates` shows (the report's captions).
    fit_method: ClassVar[str] = "maximum likelihood"
    estimates_caption: ClassVar[str] = "maximum-likelihood estimates, standard errors and 95% intervals"

    def estimates(self) -> pd.DataFrame:
        """The parameters: estimate, standard error and 95% interval; with covariates, each coefficient's
        ``multiplier``: the factor exp(sign x c) by which it multiplies its parameter for a customer one unit
        (or at one level) away from the reference (:mod:`.covariate_effects`)."""
        self.check_is_fitted()
        table = self.result_.table(0.95)
        if self.has_covariates:
            signs = [self.covariate_signs.get(str(name).split(": ")[0]) if ": " in str(name) else None
                     for name in table.index]
            table["multiplier"] = [np.exp(s * c) if s is not None else np.nan for s, c in zip(signs, table["estimate"])]
        return table

    def fit_statement(self) -> str:
        """One sentence on the fit: log-likelihood, AIC, BIC, customers, convergence; with covariates, how
        to read their coefficients and the likelihood-ratio test."""
        self.check_is_fitted()
        res = self.result_
        text = (f"log-likelihood {res.loglik:,.2f}, AIC {res.aic:,.1f}, BIC {res.bic:,.1f}, {res.n_obs:,.0f} "
                f"customers, converged: {res.converged}.")
        if self.has_covariates:
            text += (f" Covariates: {res.extra['covariates']}. Each coefficient c multiplies its parameter "
                     f"({res.extra['covariate effects']}) by the multiplier shown; likelihood-ratio test against "
                     f"the model without covariates: {res.extra['LR test vs no covariates']}.")
        return text

    def summary(self, level: float = 0.95) -> str:
        """Parameters with standard errors and confidence intervals, log-likelihood, AIC/BIC, convergence."""
        self.check_is_fitted()
        return self.result_.summary(level)


    def save(self, path: str) -> list:
        """Save as JSON (parameters, covariance, time unit, data fingerprint, package version); return the
        file written, in a list as every model's ``save`` does."""
        from pathlib import Path

        save_models({self.short_name or self.model_name: self}, path)
        return [Path(path)]

    @classmethod
    def load(cls, path: str) -> "SummaryModel":
        """Load a model saved with :meth:`save` (refuses other model types, newer formats, edited files)."""
        models = list(load_models(path).values())
        if len(models) != 1 or not isinstance(models[0], cls):
            raise DataError(f"{path} does not hold exactly one {cls.__name__}")
        return models[0]
