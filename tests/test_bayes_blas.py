"""PyTensor linked to the OpenBLAS of the scipy-openblas32 wheel: no BLAS warning from a Bayesian fit, BLAS
operations compiled against it and correct, and a user's own BLAS setting left alone."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pymc")
pytest.importorskip("scipy_openblas32")


pytestmark = pytest.mark.slow  # each test starts an interpreter and imports PyTensor (3-5 s)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (PyTensor reads its BLAS setting once per process)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTENSOR_FLAGS"} | env
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environ, timeout=600)


def test_a_bayesian_fit_prints_no_blas_warning():
    proc = python("""
        import pytensor
        import clvmodels as clv

        summary = clv.datasets.simulate_summary(300, rng=1, T=52.0)
        clv.BayesBetaGeo(draws=100, tune=100, chains=2, random_seed=1).fit(summary, time_unit="W")
        print(pytensor.config.blas__ldflags)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "BLAS" not in proc.stderr and "blas" not in proc.stderr.lower(), proc.stderr
    assert proc.stdout.strip(), "no BLAS linked"


def test_blas_operations_run_in_c_against_scipy_openblas():
    proc = python("""
        import numpy as np
        import pytensor
        import pytensor.tensor as pt
        from clvmodels.bayes.blas import scipy_openblas_flags

        flags = scipy_openblas_flags()
        assert "-lscipy_openblas" in flags and "-Ddgemm_=scipy_dgemm_" in flags, flags
        pytensor.config.blas__ldflags = flags
        a, b, v = pt.dmatrix("a"), pt.dmatrix("b"), pt.dvector("v")
        fn = pytensor.function([a, b, v], [a @ b, a @ v, 2.0 * (v @ v)], mode="FAST_RUN")
        ops = sorted({type(n.op).__name__ for n in fn.maker.fgraph.apply_nodes})
        rng = np.random.default_rng(0)
        x, y, z = rng.normal(size=(60, 40)), rng.normal(size=(40, 30)), rng.normal(size=40)
        got = fn(x, y, z)
        for g, e in zip(got, [x @ y, x @ z, 2.0 * z @ z]):
            np.testing.assert_allclose(g, e, rtol=1e-12)
        # every BLAS node runs compiled C (without BLAS flags PyTensor runs them through Python)
        blas = [getattr(th, "cthunk", None) for n, th in zip(fn.maker.fgraph.toposort(), fn.vm.thunks)
                if type(n.op).__module__.startswith("pytensor.tensor.blas")]
        assert len(blas) == 3 and None not in blas, ops
        print(flags == pytensor.config.blas__ldflags, ops)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True"), proc.stdout
    assert "BLAS" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("how", ["env", "code", "found"])
def test_a_users_own_blas_setting_or_the_one_pytensor_finds_is_kept(how):
    """PYTENSOR_FLAGS (or .pytensorrc), a value set in code, and a BLAS that PyTensor's own search finds
    (conda's, a system OpenBLAS) come before scipy-openblas32."""
    code = """
        import pytensor
        import pytensor.link.c.cmodule
        from clvmodels.bayes.blas import link_blas
        {set}
        print(link_blas(), "|", pytensor.config.blas__ldflags)
    """.format(set={"env": "", "code": 'pytensor.config.blas__ldflags = "-lm"',
                    "found": 'pytensor.link.c.cmodule.default_blas_ldflags = lambda: "-lm"'}[how])
    proc = python(code, **({"PYTENSOR_FLAGS": "blas__ldflags=-lm"} if how == "env" else {}))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == (["-lm", "|", "-lm"] if how == "found" else ["None", "|", "-lm"])
