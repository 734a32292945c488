"""Fitting in worker processes (clvmodels.workers): the same fit as in the caller, the worker's warnings and
exceptions raised in the caller, and no worker left running."""

import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import clvmodels as clv
from clvmodels.errors import DataError, DataWarning
from clvmodels import workers
from clvmodels.workers import WorkerError, WorkerFits


class Warns:
    """Fits by warning about the data once, then storing what it was given."""

    def fit(self, value, *, scale=1.0):
        warnings.warn("odd data: check it", DataWarning)
        self.value_ = value * scale
        self.pid_ = os.getpid()
        return self


class Refuses:
    def fit(self, value):
        raise DataError("no customers", columns=["customer_id"])


class Sleeps:
    def fit(self, path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        return self


class Dies:
    def fit(self):
        os.kill(os.getpid(), signal.SIGKILL)


class NotRebuilt(Exception):
    """An exception whose class cannot be rebuilt from its pickle (its __init__ needs two arguments)."""

    def __init__(self, what, where):
        super().__init__(f"{what} at {where}")


class RaisesNotRebuilt:
    def fit(self):
        raise NotRebuilt("bad", "row 3")


class Waits:
    """Fits in ``seconds`` with a child process of its own (as PyMC's sampler starts its chains)."""

    def fit(self, seconds):
        import multiprocessing

        child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0.1,))
        child.start()
        child.join()
        time.sleep(seconds)
        self.child_exit_ = child.exitcode
        return self


def test_workers_fit_as_the_caller_would(cal):
    with WorkerFits({"bg": clv.BetaGeo()}, cal) as fits:
        fitted = fits.results()["bg"]
    assert fitted.params_ == clv.BetaGeo().fit(cal).params_
    with pytest.warns(DataWarning, match="odd data: check it"):
        with WorkerFits({"a": Warns(), "b": Warns()}, 2.0, scale=3.0) as fits:
            got = fits.results()
    assert got["a"].value_ == got["b"].value_ == 6.0
    assert got["a"].pid_ != os.getpid() and got["a"].pid_ != got["b"].pid_  # (one process each)


@pytest.mark.slow
def test_a_workers_exception_is_raised_in_the_caller():
    with WorkerFits({"ok": Warns(), "refuses": Refuses()}, 1.0) as fits:
        with pytest.raises(DataError, match=r"no customers \[column 'customer_id'\]"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                fits.results()
    with WorkerFits({"dies": Dies()}) as fits:
        with pytest.raises(WorkerError, match="'dies' exited with code -9 without an answer"):
            fits.results()
    with WorkerFits({"odd": RaisesNotRebuilt()}) as fits:  # its text comes back, with the worker's traceback
        with pytest.raises(WorkerError, match=r"(?s)NotRebuilt: bad at row 3.*missing 1 required positional"):
            fits.results()


@pytest.mark.slow
def test_workers_outlive_the_thread_that_started_them_and_may_start_processes():
    started = {}
    thread = threading.Thread(target=lambda: started.setdefault("fits", WorkerFits({"waits": Waits()}, 3.0)))
    thread.start()
    thread.join()  # (the starting thread ends while the fit runs)
    with started["fits"] as fits:
        assert fits.results()["waits"].child_exit_ == 0


def test_leaving_the_block_stops_the_workers(tmp_path):
    path = tmp_path / "pid"
    with pytest.raises(KeyboardInterrupt):
        with WorkerFits({"sleeps": Sleeps()}, path):
            for _ in range(300):  # until the worker runs its fit
                if path.exists() and path.read_text():
                    break
                time.sleep(0.1)
            raise KeyboardInterrupt
    pid = int(path.read_text())
    with pytest.raises(ProcessLookupError):  # gone (and reaped) at once, not after its 60 s
        os.kill(pid, 0)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc")
@pytest.mark.parametrize(("signum", "group", "code", "said"), [(signal.SIGTERM, False, 143, "terminated"),
                                                               (signal.SIGINT, True, 130, "interrupted")])
@pytest.mark.parametrize("after", [0.0, 1.0])
def test_a_signal_during_the_demo_stops_it_and_its_fitting_workers(tmp_path, signum, group, code, said, after):
    """SIGTERM to the demo, or Ctrl-C (SIGINT to its process group, workers included), as soon as its two
    workers exist (while they start) and a second later (the job runs its DuckDB queries meanwhile)."""
    proc = subprocess.Popen([sys.executable, "-m", "clvmodels", "demo", "-o", str(tmp_path / "demo"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        workers: list[int] = []
        for _ in range(1200):
            workers = [p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)]
            if len(workers) == 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert len(workers) == 2, "the demo fits its two Bayesian hierarchies in two workers"
        time.sleep(after)
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code and err == f"clvmodels: {said}\n", err
    left = [p for p in workers if os.path.exists(f"/proc/{p}")]
    assert not left, [_cmdline(p) for p in left]


def test_a_worker_whose_caller_is_gone_ends_quietly():
    # where the kernel does not stop a worker with its caller, the worker finishes its fit and finds
    # the answers' pipe closed: it ends without a traceback
    import multiprocessing
    import pickle

    tasks_out, tasks_in = multiprocessing.Pipe(duplex=False)
    answers_out, answers_in = multiprocessing.Pipe(duplex=False)
    tasks_in.send_bytes(pickle.dumps((Warns(), (2.0,), {})))
    tasks_in.close()
    answers_out.close()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        workers._work(tasks_out, answers_in, die_with_parent=False)
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert answers_in.closed
