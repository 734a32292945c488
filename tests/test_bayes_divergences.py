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

SEEDS = [1, 2, 3]


def demo_summary():
    """The summary `clvmodels demo` fits: the CDNOW sample in weeks, with each customer's cohort."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clv.DataWarning)  # (CDNOW repeats 21 rows exactly)
        log = clv.read_transactions(clv.load_cdnow("sample"), amount="amount")
    summary = clv.rfm_summary(log, time_unit="W")
    summary["cohort"] = clv.acquisition_cohorts(log).reindex(summary.index)
    return summary


def sampling_health(seed: int) -> dict:
    """Divergences and largest R-hat of the demo's two hierarchies and the README's two pooled models."""
    summary = demo_summary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clv.DataWarning)
        cal = clv.calibration_holdout(clv.load_cdnow(), calibration_end="1997-09-30", holdout_end="1998-06-30")
    fits = {
        "demo BG/NBD by cohort": clv.BayesBetaGeo(segment="cohort", random_seed=seed).fit(summary),
        "demo Gamma-Gamma by cohort": clv.BayesGammaGamma(segment="cohort", random_seed=seed).fit(summary),
        "README BG/NBD": clv.BayesBetaGeo(random_seed=seed).fit(cal),
        "README Gamma-Gamma": clv.BayesGammaGamma(random_seed=seed).fit(cal),
    }
    return {name: (m.divergences_, float(m.diagnostics()["r_hat"].max())) for name, m in fits.items()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_demo_hierarchies_and_readme_examples_sample_cleanly(seed):
    # (the fit warns on any divergence or R-hat > 1.01: -W error turns that into a failure too)
    health = sampling_health(seed)
    for name, (divergences, rhat) in health.items():
        assert divergences == 0 and rhat <= 1.01, (name, health)


def test_divergence_warning_names_what_helps():
    import arviz as az

    rng = np.random.default_rng(0)
    model = clv.BayesBetaGeo(chains=2)
    model.idata_ = az.from_dict(posterior={n: rng.normal(1.0, 0.1, (2, 500)) for n in ("r", "alpha", "a", "b")},
                                sample_stats={"diverging": np.arange(1000).reshape(2, 500) % 100 == 0})
    with pytest.warns(UserWarning, match="10 divergent transitions") as caught:
        model._diagnose()
    message = str(caught[0].message)
    assert "target_accept" in message and "--target-accept" in message and "parametrisation" in message
    assert "draw more" not in message  # (R-hat and ESS are fine here)


if __name__ == "__main__":
    for s in map(int, sys.argv[1:] or SEEDS):
        print(s, sampling_health(s), flush=True)
