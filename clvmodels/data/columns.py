"""The column names of a customer summary (numpy-free constants for the data layer's modules)."""

__all__ = ["RFM_COLUMNS", "HOLDOUT_COLUMNS", "SUMMARY_COLUMNS"]

#: A summary's columns (:func:`clvmodels.rfm_summary`).
RFM_COLUMNS = ("frequency", "recency", "T", "litt", "monetary_value")
#: The holdout columns of :func:`clvmodels.calibration_holdout`.
HOLDOUT_COLUMNS = ("holdout_frequency", "holdout_monetary_value", "holdout_spend", "holdout_duration")
#: Every column a summary makes itself: not a customer attribute.
SUMMARY_COLUMNS = (*RFM_COLUMNS, *HOLDOUT_COLUMNS)
