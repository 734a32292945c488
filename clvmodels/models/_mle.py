"""Shared maximum-likelihood machinery: row compression, fitting on log-parameters, standard errors.

numpy and scipy only. A model supplies a function returning the weighted log-likelihood and its
analytic gradient with respect to the natural parameters (and optionally one that adds the analytic
Hessian); this module optimises it over log-parameters with L-BFGS-B and Newton steps, takes the Hessian
analytically or by forward differences of the analytic gradient, and returns a frozen :class:`FitResult`.

Covariate coefficients are real-valued, not positive: a fit names them (``linear``), and they are
optimised, bounded and reported on their own scale while the other parameters are on the log scale (the
"working scale").
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtri

from ..errors import ConvergenceError

__all__ = ["FitResult", "fit_mle", "fingerprint", "subsample", "weighted_median"]

LogLikGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
LogLikGradHess = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]
#: Newton decrement g' H^-1 g accepted at the optimum, relative to |log-likelihood| (floored at 1e-9):
#: the log-likelihood is within half of it of the maximum, and each parameter within about
#: sqrt(decrement) standard errors of the optimum; 1e-10 |ll| is the rounding-noise level of large sums.
NEWTON_DECREMENT = 1e-10
#: |log parameter| beyond which a fit has run to the edge of its range: the data do not identify the model.
LOG_EDGE = 30.0
#: |log parameter| beyond which the objective is infinite (an infeasible step for the line search to back
#: off from): past the edge, short of float overflow in the kernels.
LOG_BOUND = 40.0


def weighted_median(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The median of ``values`` with each repeated ``weights`` times: equal to ``np.median`` of the
    expanded rows (so that a summary fitted whole or as distinct rows with counts gets the same prior)."""
    if weights is None or not np.any(weights != 1):  # (every row one customer: a partition, not a sort)
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    total = cum[-1]
    # the values at 0-based positions floor((n - 1) / 2) and floor(n / 2) of the expanded, sorted rows
    lo = v[np.searchsorted(cum, np.floor((total - 1) / 2), side="right")]
    hi = v[np.searchsorted(cum, np.floor(total / 2), side="right")]
    return float((lo + hi) / 2)


def subsample(weights: np.ndarray, size: int = 50_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and weights of a random subsample of about ``size`` customers (multinomial on the weights),
    to start a large fit near its optimum; None when the data are small enough to fit directly.
    Deterministic (fixed seed): the final estimate comes from the full data in any case."""
    if len(weights) <= 4 * size:
        return None
    counts = np.random.default_rng(seed).multinomial(size, weights / weights.sum())
    rows = np.flatnonzero(counts)
    return rows, counts[rows].astype(np.float64)


def fingerprint(columns: Sequence[np.ndarray], weights: np.ndarray) -> str:
    """SHA-256 of the compressed data a model was fitted on (order-independent)."""
    h = hashlib.sha256()
    for c in (*columns, weights):
        h.update(np.ascontiguousarray(c, dtype=np.float64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class FitResult:
    """A maximum-likelihood fit: parameters, uncertainty and fit statistics (read-only).

    Confidence intervals are Wald intervals on the log scale (all parameters are positive), mapped back:
    ``exp(log(theta) +- z * se_log)``; standard errors are on the natural scale by the delta method.
    """

    model: str
    param_names: tuple[str, ...]
    params: dict
    se: dict
    cov: np.ndarray = field(repr=False)
    loglik: float
    n_obs: float
    n_unique: int
    converged: bool
    iterations: int
    message: str
    time_unit: str | None = None
    extra: dict = field(default_factory=dict)
    #: The real-valued parameters (covariate coefficients); every other parameter is positive.
    linear: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return len(self.param_names)

    def working(self) -> np.ndarray:
        """The parameters on the working scale: logs of the positive ones, the linear ones as they are."""
        return np.array([self.params[n] if n in self.linear else math.log(self.params[n]) for n in self.param_names])

    def from_working(self, values: np.ndarray) -> np.ndarray:
        """Parameters (last axis in ``param_names`` order) from working-scale values: the inverse of
        :meth:`working`."""
        is_linear = np.array([n in self.linear for n in self.param_names])
        return np.where(is_linear, values, np.exp(np.where(is_linear, 0.0, values)))

    @property
    def cov_log(self) -> np.ndarray:
        """Covariance on the working scale: of the log-parameters (the delta method: cov / outer(theta,
        theta)), the linear parameters' entries as they are."""
        scale = np.array([1.0 if n in self.linear else self.params[n] for n in self.param_names])
        return np.asarray(self.cov) / np.outer(scale, scale)

    @property
    def aic(self) -> float:
        return 2 * self.k - 2 * self.loglik

    @property
    def bic(self) -> float:
        return self.k * math.log(self.n_obs) - 2 * self.loglik

    def conf_int(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald intervals on the log scale (on their own scale for the linear parameters):
        ``{name: (lower, upper)}``."""
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
        z = ndtri(0.5 + level / 2)
        out = {}
        for name in self.param_names:
            value, se = self.params[name], self.se[name]
            if name in self.linear:
                out[name] = (value - z * se, value + z * se) if np.isfinite(se) else (-np.inf, np.inf)
                continue
            half = z * se / value if value > 0 and np.isfinite(se) else np.inf
            out[name] = (value * math.exp(-half), value * math.exp(half)) if np.isfinite(half) else (0.0, np.inf)
        return out

    def table(self, level: float = 0.95):
        """Parameters, standard errors and intervals as a DataFrame."""
        import pandas as pd

        ci = self.conf_int(level)
        pct = f"{level:.0%}"
        return pd.DataFrame(
            {"estimate": [self.params[n] for n in self.param_names],
             "se": [self.se[n] for n in self.param_names],
             f"lower {pct}": [ci[n][0] for n in self.param_names],
             f"upper {pct}": [ci[n][1] for n in self.param_names]},
            index=pd.Index(self.param_names, name="parameter"))

    def summary(self, level: float = 0.95) -> str:
        """A readable summary: parameters with standard errors and intervals, then fit statistics."""
        lines = [f"{self.model} maximum-likelihood fit" + (f" (time unit {self.time_unit})" if self.time_unit else ""),
                 self.table(level).to_string(float_format=lambda v: f"{v:.6g}"), ""]
        stats_rows = [("log-likelihood", f"{self.loglik:.4f}"), ("AIC", f"{self.aic:.2f}"), ("BIC", f"{self.bic:.2f}"),
                      ("customers", f"{self.n_obs:,.0f}"), ("distinct rows", f"{self.n_unique:,}"),
                      ("converged", f"{self.converged} ({self.iterations} iterations, {self.message})")]
        stats_rows += [(k, f"{v:.10g}" if isinstance(v, float) else str(v)) for k, v in self.extra.items()]
        width = max(len(k) for k, _ in stats_rows)
        lines += [f"{k:<{width}}  {v}" for k, v in stats_rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _remember_last(fun):
    """``fun`` of a point, the last point's value kept: the Newton steps ask for the gradient where the line
    search has just evaluated the objective."""
    last: list = [None, None]

    def remembered(log_theta: np.ndarray):
        key = np.asarray(log_theta, dtype=np.float64).tobytes()
        if key != last[0]:
            last[:] = key, fun(log_theta)
        return tuple(v.copy() if isinstance(v, np.ndarray) else v for v in last[1])

    return remembered


class _Working:
    """The working scale of a fit's parameters: the log of each positive parameter; a linear one (a
    covariate coefficient) times ``reach``, the largest |value| of its covariate, so that one working unit
    moves some customer's log-parameter by one, as it does for the log-parameters. The bounds LOG_BOUND
    and LOG_EDGE then apply to what the parameters do to the customers, and the optimiser sees every
    parameter on a like scale."""

    def __init__(self, k: int, linear: dict[int, float] | None = None) -> None:
        self.is_linear = np.zeros(k, dtype=bool)
        self.reach = np.ones(k)
        for j, reach in (linear or {}).items():
            self.is_linear[j], self.reach[j] = True, reach

    def theta(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.is_linear, x / self.reach, np.exp(np.where(self.is_linear, 0.0, x)))

    def to_working(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        return np.where(self.is_linear, theta * self.reach, np.log(np.where(self.is_linear, 1.0, theta)))

    def slope(self, theta: np.ndarray) -> np.ndarray:
        """d theta / d working value, per parameter."""
        return np.where(self.is_linear, 1.0 / self.reach, theta)

    def beyond(self, x: np.ndarray, bound: float) -> bool:
        return bool(np.any(~(np.abs(x) <= bound)))


def _neg_log_space(loglik_grad: LogLikGrad, scale: _Working | None = None) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Negative log-likelihood and gradient over the working scale (chain rule: d/dlog(x) = x d/dx)."""

    def fun(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        work = scale or _Working(len(log_theta))
        if work.beyond(log_theta, LOG_BOUND):  # past any parameter the data can identify
            return np.inf, np.zeros_like(log_theta)
        theta = work.theta(log_theta)
        ll, grad = loglik_grad(theta)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(log_theta)
        return -ll, -(grad * work.slope(theta))

    return _remember_last(fun)


def _neg_log_space_hess(loglik_grad_hess: LogLikGradHess, scale: _Working | None = None) -> Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]:
    """Negative log-likelihood, gradient and Hessian over the working scale: with theta = e^x,
    d/dx_i = theta_i d/dtheta_i and d2/dx_i dx_j = theta_i theta_j d2/dtheta_i dtheta_j + [i = j] theta_i d/dtheta_i
    (a linear parameter's slope is 1 and its diagonal term 0)."""

    def fun(log_theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        k = len(log_theta)
        work = scale or _Working(k)
        if work.beyond(log_theta, LOG_BOUND):
            return np.inf, np.zeros(k), np.zeros((k, k))
        theta = work.theta(log_theta)
        ll, grad, hess = loglik_grad_hess(theta)
        if not np.isfinite(ll):
            return np.inf, np.zeros(k), np.zeros((k, k))
        slope = work.slope(theta)
        g = grad * slope
        return -ll, -g, -(np.outer(slope, slope) * hess + np.diag(np.where(work.is_linear, 0.0, g)))

    return _remember_last(fun)


def _hessian_log(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray,
                 g0: np.ndarray | None = None) -> np.ndarray:
    """Hessian by forward differences of the analytic gradient (step sqrt(eps) on the log scale),
    symmetrised; one gradient evaluation per parameter."""
    k = len(x)
    g0 = fun(x)[1] if g0 is None else g0
    h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(x))
    hess = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = h[j]
        hess[:, j] = (fun(x + e)[1] - g0) / h[j]
    return (hess + hess.T) / 2


def _positive_definite(hess: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.isfinite(hess)))


def _line_search(fun, x: np.ndarray, f: float, step: np.ndarray):
    """Backtracking from the full step: (the new point, its objective), or None if no step of at least 1e-6
    of it lowers the objective."""
    t = 1.0
    while t > 1e-6:
        f_new = fun(x - t * step)[0]
        if f_new <= f:
            return x - t * step, f_new
        t /= 2
    return None


def _newton(fun, x: np.ndarray, f: float, second=None, approx: np.ndarray | None = None):
    """Newton iterations with backtracking on the log scale.

    ``second``, if given, returns (f, gradient, Hessian) at a point: the exact Hessian then comes from it
    instead of forward differences of ``fun``'s gradient. ``approx``, if given, is an approximate Hessian
    (a subsample's, scaled to the full data): steps are first taken on it, at one gradient each, while each
    divides its decrement g' A^-1 g by at least 4 (a Hessian within a few per cent converges far faster);
    then, and whenever it stalls, the exact Hessian takes over, so that the convergence test, the last step
    and the standard errors are always the exact Hessian's.

    Returns (x, f, hessian at or next to x, converged, decrement, largest gradient, steps). Converged: a
    Newton step on the exact Hessian would raise the log-likelihood by less than half the tolerance
    (NEWTON_DECREMENT x |log-likelihood|, at least 1e-9); a last full step is then taken, nearly free.
    """
    evaluate = fun if second is None else second
    tolerance = max(1e-9, NEWTON_DECREMENT * abs(f)) if np.isfinite(f) else 1e-9
    decrement, grad_norm, hess = np.inf, np.inf, None
    if approx is not None and not _positive_definite(approx):
        approx = None
    for steps in range(20):
        if not (np.all(np.isfinite(x)) and np.isfinite(f)):
            break
        if approx is not None:
            g = fun(x)[1]
            grad_norm = float(np.max(np.abs(g)))
            step = np.linalg.solve(approx, g)
            rough = float(g @ step)
            moved = _line_search(fun, x, f, step) if tolerance <= rough <= decrement / 4 else None
            if moved is not None:
                decrement = rough
                x, f = moved
                continue
            approx, decrement = None, np.inf
        if second is None:
            g = fun(x)[1]
            hess = _hessian_log(fun, x, g)
        else:
            _, g, hess = second(x)
        grad_norm = float(np.max(np.abs(g)))
        try:
            step = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        decrement = float(g @ step)  # twice the expected gain of a full Newton step
        if not _positive_definite(hess):  # a saddle or a ridge, not a maximum
            decrement = np.inf
            break
        if decrement < tolerance:
            # the Hessian, a small fraction of a standard error away, still serves for the errors
            f_new = fun(x - step)[0]
            if f_new <= f:
                x, f = x - step, f_new
            return x, f, hess, True, decrement, grad_norm, steps + 1
        moved = _line_search(evaluate, x, f, step)
        if moved is None:
            break
        x, f = moved
    return x, f, hess, False, decrement, grad_norm, 20


def _shown(param_names: Sequence[str], theta: np.ndarray, diagnose) -> str:
    """Parameters as text for an error message, followed by what ``diagnose`` makes of them."""
    params = {n: float(v) for n, v in zip(param_names, theta)}
    text = ", ".join(f"{n} = {v:.4g}" for n, v in params.items())
    note = diagnose(params) if diagnose is not None else ""
    return f"{text}{'; ' + note if note else ''}"


def fit_mle(
    model: str,
    param_names: Sequence[str],
    loglik_grad: LogLikGrad,
    start: np.ndarray,
    *,
    n_obs: float,
    n_unique: int,
    time_unit: str | None = None,
    maxiter: int = 2000,
    advice: str = "",
    extra: dict[str, Any] | None = None,
    presolve: LogLikGrad | None = None,
    diagnose: Callable[[dict[str, float]], str] | None = None,
    hessian: LogLikGradHess | None = None,
    linear: dict[str, float] | None = None,
) -> FitResult:
    """Maximise a log-likelihood over positive parameters; raise ConvergenceError with advice on failure.

    ``linear`` names the real-valued parameters (covariate coefficients), each with the largest |value|
    of its covariate (the module docstring's working scale); their ``start`` values may be any number.

    ``presolve``, the log-likelihood of a subsample, if given, is maximised first (loosely) to start the
    full optimisation close to the optimum: fewer evaluations on the full data. ``diagnose``, given the
    parameters where a fit failed, returns what they say about the data ("" if nothing), for the error.
    ``hessian``, if given, returns (log-likelihood, gradient, Hessian) in the natural parameters on the
    full data: the Newton steps and the standard errors then use its analytic Hessian (``loglik_grad``
    still serves L-BFGS-B).
    """
    from scipy import optimize  # loaded on first fit: keeps `import clvmodels` light

    linear = dict(linear or {})
    work = _Working(len(param_names), {list(param_names).index(n): reach for n, reach in linear.items()})
    fun = _neg_log_space(loglik_grad, work)
    second = _neg_log_space_hess(hessian, work) if hessian is not None else None
    x0 = np.clip(work.to_working(start), -LOG_BOUND, LOG_BOUND)
    approx = None
    if presolve is not None:
        pre_fun = _neg_log_space(presolve, work)
        pre = optimize.minimize(pre_fun, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": maxiter, "ftol": 1e-10})
        if np.all(np.isfinite(pre.x)):
            x0 = pre.x
            # the subsample's Hessian, scaled by the ratio of the two log-likelihoods there (the full data's
            # customers over the subsample's, to within its sampling error): the Newton steps' first guess
            f0 = fun(x0)[0]
            if np.isfinite(f0) and np.isfinite(pre.fun) and pre.fun > 0 and f0 > 0:
                approx = _hessian_log(pre_fun, x0, pre_fun(x0)[1]) * (f0 / pre.fun)
    # From a presolved start, Newton steps alone; otherwise (or if that fails) L-BFGS-B to get close,
    # then Newton steps on the finite-difference Hessian of the analytic gradient (L-BFGS-B's line
    # search can stop on rounding noise, "ABNORMAL", short of the optimum).
    message, iterations = "", 0
    newton = None
    if presolve is not None:
        newton = _newton(fun, x0, fun(x0)[0], second, approx)
    if newton is None or not newton[3]:
        res = optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
                                options={"maxiter": maxiter, "ftol": 1e-11, "gtol": 1e-6})
        message, iterations = str(res.message).strip().rstrip(":"), int(res.nit)  # (scipy's "ABNORMAL: ")
        newton = _newton(fun, res.x, res.fun, second)
    x, f, hess, converged, decrement, grad_norm, steps = newton
    iterations += steps
    theta = work.theta(x)
    if not converged:
        raise ConvergenceError(
            f"{model}: the optimiser did not converge ({message}; largest gradient {grad_norm:.3g}; "
            f"parameters {_shown(param_names, theta, diagnose)}). " + (advice or "Check the data, or try another time unit."))
    if work.beyond(x, LOG_EDGE):
        raise ConvergenceError(
            f"{model}: a parameter ran to the edge of its range ({_shown(param_names, theta, diagnose)}): the data do "
            "not identify the model. " + advice)
    if not _positive_definite(hess):
        raise ConvergenceError(f"{model}: the log-likelihood is not at a maximum (indefinite Hessian at "
                               f"{_shown(param_names, theta, diagnose)}). " + advice)
    try:
        cov_log = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov_log = np.full_like(hess, np.nan)
    jac = np.diag(work.slope(theta))
    cov = jac @ cov_log @ jac
    cov.flags.writeable = False
    se = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
    if not np.all(np.isfinite(se) & (se > 0)):
        raise ConvergenceError(
            f"{model}: the data do not identify the parameters (singular information matrix at "
            f"{_shown(param_names, theta, diagnose)}); typically too few customers or too little variety in "
            "their histories. " + advice)
    return FitResult(
        model=model,
        param_names=tuple(param_names),
        params={n: float(v) for n, v in zip(param_names, theta)},
        se={n: float(v) for n, v in zip(param_names, se)},
        cov=cov,
        loglik=float(-f),
        n_obs=float(n_obs),
        n_unique=int(n_unique),
        converged=converged,
        iterations=iterations,
        message=f"Newton decrement {decrement:.1e}, largest log-scale gradient {grad_norm:.1e}",
        time_unit=time_unit,
        extra=dict(extra or {}),
        linear=tuple(n for n in param_names if n in linear),
    )
