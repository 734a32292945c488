"""Saving and loading Bayesian models: the posterior as netCDF, everything else as JSON (never pickle).

``save(model, "model.json")`` writes the posterior as ``model.posterior.<first 16 digits of its
SHA-256>.nc`` beside it, then ``model.json`` (options, segments, time unit, the maximum-likelihood fit that
started the chains, package and format versions, the posterior's file name and SHA-256, and a checksum of
the JSON itself), then deletes the posterior the replaced JSON named. A failure at any step leaves the
previous pair loadable: the JSON, written last and atomically, always names a complete posterior.
Loading follows the JSON's ``posterior_file`` (files written as ``model.posterior.nc`` load the same way),
which must be a plain file name in the JSON's folder, and refuses a newer format, an edited JSON, values a
fit cannot produce and a posterior file that is not the one saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from ..errors import DataError
from ..files import temp_path, write_text
from ..models.persistence import (OPTION_CHECKS, Fields, checksum, model_from_dict, model_to_dict, plain, read_checked,
                                  read_json)
from ..data.periods import PERIODS
from ..timeunits import TIME_UNITS
from .imports import import_arviz
from .options import SAMPLER_OPTIONS, check_sampler_option

__all__ = ["save_bayes", "load_bayes", "posterior_of", "FORMAT", "FORMAT_VERSION", "BAYES_MODELS"]

FORMAT = "clvmodels-bayes"
FORMAT_VERSION = 1
#: The Bayesian model classes a file may hold, by name (each registers itself; each names, as
#: ``mle_class``, the maximum-likelihood model its chains start from).
BAYES_MODELS: dict[str, type] = {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _posterior_path(path: Path, name: object, check: Fields) -> Path:
    """The posterior file named in the JSON at ``path``: a plain file name, resolving inside its folder."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "\0" in name or "/" in name or "\\" in name
            or os.path.basename(name) != name or not name.endswith(".nc")):
        check.fail("posterior_file", "a plain .nc file name in the model file's folder", name)
    nc = path.with_name(name)
    folder = os.path.realpath(path.parent)
    if os.path.dirname(os.path.realpath(nc)) != folder:
        raise DataError(f"{check.path}: the posterior file {name} links to {os.path.realpath(nc)}, outside the "
                        f"model file's folder {folder}")
    return nc


def posterior_of(path: str | os.PathLike) -> Path | None:
    """The posterior file a Bayesian model file names, or None for any other file (or an unreadable one)."""
    try:
        content = read_json(path)
        if content.get("format") != FORMAT:
            return None
        return _posterior_path(Path(path), content.get("posterior_file"), Fields(path))
    except DataError:
        return None


def save_bayes(model, path: str | os.PathLike) -> list[Path]:
    """Write a fitted Bayesian model as ``path`` (JSON) and its posterior beside it (netCDF); return both
    paths. Saving over a model replaces the pair as a whole (see the module's description)."""
    from ..version import __version__

    model.check_is_fitted()
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise DataError(f"the model file must be .json, got {os.fspath(path)!r}")
    old = posterior_of(path) if path.is_file() else None
    if old is not None and not re.fullmatch(rf"{re.escape(path.stem)}\.posterior(\.[0-9a-f]{{16}})?\.nc", old.name):
        old = None  # only a posterior this function names is deleted, never another file the JSON names
    with temp_path(path.with_name(path.stem + ".posterior.nc")) as tmp:
        model.idata_.to_netcdf(str(tmp), engine="h5netcdf")
        digest = _sha256(tmp)
        nc = path.with_name(f"{path.stem}.posterior.{digest[:16]}.nc")
        os.replace(tmp, nc)
    content = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
        "model": type(model).__name__, "options": plain(model.get_params()),
        "segments": [str(s) if not isinstance(s, (int, float)) else s for s in plain(list(model.segments_))],
        "time_unit": model.time_unit_, "mle": model_to_dict(model.mle_),
        "posterior_file": nc.name, "posterior_sha256": digest,
    }
    content["sha256"] = checksum(content)
    try:
        write_text(json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n", path)
    except BaseException:
        if old is None or old.name != nc.name:
            nc.unlink()
        raise
    if old is not None and old.name != nc.name:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return [path, nc]


def _options(value: object, check: Fields, cls: type) -> dict:
    """The options of a ``cls`` model: the segment, the sampler's and any of the class's own (checked by its
    ``option_checks``, as a maximum-likelihood model's are)."""
    options = check.mapping(value, "options", allowed=cls.option_names())
    own = getattr(cls, "option_checks", {})
    checked = {}
    for name, v in options.items():
        if name == "segment":
            checked[name] = check.text(v, "options.segment", none=True)
        elif name == "covariates":
            checked[name] = OPTION_CHECKS["covariates"](v, "options.covariates", check, cls)
        elif name in own:
            checked[name] = own[name](v, f"options.{name}", check, cls)
        else:
            try:
                checked[name] = check_sampler_option(name, v)
            except ValueError:
                check.fail(f"options.{name}", SAMPLER_OPTIONS[name], v)
    return checked


def _segments(value: object, check: Fields) -> list:
    labels = check.sequence(value, "segments")
    for i, label in enumerate(labels):
        if not isinstance(label, (str, bool)):
            check.number(label, f"segments[{i}]")
    if not labels or len(set(labels)) != len(labels):
        check.fail("segments", "a non-empty list of distinct labels", labels)
    return labels


def load_bayes(path: str | os.PathLike):
    """Read a Bayesian model written by :func:`save_bayes`."""
    az = import_arviz()

    path = Path(path)
    content = read_checked(path, FORMAT, FORMAT_VERSION, "Bayesian model file")
    check = Fields(path)
    name = check.text(content.get("model"), "model", choices=tuple(BAYES_MODELS))
    cls = BAYES_MODELS[name]
    options = _options(content.get("options"), check, cls)
    segments = _segments(content.get("segments"), check)
    # (a time unit, or a BG/BB model's period)
    time_unit = check.text(content.get("time_unit"), "time_unit", choices=tuple(dict.fromkeys(TIME_UNITS + PERIODS)),
                           none=True)
    mle = model_from_dict(content.get("mle"), check, "mle", key=cls.mle_class.__name__)
    if (mle.get_params().get("covariates") or None) != (options.get("covariates") or None):
        check.fail("mle.options.covariates", "the model's covariates", mle.get_params().get("covariates"))
    if mle.time_unit_ != time_unit:
        check.fail("mle.time_unit", f"the model's time unit {time_unit!r}", mle.time_unit_)
    digest = check.digest(content.get("posterior_sha256"), "posterior_sha256")
    nc = _posterior_path(path, content.get("posterior_file"), check)
    if not nc.is_file():
        raise DataError(f"the posterior file {os.fspath(nc)!r} is missing")
    if _sha256(nc) != digest:
        raise DataError(f"the posterior file {os.fspath(nc)!r} is not the one saved with {path.name}")
    model = cls(**options)
    model.idata_ = az.from_netcdf(str(nc))
    model.segments_ = segments
    model.time_unit_ = time_unit
    model.mle_ = mle
    return model
