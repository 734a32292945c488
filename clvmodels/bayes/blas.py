"""PyTensor's C backend linked to OpenBLAS from the ``scipy-openblas32`` wheel.

PyTensor looks for a BLAS library among the C compiler's library folders. A pip install puts none there
(numpy and scipy carry their OpenBLAS privately), so PyTensor warns that operations which might use BLAS
"will be severely degraded" and runs its BLAS operations (matrix products, gemv, ger) through Python.
``scipy-openblas32``, a dependency of the ``bayes`` extra, is the OpenBLAS build that scipy's wheels use:
32-bit integers (the Fortran interface PyTensor's C code declares), routines named with a ``scipy_``
prefix (``scipy_dgemm_``). Where PyTensor's search finds no BLAS, :func:`link_blas` sets its
``blas__ldflags`` to link this one, with macros mapping each standard routine name to the prefixed one,
after PyTensor's own check that a program so built calls ``ddot_`` correctly. It changes nothing where
the user set ``blas__ldflags`` (``PYTENSOR_FLAGS``, ``.pytensorrc`` or code) or PyTensor has no C compiler.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import shlex
import sys
import warnings
from pathlib import Path

__all__ = ["link_blas", "scipy_openblas_flags"]

#: Reference BLAS routines, without the precision letter (s, d, c, z).
_ROUTINES = ("rotg rotmg rot rotm swap scal copy axpy dot dotu dotc nrm2 asum gemv gbmv hemv hbmv hpmv symv sbmv "
             "spmv trmv tbmv tpmv trsv tbsv tpsv ger geru gerc her hpr her2 hpr2 syr spr syr2 spr2 gemm symm hemm "
             "syrk herk syr2k her2k trmm trsm").split()
#: ... and those named otherwise.
_OTHERS = ("dsdot", "sdsdot", "isamax", "idamax", "icamax", "izamax", "scasum", "dzasum", "scnrm2", "dznrm2",
           "csscal", "zdscal", "xerbla")
#: What PyTensor's C code calls: linking is refused unless the library has all of these.
_NEEDED = ("sgemm", "dgemm", "sgemv", "dgemv", "sger", "dger", "sdot", "ddot")
_PREFIX = "scipy_"


@functools.cache
def link_blas() -> str | None:
    """Give PyTensor a BLAS, once per process: the one its own search finds (conda's, or a system
    OpenBLAS), else scipy-openblas32's (:func:`scipy_openblas_flags`).

    Returns
    -------
    str or None
        The flags set, or None where PyTensor's setting was left as it was: given by the user, already
        in use, no C compiler, or no BLAS found (PyTensor then says so when it compiles).
    """
    import pytensor
    from pytensor.link.c.cmodule import default_blas_ldflags

    config = pytensor.config
    try:
        config.fetch_val_for_key("blas__ldflags")  # PYTENSOR_FLAGS or .pytensorrc
        return None
    except KeyError:
        pass
    # (getattr_static reads the setting without running PyTensor's search: a value there was set in code
    # or found by that search, and is in use)
    if hasattr(inspect.getattr_static(config, "blas__ldflags"), "val") or not config.cxx:
        return None
    with warnings.catch_warnings():  # (PyTensor's warning that it found none: scipy-openblas32 is tried next)
        warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS", UserWarning)
        flags = default_blas_ldflags() or scipy_openblas_flags()
    if not flags:
        return None
    config.blas__ldflags = flags
    return flags


def scipy_openblas_flags() -> str:
    """PyTensor ``blas__ldflags`` linking scipy-openblas32's OpenBLAS, with a macro per routine mapping the
    standard name to the prefixed one; "" where the wheel is not installed or not usable (Windows, a
    missing routine, or PyTensor's test program fails to build or run with them)."""
    from pytensor.link.c.cmodule import try_blas_flag

    if sys.platform == "win32":
        return ""
    try:
        import scipy_openblas32
    except ImportError:
        return ""
    lib_dir = scipy_openblas32.get_lib_dir()
    try:
        dll = ctypes.CDLL(str(Path(lib_dir) / scipy_openblas32.get_library(fullname=True)))
    except OSError:
        return ""
    names = [p + r for p in "sdcz" for r in _ROUTINES] + list(_OTHERS)
    exported = [n for n in names if hasattr(dll, f"{_PREFIX}{n}_")]
    if not set(_NEEDED) <= set(exported):
        return ""
    flags = [f"-L{lib_dir}", f"-l{scipy_openblas32.get_library()}", f"-Wl,-rpath,{lib_dir}",
             *(f"-D{n}_={_PREFIX}{n}_" for n in exported)]
    return " ".join(shlex.quote(f) for f in flags) if try_blas_flag(flags) else ""
