"""The benchmarks' memory measure (benchmarks/_harness.py): a worker reports its own peak, not the peak of
the process that started it (Linux carries ``ru_maxrss`` over fork and exec)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _harness import PEAK_MIB  # noqa: E402


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is read from Linux's /proc")
def test_a_workers_peak_is_its_own_not_its_parents():
    parent = np.ones(40_000_000)  # 305 MiB held by this process while the worker runs
    parent[::4096] = 2.0          # (touched: resident)
    code = f"import resource, numpy as np; a = np.ones(10_000_000); a[::512] = 2; print({PEAK_MIB})"
    peak = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 76 < peak < 250, peak  # the worker's 76 MiB array and an interpreter with numpy, not the parent's 305
    assert parent.sum() > 0
