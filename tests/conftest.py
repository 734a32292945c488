import numpy as np
import pandas as pd
import pytest

import clvmodels as clv

#: Test files that take longest, longest first (seconds in a full run on two workers, 2026-11-30). They are
#: collected first, so that `-n 2 --dist loadfile --no-loadscope-reorder` (make test) starts them first
#: and the two workers finish together; the other files follow in their usual order.
LONGEST_FIRST = [
    "test_cli.py",              # about 230: the demo at make demo's settings
    "test_bayes_hierarchy.py",  # about 215: the segment study, five seeds
    "test_bayes_family.py",     # about 200
    "test_spark.py",            # about 200
    "test_notebooks.py",        # about 130
    "test_bayes.py",            # about 110
    "test_bayes_covariates.py", # about 100
    "test_selection.py",        # about 80
    "test_contract.py",         # about 60
    "test_backtest.py",         # about 60
    "test_cnbd.py",             # about 55
    "test_bayes_blas.py",       # about 40
]


def pytest_collection_modifyitems(config, items):
    """Collect the files of :data:`LONGEST_FIRST` first, in that order (tests keep their order in a file)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def cdnow_df() -> pd.DataFrame:
    """The CDNOW sample's rows as shipped (6,919 rows, 21 of them exact repeats of an earlier row)."""
    return clv.load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_tx(cdnow_df) -> clv.TransactionLog:
    """The CDNOW sample read once, with its expected warning about the 21 repeated rows (the suite runs
    with warnings as errors)."""
    with pytest.warns(clv.DataWarning, match="21 of 6,919 rows"):
        return clv.read_transactions(cdnow_df, amount="amount")


@pytest.fixture(scope="module")
def cal(cdnow_tx) -> pd.DataFrame:
    """The CDNOW sample's calibration summary as in the papers: 39 weeks to 1997-09-30, holdout to
    1998-06-30, in weeks (one per test module)."""
    return clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30", time_unit="W")


@pytest.fixture()
def small_log() -> pd.DataFrame:
    """Three customers; customer 'a' buys twice on one day (one purchase, amounts summed)."""
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "c"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-08", "2024-01-03", "2024-01-05",
                                "2024-02-05"]),
        "amount": [10.0, 5.0, 7.0, 3.0, 4.0, 6.0],
    })


def make_log(rng: np.random.Generator, n_customers: int = 50, n_rows: int = 300) -> pd.DataFrame:
    ids = rng.integers(0, n_customers, n_rows)
    days = rng.integers(0, 400, n_rows)
    return pd.DataFrame({
        "customer_id": ids,
        "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D"),
        "amount": np.round(rng.gamma(2.0, 20.0, n_rows), 2),
    })
