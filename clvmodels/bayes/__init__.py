"""The Bayesian layer (PyMC, nutpie, ArviZ): imports models/, never the other way round.

Loaded only when used: ``import clvmodels`` does not import PyMC (nor does importing this package: PyMC
is imported when a model is fitted). Importing it registers the Bayesian models that model files name.
"""

from . import family, hierarchical  # noqa: F401 - registers the model classes (bayes.persistence.BAYES_MODELS)
