"""The MBG/CNBD-k: the BG/CNBD-k in which a customer can drop out at time zero too, right after the first
purchase (Reutterer, Platzer & Schröder 2021, IJRM 38(1)); with k = 1, the MBG/NBD.

Every formula is the BG/CNBD-k's with one more dropout opportunity: the functions of
:mod:`clvmodels.models.cnbd` with ``dropout_at_zero=True``, so that each is written once.
"""

from __future__ import annotations

from .cnbd import CNBDFit

__all__ = ["ModifiedBetaGeoCNBD"]


class ModifiedBetaGeoCNBD(CNBDFit):
    """MBG/CNBD-k purchase and dropout model (Erlang-k inter-purchase times, dropout possible at time zero)
    fitted by maximum likelihood; k chosen by likelihood unless given (:class:`clvmodels.models.cnbd.CNBDFit`
    for the options)."""

    model_name = "ModifiedBetaGeoCNBD"
    short_name, title = "mbgcnbd", "MBG/CNBD-k"
    dropout_at_zero = True
