"""Weighted sums of per-row terms, the inner loop of every likelihood (numpy only).

A sum over a million rows runs on the calling thread (``einsum``) rather than through BLAS: BLAS wakes
its threads for each dot product, and on a busy machine they wait for a free core, which costs
milliseconds per call, several times the sum itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["total", "group_sums"]


def total(w: np.ndarray, v: np.ndarray) -> float:
    """sum_i w_i v_i."""
    return float(np.einsum("i,i->", w, v))


def group_sums(w: np.ndarray, columns: Sequence, rows: np.ndarray | None, n_groups: int) -> np.ndarray:
    """The sums of ``w * column`` by group for each of ``columns`` (per-row arrays, or numbers the same at
    every row; ``rows``: each row's group): (n_groups, len(columns))."""
    if n_groups == 1:
        return np.array([[total(w, c) if np.ndim(c) else c * float(w.sum()) for c in columns]])
    return np.stack([np.bincount(rows, weights=w * c, minlength=n_groups) for c in columns], axis=1)
