"""Fitting estimators in worker processes while the caller goes on.

A Bayesian fit on data the size of CDNOW spends much of its time compiling its sampler's callback on one
core (numba, 10-50 s, more on a machine whose compilation caches are empty). Fitting such models in worker
processes overlaps their compilations with one another and with the caller's own work.

Each estimator is sent to a spawned process (a fresh interpreter: no threads or locks inherited from the
caller), fitted there and sent back fitted, with the text and category of each warning its fit raised;
the caller raises them again (from its own line: filters by module or line see the caller). The
estimator, its arguments and the fitted estimator must pickle; a script that starts workers needs the
``if __name__ == "__main__":`` guard, as the spawned interpreter imports it. The workers write nothing.

Stopping: :class:`WorkerFits` stops its workers when its block is left, for an error or an interrupt
too; Ctrl-C is the caller's to handle. On Linux, workers started from the main thread also get SIGTERM
from the kernel when the caller's process ends (PR_SET_PDEATHSIG, which follows the starting thread).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
import warnings
from contextlib import contextmanager
from typing import Any

__all__ = ["WorkerFits", "WorkerError"]

#: Seconds a worker is given to end after SIGTERM before it is killed.
STOP_S = 10.0

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerError(RuntimeError):
    """A worker failed with an exception that could not be sent back as it was, or died without an answer."""


@contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM back while a worker process starts (a short write of its bootstrap), so that
    an interrupt cannot cut the start short (the worker would read half of it) or leave a worker its
    caller does not know of; they are delivered when the start is done. In the main thread (where Python
    runs signal handlers) the handlers are deferred; where the platform can, SIGINT is also blocked in this
    thread, a mask the worker inherits until it runs (:func:`_worker_signals`), so that Ctrl-C does not
    interrupt its start."""
    held: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            if signal.getsignal(signum) is not None:  # (None: a handler set outside Python, left alone)
                previous[signum] = signal.signal(signum, lambda number, frame: held.append(number))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def _worker_signals(die_with_parent: bool) -> None:
    """In the worker: Ctrl-C (sent to the terminal's whole process group) is left to the caller, which
    stops its workers; SIGTERM ends the worker. With ``die_with_parent`` on Linux, the kernel sends it
    SIGTERM when the thread that started it ends (prctl PR_SET_PDEATHSIG), and a worker whose caller is
    already gone exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # (held since the start: now ignored)
    if die_with_parent and sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))
        except (OSError, AttributeError):  # (a libc without prctl: the caller's block still stops it)
            pass
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os._exit(1)


def _send(conn, payload: bytes) -> None:
    """Send a worker its task (from a thread of the caller: the worker reads it once it has started)."""
    try:
        conn.send_bytes(payload)
    except OSError:  # (the worker was stopped first)
        pass
    finally:
        conn.close()


def _answer(fit) -> bytes:
    """Run ``fit()`` and return the pickled answer: (True, fitted estimator, [(warning text, category)])
    or (False, exception, traceback text). An answer that does not survive pickling is replaced by a
    WorkerError carrying the text of what happened."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # (the caller's filters decide, when it raises them again)
            fitted = fit()
        answer: tuple = (True, fitted, [(str(w.message), w.category) for w in caught])
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
        answer = (False, exc, traceback.format_exc())
    try:
        payload = pickle.dumps(answer)
        pickle.loads(payload)  # (what the caller will do: an exception whose class cannot be rebuilt fails here)
        return payload
    except Exception:  # noqa: BLE001
        text = answer[2] if not answer[0] else "the fitted estimator could not be sent back:\n"
        return pickle.dumps((False, WorkerError(text + traceback.format_exc()), ""))


def _work(tasks, answers, die_with_parent: bool) -> None:
    """The worker: read the task, fit, send the answer (:func:`_answer`)."""
    _worker_signals(die_with_parent)
    try:
        estimator, args, kwargs = pickle.loads(tasks.recv_bytes())
    except EOFError:  # (stopped before its task was sent)
        return
    finally:
        tasks.close()
    try:
        answers.send_bytes(_answer(lambda: estimator.fit(*args, **kwargs)))
    except OSError:  # (the caller is gone, and the fit with it)
        pass
    finally:
        answers.close()


class WorkerFits:
    """Fit each of ``estimators`` (a dict name -> unfitted estimator) on ``*args, **kwargs`` in its own
    spawned process, all started at once; :meth:`results` waits for them.

    Use as a context manager: leaving the block stops the workers still running.

    Examples
    --------
    >>> with WorkerFits({"bgnbd": BayesBetaGeo(segment="cohort")}, summary) as fits:  # doctest: +SKIP
    ...     other_work()
    ...     fitted = fits.results()
    """

    def __init__(self, estimators: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        die_with_parent = threading.current_thread() is threading.main_thread()
        self._workers: dict[str, tuple] = {}
        # (pickled here, so that an estimator that does not pickle fails in the caller)
        tasks = {name: pickle.dumps((estimator, args, kwargs)) for name, estimator in estimators.items()}
        if os.name == "posix":  # (started here, outside the hold: starting it unblocks signals in this thread)
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        try:
            for name, payload in tasks.items():
                task_out, task_in = context.Pipe(duplex=False)
                answer_out, answer_in = context.Pipe(duplex=False)
                process = context.Process(target=_work, args=(task_out, answer_in, die_with_parent),
                                          name=f"clvmodels fit {name}")
                try:
                    with _signals_held():
                        process.start()
                        self._workers[name] = (process, answer_out)
                finally:
                    task_out.close()  # (the worker holds the ends it uses: its exit ends the pipes)
                    answer_in.close()
                # the task is written by a thread: the worker reads it only once its interpreter is up
                threading.Thread(target=_send, args=(task_in, payload), daemon=True).start()
        except BaseException:
            self.close()
            raise

    def results(self) -> dict[str, Any]:
        """The fitted estimators by name, once every worker has answered. The workers' warnings are raised
        here, in the order the fits were given; the first failed fit's exception is raised here as it was
        (with the worker's traceback as a note)."""
        answers = {}
        for name, (process, receive) in self._workers.items():
            try:
                answers[name] = pickle.loads(receive.recv_bytes())
            except EOFError:
                process.join()
                raise WorkerError(f"the worker fitting {name!r} exited with code {process.exitcode} without "
                                  "an answer") from None
            process.join()
        fitted = {}
        for name, answer in answers.items():
            if not answer[0]:
                exc = answer[1]
                if answer[2] and hasattr(exc, "add_note"):  # (Python 3.11+)
                    exc.add_note(f"(in the worker fitting {name!r})\n{answer[2]}")
                raise exc
            _, fitted[name], caught = answer
            for text, category in caught:
                warnings.warn(text, category, stacklevel=2)
        return fitted

    def close(self) -> None:
        """Stop the workers still running."""
        for process, receive in self._workers.values():
            if process.is_alive():
                process.terminate()
                process.join(STOP_S)
                if process.is_alive():
                    process.kill()
            process.join()
            receive.close()

    def __enter__(self) -> "WorkerFits":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
