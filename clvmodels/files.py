"""Writing results to disk atomically: tables as CSV, Parquet or Excel (by extension), text and JSON.

Every writer goes through :func:`atomic_path`: the content is written to a temporary file beside the
target and renamed over it only when complete, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .errors import DataError

__all__ = ["atomic_path", "write_table", "write_text", "table_format", "read_summary"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}


def table_format(path: str | os.PathLike) -> str:
    """``"csv"``, ``"parquet"`` or ``"excel"`` from a file name, or DataError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise DataError(f"cannot tell the table format of {os.fspath(path)!r}: use a .csv, .parquet or .xlsx name")
    return _FORMATS[suffix]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure delete it."""
    target = Path(path)
    if not target.parent.exists():
        raise DataError(f"output folder {str(target.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a DataFrame as CSV, Parquet or Excel (chosen by extension), atomically."""
    fmt = table_format(path)
    if fmt == "excel" and importlib.util.find_spec("openpyxl") is None:
        raise DataError("writing .xlsx needs openpyxl: pip install 'clvmodels[excel]'")
    with atomic_path(path) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=index)
        elif fmt == "parquet":
            df.to_parquet(tmp, index=index)
        else:
            df.to_excel(tmp, index=index, engine="openpyxl")
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write text (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """Read a customer summary written by ``clvmodels summarize`` (CSV or Parquet), indexed by customer_id.

    CSV customer ids are read as text, so codes such as "007" survive; Parquet keeps its types and the
    time unit stored with it.
    """
    fmt = table_format(path)
    if fmt == "excel":
        raise DataError(f"{os.fspath(path)}: summaries are read from .csv or .parquet, not Excel")
    if not os.path.exists(path):
        raise DataError(f"no summary file at {os.fspath(path)!r}")
    if fmt == "csv":
        df = pd.read_csv(path, dtype={"customer_id": str})
    else:
        df = pd.read_parquet(path)
        if df.index.name == "customer_id":
            return df
    if "customer_id" not in df.columns:
        raise DataError(f"{os.fspath(path)} has no customer_id column", columns=["customer_id"])
    return df.set_index("customer_id")
