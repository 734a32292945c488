"""The Bayesian layer (PyMC, nutpie, ArviZ): imports models/, never the other way round.

Loaded only when used: ``import clvmodels`` does not import PyMC.
"""
