"""Writing results to disk atomically: tables as CSV, Parquet or Excel (by extension), text and JSON.

Every writer goes through :func:`atomic_path`: the content is written to a temporary file beside the
target (``.NAME.PID.XXXXXXXX.part``) and renamed over it only when complete, so a failed run never leaves a
half-written file. A process killed outright (kill -9) cannot delete its temporary file; the next write
into that folder removes the temporary files of this user whose process is no longer running.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from .errors import DataError

__all__ = ["atomic_path", "temp_path", "check_outputs", "private_temp_dir", "remove_stale", "pid_running",
           "TEMP_FILE_NAME", "write_table", "write_text", "table_format", "read_summary"]

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


#: Our temporary files: ``.NAME.PID.XXXXXXXX.part`` beside the output (XXXXXXXX from :func:`tempfile.mkstemp`).
TEMP_FILE_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.part$")


def pid_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (True where that cannot be told)."""
    if os.name != "posix" or pid <= 0:
        return True  # os.kill(pid, 0) is a probe only on POSIX
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def remove_stale(folder: str | os.PathLike, pattern: re.Pattern[str]) -> None:
    """Delete the files and folders in ``folder`` whose names match ``pattern`` (a regex with a ``pid``
    group), that belong to this user, and whose process is no longer running. Nothing else is touched."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_running(int(match["pid"])):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:
            continue


def private_temp_dir(prefix: str) -> str:
    """A new private folder ``PREFIX-PID-XXXXXXXX`` in the system temporary directory, after removing
    this user's folders of that prefix whose process is no longer running (left by kill -9)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(?P<pid>[0-9]+)-[a-z0-9_]{{8}}$")
    remove_stale(tempfile.gettempdir(), pattern)
    return tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-")


def _output_folder(path: Path) -> Path:
    """The folder an output file goes to; a DataError if it does not exist."""
    if not path.parent.is_dir():
        raise DataError(f"output folder {str(path.parent)!r} does not exist")
    return path.parent


@contextlib.contextmanager
def temp_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty temporary file beside ``path`` (``.NAME.PID.XXXXXXXX.part``), deleted on exit
    unless the caller has moved it; stale temporary files of dead processes in that folder go first."""
    target = Path(path)
    folder = _output_folder(target)
    if target.is_dir():
        raise DataError(f"the output {os.fspath(path)} is a folder; give a file name")
    remove_stale(folder, TEMP_FILE_NAME)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=folder)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise DataError(f"cannot write {os.fspath(path)}: folder {str(folder)} is not writable") from None
        raise
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual mode
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure delete it."""
    with temp_path(path) as tmp:
        yield tmp
        os.replace(tmp, path)


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, and case-insensitive file systems
    except OSError:
        return False


def check_outputs(outputs: Sequence[str | os.PathLike | None], inputs: Sequence[str | os.PathLike | None],
                  folders: Sequence[str | os.PathLike | None] = (), names: Sequence[str] | None = None) -> None:
    """Refuse, before any work, outputs that would replace an input or each other.

    Parameters
    ----------
    outputs
        Files to be written (None entries are ignored).
    inputs
        Files to be read; glob patterns are expanded.
    folders
        Folders to be written into.
    names
        What gave each output (a command line's flag), named in the message after its path.

    Raises
    ------
    DataError
        An output that is an input (the same path, or the same file through a symbolic or hard link); an
        output given twice; an input or output file that is a folder; an output whose folder does not
        exist; a folder that is a file.
    """
    files_in = []
    for given in (os.fspath(p) for p in inputs if p is not None):
        for name in (sorted(glob.glob(given)) if glob.has_magic(given) else [given]):
            if os.path.isdir(name):
                raise DataError(f"{name} is a folder; give a file")
            files_in.append(name)
    written: list[str] = []
    named = list(names) if names is not None else [""] * len(outputs)
    for out, given in ((os.fspath(p), n) for p, n in zip(outputs, named) if p is not None):
        what = f"the output {out}" + (f" ({given})" if given else "")
        if os.path.isdir(out):
            raise DataError(f"{what} is a folder; give a file name")
        _output_folder(Path(out))
        for name in files_in:
            if _same_file(out, name):
                same = "" if os.path.realpath(out) == os.path.realpath(name) else f" ({name}, the same file)"
                raise DataError(f"{what} is also an input{same}; write to another name")
        for name in written:
            if _same_file(out, name):
                raise DataError(f"{what} is given twice" + ("" if out == name else f" (as {name})"))
        written.append(out)
    for folder in (os.fspath(p) for p in folders if p is not None):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise DataError(f"{folder} is a file, not a folder")


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

    CSV customer ids are read as text exactly as written, so codes such as "007", "NA" or "null" survive
    (other columns keep the usual missing-value markers); Parquet keeps its types and the time unit
    stored with it.
    """
    where = os.fspath(path)
    fmt = table_format(path)
    if fmt == "excel":
        raise DataError(f"{where}: summaries are read from .csv or .parquet, not Excel")
    if os.path.isdir(path):
        raise DataError(f"the summary {where} is a folder; give a file")
    if not os.path.exists(path):
        raise DataError(f"no summary file at {where!r}")
    if fmt == "csv":
        try:
            df = pd.read_csv(path, dtype={"customer_id": str})
        except pd.errors.EmptyDataError:
            raise DataError(f"the summary {where} has no customers (the file is empty)") from None
        if "customer_id" in df.columns:
            ids = pd.read_csv(path, usecols=["customer_id"], dtype=str, na_filter=False)["customer_id"]
            empty = ids.str.strip() == ""
            if empty.any():
                rows = empty.to_numpy().nonzero()[0]
                raise DataError(f"{where}: missing customer id", columns=["customer_id"], rows=rows[:5],
                                n_rows=len(rows))
            df["customer_id"] = ids
    else:
        df = pd.read_parquet(path)
    if len(df) == 0:
        raise DataError(f"the summary {where} has no customers")
    if df.index.name == "customer_id":
        return df
    if "customer_id" not in df.columns:
        raise DataError(f"{where} has no customer_id column", columns=["customer_id"])
    return df.set_index("customer_id")
