"""Saving and loading Bayesian models: the posterior as netCDF, everything else as JSON (never pickle).

``save(model, "model.json")`` writes ``model.json`` (options, segments, time unit, the maximum-likelihood
fit that started the chains, package and format versions, the posterior file's SHA-256 and a checksum
of the JSON itself) and ``model.posterior.nc`` beside it. Loading refuses a newer format, an edited JSON
and a posterior file that is not the one saved.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import DataError
from ..files import atomic_path, write_text
from ..models.persistence import _checksum, _model_from_dict, _model_to_dict, _plain, read_checked

__all__ = ["save_bayes", "load_bayes", "FORMAT", "FORMAT_VERSION"]

FORMAT = "clvmodels-bayes"
FORMAT_VERSION = 1


def _posterior_path(path: Path) -> Path:
    return path.with_name(path.stem + ".posterior.nc")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_bayes(model, path: str | os.PathLike) -> list[Path]:
    """Write a fitted Bayesian model as ``path`` (JSON) and its posterior beside it (netCDF)."""
    from .. import __version__

    model._check_fitted()
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise DataError(f"the model file must be .json, got {os.fspath(path)!r}")
    nc = _posterior_path(path)
    with atomic_path(nc) as tmp:
        model.idata_.to_netcdf(str(tmp), engine="h5netcdf")
    content = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
        "model": type(model).__name__, "options": _plain(model.get_params()),
        "segments": [str(s) if not isinstance(s, (int, float)) else s for s in _plain(list(model.segments_))],
        "time_unit": model.time_unit_, "mle": _model_to_dict(model.mle_),
        "posterior_file": nc.name, "posterior_sha256": _sha256(nc),
    }
    content["sha256"] = _checksum(content)
    write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n", path)
    return [path, nc]


def load_bayes(path: str | os.PathLike):
    """Read a Bayesian model written by :func:`save_bayes`."""
    import arviz as az

    from .hierarchical import BayesBetaGeo, BayesGammaGamma

    path = Path(path)
    content = read_checked(path, FORMAT, FORMAT_VERSION, "Bayesian model file")
    nc = path.with_name(content["posterior_file"])
    if not nc.exists():
        raise DataError(f"the posterior file {os.fspath(nc)!r} is missing")
    if _sha256(nc) != content["posterior_sha256"]:
        raise DataError(f"the posterior file {os.fspath(nc)!r} is not the one saved with {path.name}")
    classes = {"BayesBetaGeo": BayesBetaGeo, "BayesGammaGamma": BayesGammaGamma}
    if content["model"] not in classes:
        raise DataError(f"unknown Bayesian model {content['model']!r}")
    model = classes[content["model"]](**content["options"])
    model.idata_ = az.from_netcdf(str(nc))
    model.segments_ = content["segments"]
    model.time_unit_ = content["time_unit"]
    model.mle_ = _model_from_dict(content["mle"])
    return model
