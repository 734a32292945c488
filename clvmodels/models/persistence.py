"""Saving and loading fitted models as JSON: never pickle.

A file holds one or more named models, each with its options, parameters, standard errors, covariance,
fit statistics, time unit and the fingerprint of the data it was fitted on, plus the package version and
a format version. A SHA-256 of the content guards against accidental edits and corruption: a changed
number is refused, not used. Anyone can recompute it, so it is no signature: every value read is also
checked as strictly as a fit produces it (types, ranges, names, shapes), and file fields can set only the
fitted attributes a model class lists in ``saved_attributes``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from ..errors import DataError
from ..files import write_text
from ..timeunits import TIME_UNITS
from ._mle import FitResult
from .covariate_effects import CovariateEffects

#: A fitted estimator of :mod:`clvmodels.models` (a ``SummaryModel``; the estimators import this module).
SummaryModel = Any
#: Estimator classes by name, for loading saved models (each ``SummaryModel`` subclass registers itself).
MODEL_REGISTRY: dict[str, type] = {}

__all__ = ["save_models", "load_models", "load_model", "FORMAT", "FORMAT_VERSION", "model_keys", "MODEL_REGISTRY", "Fields",
           "OPTION_CHECKS", "checksum", "model_to_dict", "model_from_dict", "plain", "read_json", "read_checked"]

FORMAT = "clvmodels-models"
FORMAT_VERSION = 1
def model_keys() -> dict[str, str]:
    """The short names models are filed under by the command line ("bgnbd"), and the class each names:
    every registered class's ``short_name``."""
    return {cls.short_name: name for name, cls in MODEL_REGISTRY.items() if getattr(cls, "short_name", "")}


def _named_class(key: str | None) -> str | None:
    """The model class a file key names ("bgnbd" or "BetaGeo"), or None for any other key."""
    return model_keys().get(key) or (key if key in MODEL_REGISTRY else None)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Fields:
    """Checks of the values read from a model file: each failure is a DataError naming the file and the
    field (``models.bgnbd.params.r``) and saying what the field must hold."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def fail(self, field: str, reason: str, value: Any) -> NoReturn:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataError(f"{self.path}: field {field} must be {reason}, got {shown}; refit and save again "
                        "rather than editing model files")

    def number(self, value: Any, field: str, *, low: float | None = None, high: float | None = None,
               strict: bool = False, none: bool = False) -> float | None:
        """A finite number (not a bool) in [low, high], or in (low, high] when ``strict``; or None."""
        if value is None and none:
            return None
        if strict:
            reason = f"a number > {low:g}"
        elif low is not None:
            reason = f"a number >= {low:g}"
        else:
            reason = "a finite number"
        if high is not None:
            reason += f" and <= {high:g}"
        if none:
            reason += " (or null)"
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                or (low is not None and (value <= low if strict else value < low))
                or (high is not None and value > high)):
            self.fail(field, reason, value)
        return float(value)

    def integer(self, value: Any, field: str, *, low: int, none: bool = False) -> int | None:
        """A whole number (not a bool) >= low, or None."""
        if value is None and none:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            self.fail(field, f"a whole number >= {low}" + (" (or null)" if none else ""), value)
        return value

    def text(self, value: Any, field: str, *, choices: tuple[str, ...] | None = None,
             none: bool = False) -> str | None:
        """A string (one of ``choices`` if given), or None."""
        if value is None and none:
            return None
        if not isinstance(value, str) or (choices is not None and value not in choices):
            self.fail(field, ("one of " + ", ".join(map(repr, choices)) if choices else "text")
                      + (" (or null)" if none else ""), value)
        return value

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field, "true or false", value)
        return value

    def mapping(self, value: Any, field: str, *, keys: tuple[str, ...] | None = None,
                allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        """An object: with exactly ``keys``, or with keys among ``allowed``."""
        if not isinstance(value, dict):
            self.fail(field, "an object", value)
        if keys is not None and (set(value) != set(keys) or len(value) != len(keys)):
            self.fail(field, "an object with exactly the keys " + ", ".join(keys), sorted(value))
        if allowed is not None and not set(value) <= set(allowed):
            self.fail(field, "an object with keys among " + (", ".join(allowed) or "(none)"), sorted(value))
        return value

    def sequence(self, value: Any, field: str, *, length: int | None = None) -> list[Any]:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            self.fail(field, "a list" + (f" of {length}" if length is not None else ""), value)
        return value

    def digest(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not _SHA256.match(value):
            self.fail(field, "a SHA-256 (64 hexadecimal digits)", value)
        return value


def _model_class(d: dict[str, Any], check: Fields, where: str, key: str | None) -> type:
    name = check.text(d.get("model"), f"{where}.model", choices=tuple(MODEL_REGISTRY))
    expected = _named_class(key)
    if expected is not None and name != expected:
        raise DataError(f"{check.path}: the model under the key {key!r} is a {name}, not a {expected}")
    return MODEL_REGISTRY[name]


def _check_start(value: Any, field: str, check: Fields, cls: type) -> Any:
    if value is None:
        return None
    start = check.mapping(value, field, keys=cls.param_names)
    return {k: check.number(start[k], f"{field}.{k}", low=0.0, strict=True) for k in cls.param_names}


def _check_covariates(value: Any, field: str, check: Fields, cls: type) -> list[str] | None:
    if value is None:
        return None
    names = check.sequence(value, field)
    if not names:
        check.fail(field, "a list of column names (or null)", value)
    return [check.text(v, f"{field}[{i}]") for i, v in enumerate(names)]


#: How each constructor option of the maximum-likelihood models is checked when loaded.
OPTION_CHECKS: dict[str, Callable[[Any, str, Fields, type], Any]] = {
    "maxiter": lambda v, f, c, cls: c.integer(v, f, low=1),
    "start": _check_start,
    "covariates": _check_covariates,
}


def _design_from_dict(value: Any, columns: list[str], check: Fields, where: str):
    """The fitted covariate design a model file holds, every value checked (the columns must be the
    ``covariates`` option's)."""
    from ..data.covariates import CovariateDesign

    d = check.mapping(value, where, keys=("columns", "kinds", "levels"))
    if d["columns"] != columns:
        check.fail(f"{where}.columns", "the covariates option's columns " + ", ".join(columns), d["columns"])
    kinds = check.mapping(d["kinds"], f"{where}.kinds", keys=tuple(columns))
    for col in columns:
        check.text(kinds[col], f"{where}.kinds.{col}", choices=("categorical", "numeric"))
    categorical = tuple(c for c in columns if kinds[c] == "categorical")
    levels = check.mapping(d["levels"], f"{where}.levels", keys=categorical)
    for col in categorical:
        values = check.sequence(levels[col], f"{where}.levels.{col}")
        if len(values) < 2 or any(isinstance(v, (dict, list)) or v is None for v in values):
            check.fail(f"{where}.levels.{col}", "a list of at least two levels (text, numbers or true/false)", values)
    return CovariateDesign.from_dict(d)


def model_to_dict(model: SummaryModel) -> dict[str, Any]:
    """A fitted model as JSON-ready values (the inverse of :func:`model_from_dict`)."""
    model.check_is_fitted()
    res = model.result_
    return {
        "model": model.model_name,
        "title": res.model,
        "options": plain(model.get_params()),
        "time_unit": res.time_unit,
        "param_names": list(res.param_names),
        "params": plain(dict(res.params)),
        "se": {k: (float(v) if np.isfinite(v) else None) for k, v in res.se.items()},
        "cov": [[(v if np.isfinite(v) else None) for v in row] for row in np.asarray(res.cov).tolist()],
        "loglik": float(res.loglik),
        "n_obs": plain(res.n_obs),
        "n_unique": plain(res.n_unique),
        "converged": bool(res.converged),
        "iterations": plain(res.iterations),
        "message": res.message,
        "extra": plain(dict(res.extra)),
        "fingerprint": model.fingerprint_,
        "covariates": model.design_.to_dict() if model.design_ is not None else None,
        "fitted_attributes": {k: plain(getattr(model, k)) for k in type(model).saved_attributes
                              if hasattr(model, k)},
    }


def model_from_dict(d: Any, check: Fields, where: str, key: str | None = None) -> SummaryModel:
    """The fitted model described by ``d`` (an entry of a model file), every value checked."""
    d = check.mapping(d, where)
    cls = _model_class(d, check, where, key)
    options = check.mapping(d.get("options"), f"{where}.options", allowed=cls.option_names())
    options = {name: cls.option_checks[name](value, f"{where}.options.{name}", check, cls)
               for name, value in options.items()}
    design, linear, names = None, (), cls.param_names
    if options.get("covariates"):
        design = _design_from_dict(d.get("covariates"), options["covariates"], check, f"{where}.covariates")
    elif d.get("covariates") is not None:
        check.fail(f"{where}.covariates", "null for a model without the covariates option", d.get("covariates"))
    if design is not None or cls.derived_covariates:
        effects = CovariateEffects(cls.param_names, cls.covariate_signs,
                                   [*cls.derived_covariates, *(design.names_ if design is not None else [])])
        names, linear = tuple(effects.names), tuple(effects.coefficient_names)
    k = len(names)
    if d.get("param_names") != list(names):
        check.fail(f"{where}.param_names", "the list " + ", ".join(names), d.get("param_names"))
    params = check.mapping(d.get("params"), f"{where}.params", keys=names)
    params = {n: (check.number(params[n], f"{where}.params.{n}") if n in linear
                  else check.number(params[n], f"{where}.params.{n}", low=0.0, strict=True)) for n in names}
    se = check.mapping(d.get("se"), f"{where}.se", keys=names)
    nan = float("nan")
    se = {n: check.number(se[n], f"{where}.se.{n}", low=0.0, none=True) for n in names}
    rows = check.sequence(d.get("cov"), f"{where}.cov", length=k)
    cov = np.array([[check.number(v, f"{where}.cov[{i}][{j}]", none=True)
                     for j, v in enumerate(check.sequence(row, f"{where}.cov[{i}]", length=k))]
                    for i, row in enumerate(rows)], dtype=np.float64).reshape(k, k)
    if np.any(np.diag(cov) < 0):
        check.fail(f"{where}.cov", "a covariance matrix (variances >= 0)", np.diag(cov).tolist())
    cov.flags.writeable = False
    extra = check.mapping(d.get("extra", {}), f"{where}.extra")
    for name, value in extra.items():
        if value is not None and not isinstance(value, (str, bool)):
            check.number(value, f"{where}.extra.{name}")
    attributes = check.mapping(d.get("fitted_attributes", {}), f"{where}.fitted_attributes",
                               allowed=tuple(cls.saved_attributes))
    attributes = {name: check.number(value, f"{where}.fitted_attributes.{name}", low=cls.saved_attributes[name][0],
                                     high=cls.saved_attributes[name][1])
                  for name, value in attributes.items()}
    fingerprint = check.digest(d.get("fingerprint"), f"{where}.fingerprint")
    result = FitResult(
        model=check.text(d.get("title"), f"{where}.title"), param_names=names, params=params,
        se={n: nan if v is None else v for n, v in se.items()}, cov=cov,
        loglik=check.number(d.get("loglik"), f"{where}.loglik"),
        n_obs=check.number(d.get("n_obs"), f"{where}.n_obs", low=0.0, strict=True),
        n_unique=check.integer(d.get("n_unique"), f"{where}.n_unique", low=1),
        converged=check.flag(d.get("converged"), f"{where}.converged"),
        iterations=check.integer(d.get("iterations"), f"{where}.iterations", low=0),
        message=check.text(d.get("message"), f"{where}.message"),
        time_unit=check.text(d.get("time_unit"), f"{where}.time_unit", choices=TIME_UNITS, none=True),
        extra=dict(extra), linear=linear)
    model = cls(**options)
    model._set_result(result, fingerprint, design)
    for name, value in attributes.items():
        setattr(model, name, value)
    return model


def checksum(content: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``content`` (sorted keys, no spaces): what a model file stores."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def save_models(models: dict[str, SummaryModel], path: str | os.PathLike) -> None:
    """Write fitted models to one JSON file (atomically). A key that names a model type ("bgnbd",
    "gamma-gamma", "BetaGeo", ...) must hold a model of that type."""
    from ..version import __version__

    for key, model in models.items():
        expected = _named_class(key)
        if expected is not None and model.model_name != expected:
            raise DataError(f"cannot save a {model.model_name} under the key {key!r}, which names a {expected}")
    content = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
               "models": {name: model_to_dict(m) for name, m in models.items()}}
    content["sha256"] = checksum(content)
    write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n", path)


def plain(value: Any) -> Any:
    """JSON-ready copies of option values (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in a model file (DataError for a missing file, a folder, or not a JSON object)."""
    where = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"the model file {where} is a folder; give a file")
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"no model file at {where!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{where} is not a clvmodels model file (not JSON: {exc})") from None
    except RecursionError:
        raise DataError(f"{where} is not a clvmodels model file (JSON nested too deeply)") from None
    if not isinstance(content, dict):
        raise DataError(f"{where} is not a clvmodels model file (not a JSON object)")
    return content


def read_checked(path: str | os.PathLike, fmt: str, version_max: int, what: str) -> dict[str, Any]:
    """The content of a clvmodels JSON file of format ``fmt``, after checking its format version and its
    checksum (DataError for a missing, foreign, newer or edited file). Shared by the Bayesian models."""
    where = os.fspath(path)
    content = read_json(path)
    if content.get("format") != fmt:
        raise DataError(f"{where} is not a clvmodels {what}")
    version = content.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"{where}: format_version must be a whole number such as {version_max}, got {version!r}; "
                        f"the file was not written by clvmodels")
    if version > version_max:
        raise DataError(f"{where} uses model-file format {version}, newer than this clvmodels reads "
                        f"({version_max}); upgrade clvmodels (file written by {content.get('package_version')})")
    stored = content.pop("sha256", None)
    try:
        actual = checksum(content)
    except ValueError:  # NaN or infinity written into the file by hand
        actual = None
    if stored != actual:
        raise DataError(f"{where} has been modified since it was saved (checksum mismatch); refit "
                        "and save again rather than editing model files")
    return content


def load_models(path: str | os.PathLike) -> dict[str, SummaryModel]:
    """Read a model file written by :func:`save_models`: ``{name: fitted model}``."""
    content = read_checked(path, FORMAT, FORMAT_VERSION, "model file")
    check = Fields(path)
    models = check.mapping(content.get("models"), "models")
    if not models:
        check.fail("models", "an object holding at least one model", models)
    return {key: model_from_dict(d, check, f"models.{key}", key) for key, d in models.items()}


def load_model(path: str | os.PathLike) -> SummaryModel:
    """Read a model file holding a single model."""
    models = load_models(path)
    if len(models) != 1:
        raise DataError(f"{os.fspath(path)} holds {len(models)} models ({', '.join(models)}); use load_models")
    return next(iter(models.values()))
