"""The model contract: every model class, however fitted, answers the same calls with the same shapes
(one parametrised test over the registries of saved model classes).

- no interval: a Series by customer_id, named after the quantity;
- ``interval=0.9``: a DataFrame with the same values first, then ``NAME lower 90%`` and ``NAME upper 90%``
  (the level in ``.attrs["interval"]``), the value inside its bounds;
- ``customer_value`` of every purchase model with every spend model: the same columns.

Bayesian models are built from known draws (no sampling here)."""

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels.bayes.persistence import BAYES_MODELS
from clvmodels.models.persistence import MODEL_REGISTRY



@pytest.fixture(scope="module")
def by_month(cdnow_tx):
    """The same customers summarised by month, as the models of discrete purchase opportunities take them."""
    return clv.period_summary(cdnow_tx, "M", calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def data(cal, by_month):
    """The summary a model class is fitted to and called with: by period for a ``discrete_time`` model (BG/BB),
    else the continuous one."""
    return lambda model: by_month if getattr(model, "discrete_time", False) else cal


@pytest.fixture(scope="module")
def fitted(data):
    """A fitted model of every registered class."""
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    models = {name: cls().fit(data(cls)) for name, cls in MODEL_REGISTRY.items()}
    rng = np.random.default_rng(5)
    for name, cls in BAYES_MODELS.items():
        model = cls(chains=2)
        mle = models[cls.mle_class.__name__]
        model.idata_ = az.from_dict(posterior={n: v * np.exp(rng.normal(0.0, 0.05, (2, 50)))
                                               for n, v in mle.params_.items()})
        model.segments_, model.time_unit_, model.mle_ = ["all"], mle.time_unit_, mle
        models[name] = model
    return models


def purchase_calls(t="1y"):
    return {"p_alive": lambda m, s, **kw: m.p_alive(s, **kw),
            "expected_purchases_1y": lambda m, s, **kw: m.expected_purchases(s, t, **kw)}


def roles(models):
    purchase = [n for n, m in models.items() if m.role == "purchase"]
    spend = [n for n, m in models.items() if m.role == "spend"]
    return purchase, spend


CLASSES = sorted(MODEL_REGISTRY) + sorted(BAYES_MODELS)
#: Classes whose interval calls take seconds here (a sum over future purchases at 1,000 draws: 13 s for the
#: maximum-likelihood ones' shapes, 1-5 s for the others' calls): in the full suite only.
SLOW = {"BetaGeoCNBD", "ModifiedBetaGeoCNBD", "BayesBetaGeoCNBD", "BayesModifiedBetaGeoCNBD"}
#: The fast tier checks the shapes on representatives (an MLE purchase model, a spend model, NBD's constant
#: P(alive), a Bayesian model), whose calls take 0.1-1.2 s here; the other classes' calls take 0.7-8 s each
#: (the Bayesian purchase models' and Pareto/NBD's intervals the longest): in the full suite only.
SHAPES_IN_FAST_TIER = {"BetaGeo", "GammaGamma", "NBD", "BayesGammaGamma"}


def test_every_class_is_a_purchase_or_a_spend_model(fitted):
    purchase, spend = roles(fitted)
    assert sorted(purchase + spend) == sorted(CLASSES) and len(purchase) >= 2 and len(spend) >= 2


@pytest.mark.parametrize("name", [n if n in SHAPES_IN_FAST_TIER else pytest.param(n, marks=pytest.mark.slow)
                                  for n in CLASSES])
def test_same_calls_same_shapes(fitted, data, name):
    model = fitted[name]
    cal = data(model)
    calls = (purchase_calls() if model.role == "purchase"
             else {"expected_spend": lambda m, s, **kw: m.expected_spend(s, **kw)})
    for quantity, call in calls.items():
        point = call(model, cal)
        assert isinstance(point, pd.Series) and point.name == quantity and point.index.equals(cal.index)
        assert np.isfinite(point).all()
        framed = call(model, cal, interval=0.9)
        assert list(framed.columns) == [quantity, f"{quantity} lower 90%", f"{quantity} upper 90%"]
        assert framed.attrs["interval"] == 0.9 and framed.index.equals(cal.index)
        # the point prediction is the same with or without the interval, and lies within it
        np.testing.assert_allclose(framed[quantity], point, rtol=1e-12)
        lower, upper = framed.iloc[:, 1], framed.iloc[:, 2]
        assert (lower <= point * (1 + 1e-9)).all() and (point <= upper * (1 + 1e-9)).all()
        assert (lower < upper).any() or point.nunique() == 1  # (a constant, such as the NBD's P(alive) = 1)
        with pytest.raises(ValueError, match="interval must be between 0 and 1"):
            call(model, cal, interval=90)
    if model.role == "purchase":
        probs = model.purchase_probabilities(cal, "1y", n_max=10)
        assert probs.shape == (len(cal), 11) and (probs.sum(axis=1) <= 1 + 1e-9).all()
        iv = model.purchase_interval(cal, "1y", level=0.9)
        assert list(iv.columns) == ["lower", "upper"] and (iv["lower"] <= iv["upper"]).all()


PURCHASE = [n for n in CLASSES if n in BAYES_MODELS or MODEL_REGISTRY[n].role == "purchase"]
SPEND = [n for n in CLASSES if n not in PURCHASE]


@pytest.fixture(scope="module")
def reference_value(fitted, data):
    """BG/NBD + Gamma-Gamma's customer value without and with intervals, by interval: the columns every pair
    must give (computed once for the module; the tests only read it)."""
    return {interval: clv.customer_value(fitted["BetaGeo"], fitted["GammaGamma"], data(fitted["BetaGeo"]),
                                         horizons=["1y", "3y"], interval=interval, max_draws=20)
            for interval in (None, 0.8)}


@pytest.mark.parametrize("interval", [None, 0.8])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in PURCHASE + SPEND])
def test_customer_value_of_every_purchase_and_spend_model(fitted, data, reference_value, name, interval):
    # every purchase model with one spend model, every spend model with one purchase model: the same columns
    model = fitted[name]
    if model.role == "purchase":
        p, s = name, "GammaGamma"
    else:
        p, s = "BetaGeo", name
    cal = data(fitted[p])
    value = clv.customer_value(fitted[p], fitted[s], cal, horizons=["1y", "3y"], interval=interval, max_draws=20)
    reference = reference_value[interval]
    assert value.index.equals(cal.index) and np.isfinite(value.to_numpy()).all(), (p, s)
    assert list(value.columns) == list(reference.columns) and len(value.columns) == (6 if interval is None else 18)
    # its parts are the models' own predictions
    np.testing.assert_allclose(value["p_alive"], fitted[p].p_alive(cal, max_draws=20), rtol=1e-9)


def test_draws_follow_a_replaced_posterior_and_max_draws_is_checked(fitted, cal):
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    model = fitted["BayesBetaGeo"]
    before = model.param_draws()
    kept = model.idata_
    try:
        model.idata_ = az.from_dict(posterior={n: np.full((2, 50), 2.0 * v) for n, v in fitted["BetaGeo"].params_.items()})
        np.testing.assert_allclose(model.param_draws()[0, 0], 2 * np.array(list(fitted["BetaGeo"].params_.values())))
    finally:
        model.idata_ = kept
    np.testing.assert_array_equal(model.param_draws(), before)
    for name in ("BetaGeo", "BayesBetaGeo"):
        with pytest.raises(ValueError, match="max_draws must be a whole number >= 1"):
            fitted[name].p_alive(cal, interval=0.9, max_draws=0)


def test_a_growing_support_is_split_to_stay_within_the_cell_budget(monkeypatch):
    from clvmodels.models import purchase

    monkeypatch.setattr(purchase, "CDF_CELLS", 4000)
    mean = np.full(300, 40.0)
    sizes = []

    def cdf(rows, cap):  # its 95% quantile, near 700, lies past the first support (512): it grows to 801
        sizes.append((len(rows), cap))
        n = np.arange(cap + 1)
        return np.broadcast_to(np.minimum(1.0, (n + 1) / 735.0), (len(rows), cap + 1))

    got = list(purchase.sized_cdfs(mean, cdf, tail=0.05))
    assert sum(len(rows) for rows, _ in got) == 300 and {cap for _, cap in sizes} == {512, 801}
    assert max(rows * (cap + 1) for rows, cap in sizes) <= 4000, sizes


@pytest.fixture()
def registry_restored():
    """A test that defines a model class registers it: the registry is restored afterwards."""
    before = dict(MODEL_REGISTRY)
    yield
    MODEL_REGISTRY.clear()
    MODEL_REGISTRY.update(before)


def test_a_plug_in_with_an_option_of_its_own_declares_its_check_and_round_trips(cal, tmp_path, registry_restored):
    with pytest.raises(TypeError, match="no check for the option.* shrink .*option_checks"):
        class Unchecked(clv.NBD):
            model_name, short_name = "Unchecked", "unchecked"

            def __init__(self, shrink: float = 1.0, maxiter: int = 2000, start=None) -> None:
                super().__init__(maxiter, start)
                self.shrink = shrink

    class Shrunk(clv.NBD):
        model_name, short_name = "Shrunk", "shrunk"
        option_checks = {**clv.NBD.option_checks, "shrink": lambda v, field, check, cls: check.number(v, field)}

        def __init__(self, shrink: float = 1.0, maxiter: int = 2000, start=None) -> None:
            super().__init__(maxiter, start)
            self.shrink = shrink

    model = Shrunk(shrink=0.5).fit(cal)
    clv.save(model, tmp_path / "m.json")
    back = clv.load(tmp_path / "m.json")
    assert list(back) == ["shrunk"] and back["shrunk"].shrink == 0.5  # (a single model: under its short name)
    pd.testing.assert_series_equal(back["shrunk"].expected_purchases(cal, 39), model.expected_purchases(cal, 39))
    # the declared check runs on load: a value it refuses, in a file whose checksum is right
    import json

    from clvmodels.models.persistence import checksum

    content = json.loads((tmp_path / "m.json").read_text())
    content["models"]["shrunk"]["options"]["shrink"] = "half"
    content.pop("sha256")
    content["sha256"] = checksum(content)
    (tmp_path / "m.json").write_text(json.dumps(content))
    with pytest.raises(clv.DataError, match="options.shrink"):
        clv.load(tmp_path / "m.json")


def test_a_registered_model_names_itself(registry_restored):
    # a subclass that inherits its parent's short name would take over the parent's files and --model name
    with pytest.raises(TypeError, match="sets its own short_name"):
        class Renamed(clv.NBD):
            model_name = "Renamed"
    with pytest.raises(TypeError, match="short_name 'nbd' is NBD's already"):
        class Twin(clv.NBD):
            model_name, short_name = "Twin", "nbd"


def test_every_model_says_which_columns_it_reads(fitted):
    for name, model in fitted.items():
        # the data columns (and a CNBD-k's timing statistic, which fitting reads); one population: no segment column
        columns, required = model.input_columns(), list(model.required_columns)
        assert columns[:len(required)] == required and set(columns[len(required):]) <= {"litt"}, name
        assert model.segments() == {} and model.segment_column is None, name
    by_channel = clv.BayesBetaGeo(segment="channel")  # known before fitting (Spark collects these columns)
    assert by_channel.input_columns() == ["frequency", "recency", "T", "channel"]
    with pytest.raises(clv.NotFittedError):
        by_channel.segments()


def test_a_purchase_model_without_a_kernel_names_it(cal):
    from clvmodels.models.purchase import PurchasePredictions

    class NoKernels(PurchasePredictions):  # (not registered: a model under construction)
        time_unit_ = "W"

        def param_draws(self, interval=None, max_draws=1000):
            return np.ones((1, 1, 2))

    with pytest.raises(NotImplementedError, match="defines p_alive_kernel"):
        NoKernels().p_alive(cal)
    with pytest.raises(NotImplementedError, match="defines expected_new_kernel"):
        NoKernels().expected_purchases_new(52)


def test_a_posterior_is_thinned_to_exactly_max_draws_evenly(fitted):
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    model = fitted["BayesBetaGeo"]
    mle = fitted["BetaGeo"]
    # 2 chains x 750 draws: 1,500 draws, thinned to the default 1,000 (a whole-number step gave 750)
    ramp = np.linspace(1.0, 2.0, 1500).reshape(2, 750)
    kept = model.idata_
    try:
        model.idata_ = az.from_dict(posterior={n: v * ramp for n, v in mle.params_.items()})
        draws = model.param_draws()
        assert draws.shape == (clv.draws.DEFAULT_DRAWS, 1, 4)
        r = draws[:, 0, 0] / mle.params_["r"]
        evenly = np.linspace(0, 1499, 1000).round().astype(int)  # first and last kept, evenly spread
        np.testing.assert_allclose(r, ramp.ravel()[evenly], rtol=1e-12)
        assert model.param_draws(max_draws=5000).shape[0] == 1500
    finally:
        model.idata_ = kept


def test_customer_value_names_a_missing_or_swapped_model(fitted, cal):
    with pytest.raises(TypeError, match="spend model second .* without amounts, expected_purchases"):
        clv.customer_value(fitted["BetaGeo"], None, cal)
    with pytest.raises(TypeError, match="purchase model first"):
        clv.customer_value(fitted["GammaGamma"], fitted["BetaGeo"], cal)
    with pytest.raises(clv.NotFittedError):
        clv.customer_value(clv.BetaGeo(), fitted["GammaGamma"], cal)
