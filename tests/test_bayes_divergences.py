"""The shipped demo's hierarchies (BG/NBD and Gamma-Gamma by acquisition-month cohort on the CDNOW sample)
and the README's pooled examples sample cleanly at the default settings over several seeds; the
diagnostics warning says what helps.

``python tests/test_bayes_divergences.py [seeds...]`` prints the divergences and R-hat per seed.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")

import clvmodels as clv  # noqa: E402

#: The seeds of the study (``python tests/test_bayes_divergences.py``); the suite samples the README's
#: examples at the first (the others take four minutes more), and the demo's hierarchies at that seed, the
#: demo's own, through the demo itself (tests/test_cli.py::test_demo_runs_offline).
SEEDS = [1, 2, 3]


def demo_summary():
    """The summary `clvmodels demo` fits: the CDNOW sample in weeks, with each customer's cohort."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clv.DataWarning)  # (CDNOW repeats 21 rows exactly)
        log = clv.read_transactions(clv.load_cdnow("sample"), amount="amount")
    summary = clv.rfm_summary(log, time_unit="W")
    summary["cohort"] = clv.acquisition_cohorts(log).reindex(summary.index)
    return summary


FITS = {
    "demo BG/NBD by cohort": lambda seed: clv.BayesBetaGeo(segment="cohort", random_seed=seed).fit(demo_summary()),
    "demo Gamma-Gamma by cohort": lambda seed: clv.BayesGammaGamma(segment="cohort", random_seed=seed).fit(
        demo_summary()),
    "README BG/NBD": lambda seed: clv.BayesBetaGeo(random_seed=seed).fit(readme_calibration()),
    "README Gamma-Gamma": lambda seed: clv.BayesGammaGamma(random_seed=seed).fit(readme_calibration()),
}


def readme_calibration():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clv.DataWarning)
        return clv.calibration_holdout(clv.load_cdnow(), calibration_end="1997-09-30", holdout_end="1998-06-30")


def sampling_health(name: str, seed: int) -> tuple[int, float]:
    """Divergences and largest R-hat of one of :data:`FITS` at the default settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clv.SamplingWarning)  # (checked below)
        model = FITS[name](seed)
    return model.divergences_, float(model.diagnostics()["r_hat"].max())


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS[:1])
@pytest.mark.parametrize("name", [name for name in FITS if name.startswith("README")])
def test_readme_examples_sample_cleanly(name, seed):
    divergences, rhat = sampling_health(name, seed)
    assert divergences == 0 and rhat <= 1.01, (name, seed, divergences, rhat)


def test_divergence_warning_names_what_helps():
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    rng = np.random.default_rng(0)
    model = clv.BayesBetaGeo(chains=2)
    model.idata_ = az.from_dict(posterior={n: rng.normal(1.0, 0.1, (2, 500)) for n in ("r", "alpha", "a", "b")},
                                sample_stats={"diverging": np.arange(1000).reshape(2, 500) % 100 == 0})
    with pytest.warns(clv.SamplingWarning, match="10 divergent transitions") as caught:
        model._diagnose(0.95)
    message = str(caught[0].message)
    assert "target_accept above 0.95 (e.g. 0.975" in message and "--target-accept" in message
    assert "parametrisation" in message
    assert "draw more" not in message  # (R-hat and ESS are fine here)



def test_mixing_warning_advises_draws_in_python_and_cli_terms():
    """Chains that disagree: the warning shows R-hat to four decimals (so that it reads above 1.01) and
    advises twice the draws and tuning as keywords, which the command line says as its flags."""
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    from clvmodels.cli import cli_terms

    rng = np.random.default_rng(0)
    model = clv.BayesBetaGeo(chains=2, draws=500, tune=300)
    shifted = rng.normal(1.0, 0.1, (2, 500)) + np.array([[0.0], [0.05]])  # R-hat of a few per cent
    model.idata_ = az.from_dict(posterior={n: shifted for n in ("r", "alpha", "a", "b")},
                                sample_stats={"diverging": np.zeros((2, 500), dtype=bool)})
    with pytest.warns(clv.SamplingWarning, match=r"R-hat up to 1\.0\d\d\d \(> 1\.01\)") as caught:
        model._diagnose(0.9)
    message = str(caught[0].message)
    assert "draws=1000, tune=600" in message
    assert "--draws 1000, --tune 600" in cli_terms(message)


if __name__ == "__main__":
    for s in map(int, sys.argv[1:] or SEEDS):
        for n in FITS:
            print(s, n, sampling_health(n, s), flush=True)
