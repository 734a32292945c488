"""Run the command line in the test process: ``clvmodels ARGS`` without a new interpreter per call.

``cli.main`` is the whole program behind the ``clvmodels`` entry point (``python -m clvmodels`` only calls
it and exits with its status), so a call here sees the same exit codes and output a user sees. The few
tests that need a real process (the entry point itself, signals) start one.
"""

from __future__ import annotations

import contextlib
import io
import subprocess

from clvmodels.cli import main


def run_cli(*args) -> subprocess.CompletedProcess:
    """``clvmodels ARGS`` in this process; the exit status, stdout and stderr as a CompletedProcess."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # --help and --version exit from argparse, as in a process
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["clvmodels", *argv], code, out.getvalue(), err.getvalue())
