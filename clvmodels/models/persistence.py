"""Saving and loading fitted models as JSON: never pickle.

A file holds one or more named models, each with its options, parameters, standard errors, covariance,
fit statistics, time unit and the fingerprint of the data it was fitted on, plus the package version and
a format version. A SHA-256 of the content guards against edits: a changed number is refused, not used.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from ..errors import DataError
from ..files import write_text
from ._base import MODEL_REGISTRY, SummaryModel
from ._mle import FitResult

__all__ = ["save_models", "load_models", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "clvmodels-models"
FORMAT_VERSION = 1


def _model_to_dict(model: SummaryModel) -> dict[str, Any]:
    model._check_fitted()
    res = model.result_
    return {
        "model": model.model_name,
        "title": res.model,
        "options": _plain(model.get_params()),
        "time_unit": res.time_unit,
        "param_names": list(res.param_names),
        "params": dict(res.params),
        "se": {k: (v if np.isfinite(v) else None) for k, v in res.se.items()},
        "cov": [[(v if np.isfinite(v) else None) for v in row] for row in np.asarray(res.cov).tolist()],
        "loglik": res.loglik,
        "n_obs": res.n_obs,
        "n_unique": res.n_unique,
        "converged": res.converged,
        "iterations": res.iterations,
        "message": res.message,
        "extra": dict(res.extra),
        "fingerprint": model.fingerprint_,
        "fitted_attributes": {k: v for k, v in vars(model).items()
                              if k.endswith("_") and isinstance(v, (int, float, str)) and k not in
                              ("loglik_", "time_unit_", "n_customers_", "fingerprint_")},
    }


def _model_from_dict(d: dict[str, Any]) -> SummaryModel:
    cls = MODEL_REGISTRY.get(d.get("model", ""))
    if cls is None:
        raise DataError(f"unknown model type {d.get('model')!r} in model file")
    if tuple(d["param_names"]) != cls.param_names or set(d["params"]) != set(cls.param_names):
        raise DataError(f"the {cls.__name__} in the model file has parameters {list(d['params'])}, "
                        f"expected {list(cls.param_names)}")
    model = cls(**d["options"])
    nan = float("nan")
    cov = np.array([[nan if v is None else v for v in row] for row in d["cov"]], dtype=np.float64)
    cov.flags.writeable = False
    result = FitResult(
        model=d["title"], param_names=tuple(d["param_names"]), params=dict(d["params"]),
        se={k: nan if v is None else v for k, v in d["se"].items()}, cov=cov,
        loglik=d["loglik"], n_obs=d["n_obs"], n_unique=d["n_unique"], converged=d["converged"],
        iterations=d["iterations"], message=d["message"], time_unit=d["time_unit"],
        extra=dict(d.get("extra", {})))
    model._set_result(result, d["fingerprint"])
    for k, v in d.get("fitted_attributes", {}).items():
        setattr(model, k, v)
    return model


def _checksum(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def save_models(models: dict[str, SummaryModel], path: str | os.PathLike) -> None:
    """Write fitted models to one JSON file (atomically)."""
    from .. import __version__

    content = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
               "models": {name: _model_to_dict(m) for name, m in models.items()}}
    content["sha256"] = _checksum(content)
    write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n", path)


def _plain(value: Any) -> Any:
    """JSON-ready copies of option values (numpy scalars become Python numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def read_checked(path: str | os.PathLike, fmt: str, version_max: int, what: str) -> dict[str, Any]:
    """The content of a clvmodels JSON file of format ``fmt``, after checking its format version and its
    checksum (DataError for a missing, foreign, newer or edited file). Shared by the Bayesian models."""
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"no model file at {os.fspath(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{os.fspath(path)} is not a clvmodels model file (not JSON: {exc})") from None
    if not isinstance(content, dict) or content.get("format") != fmt:
        raise DataError(f"{os.fspath(path)} is not a clvmodels {what}")
    version = content.get("format_version")
    if not isinstance(version, int) or version > version_max:
        raise DataError(f"{os.fspath(path)} uses model-file format {version}, newer than this clvmodels reads "
                        f"({version_max}); upgrade clvmodels (file written by {content.get('package_version')})")
    stored = content.pop("sha256", None)
    try:
        actual = _checksum(content)
    except ValueError:  # NaN or infinity written into the file by hand
        actual = None
    if stored != actual:
        raise DataError(f"{os.fspath(path)} has been modified since it was saved (checksum mismatch); refit "
                        "and save again rather than editing model files")
    return content


def load_models(path: str | os.PathLike) -> dict[str, SummaryModel]:
    """Read a model file written by :func:`save_models`: ``{name: fitted model}``."""
    content = read_checked(path, FORMAT, FORMAT_VERSION, "model file")
    try:
        return {name: _model_from_dict(d) for name, d in content["models"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{os.fspath(path)} is incomplete: {exc}") from None


def load_model(path: str | os.PathLike) -> SummaryModel:
    """Read a model file holding a single model."""
    models = load_models(path)
    if len(models) != 1:
        raise DataError(f"{os.fspath(path)} holds {len(models)} models ({', '.join(models)}); use load_models")
    return next(iter(models.values()))
