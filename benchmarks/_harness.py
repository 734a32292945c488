"""Shared by the benchmark scripts: run a measurement in a fresh process and read back its numbers.

Each worker is a Python snippet that prints one JSON line last; it is run with ``python -c`` so that its
peak resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

PEAK_MIB = "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"


def run_worker(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter with ``args`` as sys.argv[1:]; return its last JSON line."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"worker failed ({args}):\n{proc.stderr[-3000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last[last.index("{"):])  # (after anything a library wrote on the same line)


def versions(*modules) -> str:
    parts = [f"{m.__name__} {getattr(m, '__version__', '?')}" for m in modules]
    return ", ".join(parts) + f", Python {platform.python_version()}"
