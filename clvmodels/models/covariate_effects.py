"""Static customer covariates acting on a model's parameters (numpy only).

Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models":
a covariate vector z_i scales a customer's gamma (and, for the BG/NBD, beta) mixing parameters,

    theta_i = theta exp(sign * c_theta' z_i),

so that customers with the same z share their parameters. A model lists the parameters covariates act on
and the sign that makes a positive coefficient raise the parameter's natural reading (for the BG/NBD's
alpha, sign -1: a positive coefficient lowers alpha and so raises the purchase rate lambda ~ Gamma(r,
alpha)). The likelihood of such a model is the model's own likelihood with parameters per group of
customers sharing z (a covariate pattern); its gradient follows by the chain rule,

    dLL/dtheta = sum_g dLL/dtheta_g * theta_g / theta,
    dLL/dc_theta,k = sum_g dLL/dtheta_g * theta_g * sign * z_gk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .rows import distinct_rows

__all__ = ["CovariateEffects", "patterns", "group_pairs"]


def patterns(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a design matrix (groups, covariates) and each customer's group."""
    Z = np.asarray(Z, dtype=np.float64)
    first, codes = distinct_rows(*Z.T)
    return Z[first], codes


def group_pairs(group: np.ndarray | None, x: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's parameter group (all 0 for ``group`` None), the number of groups, and the distinct (group,
    x) pairs, the unit at which a likelihood's special functions of the parameters and the frequency are
    evaluated: (group, n_groups, each pair's group, each pair's x, each row's pair)."""
    x = np.asarray(x, dtype=np.float64)
    group = np.zeros(len(x), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    n_groups = int(group.max()) + 1 if len(group) else 1
    first, inverse = distinct_rows(group, x)
    return group, n_groups, group[first], x[first], inverse


class CovariateEffects:
    """Which parameters covariates act on, and how: parameter names, per-group parameters, the gradient.

    Parameters
    ----------
    param_names
        The model's parameters, in its order.
    signs
        ``{parameter: +1 or -1}`` for the parameters covariates act on (module docstring).
    covariates
        The design matrix's column names (``CovariateDesign.names_``).
    """

    def __init__(self, param_names: Sequence[str], signs: Mapping[str, int], covariates: Sequence[str]) -> None:
        self.param_names = tuple(param_names)
        self.signs = dict(signs)
        self.covariates = tuple(covariates)
        self.acted = [self.param_names.index(p) for p in self.signs]
        self.sign = np.array([self.signs[p] for p in self.signs], dtype=np.float64)

    @property
    def coefficient_names(self) -> list[str]:
        """``"alpha: channel[web]"``: the parameter a coefficient acts on, then the covariate."""
        return [f"{p}: {c}" for p in self.signs for c in self.covariates]

    @property
    def names(self) -> list[str]:
        """Every estimated quantity: the model's parameters (the reference customers', z = 0), then the
        coefficients."""
        return [*self.param_names, *self.coefficient_names]

    def group_params(self, full: np.ndarray, Zu: np.ndarray) -> np.ndarray:
        """Per-group parameters (..., groups, parameters) from ``full`` (..., len(names)), the model's
        parameters then the coefficients, and the groups' covariates ``Zu`` (groups, covariates)."""
        full = np.asarray(full, dtype=np.float64)
        n_par = len(self.param_names)
        base = np.repeat(full[..., None, :n_par], len(Zu), axis=-2)
        return self.apply(base, full[..., n_par:], Zu)

    def apply(self, base: np.ndarray, coef: np.ndarray, Zg: np.ndarray) -> np.ndarray:
        """Per-group parameters (..., groups, parameters) from each group's parameters at z = 0 ``base``
        (..., groups, parameters; a hierarchy's segment values), the coefficients ``coef`` (...,
        len(coefficient_names)) and each group's covariates ``Zg`` (groups, covariates)."""
        coef = np.asarray(coef, dtype=np.float64)
        coef = coef.reshape(*coef.shape[:-1], len(self.acted), len(self.covariates))
        out = np.array(base, dtype=np.float64)
        scale = np.exp(self.sign[:, None] * np.einsum("...ek,gk->...eg", coef, Zg))  # (..., effects, groups)
        out[..., self.acted] *= np.swapaxes(scale, -1, -2)
        return out

    def gradient(self, grad_g: np.ndarray, theta_g: np.ndarray, full: np.ndarray, Zu: np.ndarray) -> np.ndarray:
        """The gradient in ``full`` (the module docstring's chain rule) from the gradient in each group's
        parameters ``grad_g`` (groups, parameters) at ``theta_g`` (groups, parameters)."""
        n_par = len(self.param_names)
        base = np.asarray(full[:n_par], dtype=np.float64)
        out = np.empty(len(full))
        out[:n_par] = (grad_g * theta_g).sum(axis=0) / base
        scaled = (grad_g * theta_g)[:, self.acted] * self.sign  # (groups, effects)
        out[n_par:] = (scaled.T @ Zu).ravel()
        return out
