"""Saving and loading fitted models: one call each, for every model however fitted, and the files the
command line reads and writes (never pickle).

Maximum-likelihood models share one JSON file (:mod:`clvmodels.models.persistence`); a Bayesian model is
a JSON file with its posterior in a netCDF file beside it (:mod:`clvmodels.bayes.persistence`). Both are
read by :func:`load`, which returns the models by name whatever the file holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import DataError
from .models.persistence import load_models, read_json, save_models

__all__ = ["save", "load"]


def save(models: Any, path: str | os.PathLike) -> list[Path]:
    """Save one fitted model, or a dict of them by name, to ``path`` (.json); return the files written.

    Maximum-likelihood models go together into one file (a single model under its short name, "bgnbd",
    as the command line files it); a Bayesian model is saved alone, its posterior beside the file.
    """
    if not isinstance(models, dict):
        models = {getattr(models, "short_name", "") or type(models).__name__: models}
    alone = [name for name, model in models.items() if getattr(model, "saved_alone", False)]
    if alone:
        if len(models) > 1:
            raise DataError(f"a Bayesian model ({alone[0]}) is saved alone, its posterior beside the file: "
                            "save each model to its own file")
        return list(next(iter(models.values())).save(path))
    save_models(models, path)
    return [Path(path)]


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The fitted models in a file written by :func:`save`, a model's ``save`` or the command line,
    by name (DataError for a missing, foreign, newer or edited file)."""
    from .bayes.persistence import FORMAT as BAYES_FORMAT, load_bayes

    if read_json(path).get("format") == BAYES_FORMAT:
        model = load_bayes(path)
        return {type(model).__name__: model}
    return load_models(path)
