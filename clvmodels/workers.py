"""Fitting estimators in worker processes while the caller goes on.

A Bayesian fit on data the size of CDNOW spends a large part of its time compiling its sampler's callback
on one core (numba, 10-50 s, more on a machine whose compilation caches are empty). Fitting such models
in worker processes overlaps their compilations with one another and with the caller's own work.

Each estimator is sent to a spawned process (a fresh interpreter: no threads or locks inherited from the
caller), fitted there and sent back fitted, with the warnings its fit raised, which the caller raises
again, so that they meet the caller's filters as an in-process fit's would. A worker that outlives its
caller is stopped (on Linux the kernel sends it SIGTERM when the caller exits; elsewhere at the caller's
normal exit), and :class:`WorkerFits` stops its workers when its block is left, for an error or an
interrupt too; Ctrl-C is the caller's to handle. The workers write nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import traceback
import warnings
from contextlib import contextmanager
from typing import Any

__all__ = ["WorkerFits", "WorkerError"]


class WorkerError(RuntimeError):
    """A worker failed with an exception that could not be sent back as it was, or died without an answer."""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM back while a worker starts, so that an interrupt cannot cut the start short
    (the worker would read half its task) or leave a worker its caller does not know of; they are
    delivered when the start is done. In the main thread (where Python runs signal handlers) the handlers
    are deferred; where the platform can, SIGINT is also blocked in this thread, a mask the worker
    inherits until it runs (:func:`_worker_signals`), so that Ctrl-C does not interrupt its start."""
    held: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            handler = signal.getsignal(signum)
            if handler is not None:  # (None: a handler set outside Python, left alone)
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


def _worker_signals() -> None:
    """In the worker: Ctrl-C (sent to the terminal's whole process group) is left to the caller, which
    stops its workers; SIGTERM ends the worker, and on Linux the kernel sends it when the caller exits
    (prctl PR_SET_PDEATHSIG). A worker whose caller is already gone exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))
    except (OSError, AttributeError):  # not Linux: the caller's normal exit stops its daemon workers
        pass
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # (held since the start: now ignored)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def _fit(estimator, args: tuple, kwargs: dict, conn) -> None:
    """The worker: fit ``estimator`` and send (True, fitted estimator, warnings) or (False, exception)."""
    _worker_signals()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # (the caller's filters decide, when it raises them again)
            estimator.fit(*args, **kwargs)
        answer: tuple = (True, estimator, [(w.message, w.category) for w in caught])
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
        answer = (False, exc, traceback.format_exc())
    try:
        conn.send(answer)
    except Exception:  # noqa: BLE001 - the exception does not pickle: send its text
        conn.send((False, WorkerError(answer[2] if not answer[0] else traceback.format_exc()), ""))
    finally:
        conn.close()


class WorkerFits:
    """Fit each of ``estimators`` (a dict name -> unfitted estimator) on ``*args, **kwargs`` in its own
    spawned process, started at once; :meth:`results` waits for them.

    Use as a context manager: leaving the block stops the workers still running.

    Examples
    --------
    >>> with WorkerFits({"bgnbd": BayesBetaGeo(segment="cohort")}, summary) as fits:  # doctest: +SKIP
    ...     other_work()
    ...     fitted = fits.results()
    """

    def __init__(self, estimators: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._workers = {}
        try:
            for name, estimator in estimators.items():
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_fit, args=(estimator, args, kwargs, send), daemon=True,
                                          name=f"clvmodels fit {name}")
                with _signals_held():
                    process.start()
                    self._workers[name] = (process, receive)
                send.close()  # (the worker holds the only sending end: its exit ends the pipe)
        except BaseException:
            self.close()
            raise

    def results(self) -> dict[str, Any]:
        """The fitted estimators by name, once every worker has answered. A worker's warnings are raised
        here, in the order the fits were given; a worker's exception is raised here as it was."""
        answers = {}
        for name, (process, receive) in self._workers.items():
            try:
                answers[name] = receive.recv()
            except EOFError:
                process.join()
                raise WorkerError(f"the worker fitting {name!r} exited with code {process.exitcode} without "
                                  "an answer") from None
            process.join()
        fitted = {}
        for name, answer in answers.items():
            if not answer[0]:
                raise answer[1]
            _, fitted[name], caught = answer
            for message, category in caught:
                warnings.warn(message, category, stacklevel=2)
        return fitted

    def close(self) -> None:
        """Stop the workers still running."""
        for process, receive in self._workers.values():
            if process.is_alive():
                process.terminate()
            process.join()
            receive.close()

    def __enter__(self) -> "WorkerFits":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
