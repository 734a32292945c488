"""Shared by the benchmark scripts: run a measurement in a fresh process and read back its numbers.

Each worker is a Python snippet that prints one JSON line last; it is run with ``python -c`` so that its
peak resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

#: The worker process's own peak resident memory in MiB: VmHWM, the high-water mark of its address space,
#: which starts afresh at exec. (``ru_maxrss`` would not do: Linux carries it over fork and exec, so a worker
#: started by a parent that had grown to 1 GB reports at least 1 GB.)
PEAK_MIB = ("(lambda s: int(s.split('VmHWM:')[1].split()[0]) / 1024)(open('/proc/self/status').read()) "
            "if __import__('os').path.exists('/proc/self/status') else "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024")


def run_worker(code: str, *args: str, source: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter with ``args`` as sys.argv[1:]; return its last JSON line.

    ``source``: a checkout of clvmodels (for example an earlier commit, from ``git worktree add``) whose
    ``clvmodels`` package the worker imports instead of the installed one.
    """
    env = None
    if source is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))}
    # (python -c puts the working folder first on sys.path: run a baseline from its own checkout)
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=source)
    if proc.returncode:
        raise RuntimeError(f"worker failed ({args}):\n{proc.stderr[-3000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last[last.index("{"):])  # (after anything a library wrote on the same line)


def versions(*modules) -> str:
    parts = [f"{m.__name__} {getattr(m, '__version__', '?')}" for m in modules]
    return ", ".join(parts) + f", Python {platform.python_version()}"


def check_source(source: Path | None) -> Path | None:
    """The ``--baseline`` checkout, resolved; refuse a folder without a ``clvmodels`` package."""
    if source is None:
        return None
    source = Path(source).resolve()
    if not (source / "clvmodels" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {source}: no clvmodels package there (make one with git worktree add)")
    return source


def describe_source(source: Path) -> str:
    """The commit a baseline checkout is at, for the results' header."""
    proc = subprocess.run(["git", "-C", str(source), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return proc.stdout.strip()[:80] or str(source)
