"""The data edge: reading transaction logs (DuckDB, pandas), summaries, bundled data, simulation."""

from . import datasets
from .datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, SimulatedData, load_cdnow, load_cdnow_summary, simulate, simulate_summary
from .periods import load_donations, period_summary
from .rfm import acquisition_cohorts, calibration_holdout, rfm_summary
from .transactions import TransactionLog, read_transactions

__all__ = ["CDNOW_CALIBRATION_END", "CDNOW_HOLDOUT_END", "TransactionLog", "read_transactions", "rfm_summary", "calibration_holdout", "acquisition_cohorts", "load_cdnow",
           "load_cdnow_summary", "period_summary", "load_donations", "simulate", "simulate_summary", "SimulatedData", "datasets"]
