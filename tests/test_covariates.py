"""Static customer covariates as a design matrix (clvmodels.data.covariates): coding, reference levels,
refusals that name the customers, and the round trip through a model file's JSON."""

import json

import numpy as np
import pandas as pd
import pytest

from clvmodels import DataError
from clvmodels.data.covariates import CovariateDesign


@pytest.fixture()
def summary():
    return pd.DataFrame({"frequency": [1.0, 0.0, 3.0, 2.0, 5.0],
                         "channel": ["web", "store", "web", "phone", "store"],
                         "age": [31.0, 45.0, 22.0, 60.0, 38.0],
                         "member": [True, False, False, True, False]},
                        index=pd.Index([101, 102, 103, 104, 105], name="customer_id"))


def test_categorical_columns_are_dummy_coded_against_the_first_level(summary):
    design = CovariateDesign(["channel", "age", "member"]).fit(summary)
    assert design.kinds_ == {"channel": "categorical", "age": "numeric", "member": "categorical"}
    assert design.levels_["channel"] == ["phone", "store", "web"] and design.levels_["member"] == [False, True]
    assert design.names_ == ["channel[store]", "channel[web]", "age", "member[True]"]
    expected = np.array([[0, 1, 31, 1], [1, 0, 45, 0], [0, 1, 22, 0], [0, 0, 60, 1], [1, 0, 38, 0]], dtype=float)
    np.testing.assert_array_equal(design.matrix(summary), expected)
    assert "channel: categorical, 3 levels, reference 'phone'" in design.description
    assert "age: numeric, used as given" in design.description


def test_a_reference_level_can_be_given(summary):
    design = CovariateDesign(["channel"], reference={"channel": "web"}).fit(summary)
    assert design.names_ == ["channel[phone]", "channel[store]"]
    np.testing.assert_array_equal(design.matrix(summary).sum(axis=0), [1, 2])
    with pytest.raises(DataError, match="reference level 'mail' does not occur"):
        CovariateDesign(["channel"], reference={"channel": "mail"}).fit(summary)
    with pytest.raises(ValueError, match="not covariates"):
        CovariateDesign(["channel"], reference={"region": "north"})


@pytest.mark.parametrize("column, bad", [("channel", None), ("age", np.nan), ("age", np.inf)])
def test_missing_values_are_refused_naming_the_customers(summary, column, bad):
    summary[column] = summary[column].astype(object if column == "channel" else float)
    summary.loc[[102, 105], column] = bad
    with pytest.raises(DataError, match="customers 102, 105") as caught:
        CovariateDesign([column]).fit(summary)
    assert caught.value.columns == (column,) and caught.value.rows == (1, 4)


def test_a_level_unseen_in_fitting_is_refused_when_predicting(summary):
    design = CovariateDesign(["channel"]).fit(summary)
    other = summary.copy()
    other.loc[103, "channel"] = "mail"
    with pytest.raises(DataError, match=r"level 'mail' was not seen in fitting .*customers 103") as caught:
        design.matrix(other)
    assert caught.value.rows == (2,)


def test_a_covariate_without_variation_is_refused(summary):
    summary["country"], summary["one"] = "NL", 1.0
    with pytest.raises(DataError, match="at least two levels.*'NL'"):
        CovariateDesign(["country"]).fit(summary)
    with pytest.raises(DataError, match="needs variation"):
        CovariateDesign(["one"]).fit(summary)


def test_columns_must_be_there_and_of_a_usable_kind(summary):
    with pytest.raises(DataError, match="not in the summary") as caught:
        CovariateDesign(["channel", "region"]).fit(summary)
    assert caught.value.columns == ("region",)
    summary["first_purchase"] = pd.Timestamp("2024-01-01")
    with pytest.raises(DataError, match="convert dates"):
        CovariateDesign(["first_purchase"]).fit(summary)
    with pytest.raises(ValueError, match="list of column names"):
        CovariateDesign("channel")
    with pytest.raises(ValueError, match="twice"):
        CovariateDesign(["age", "age"])
    with pytest.raises(ValueError, match="not fitted"):
        CovariateDesign(["age"]).matrix(summary)


def test_the_fitted_design_round_trips_through_json(summary):
    design = CovariateDesign(["channel", "age", "member"], reference={"channel": "store"}).fit(summary)
    back = CovariateDesign.from_dict(json.loads(json.dumps(design.to_dict())))
    assert back.names_ == design.names_ and back.description == design.description
    np.testing.assert_array_equal(back.matrix(summary), design.matrix(summary))
