import math

import pytest

from clvmodels import timeunits as tu


@pytest.mark.parametrize("horizon, days", [("1y", 365.25), ("3y", 1095.75), ("18M", 18 * 365.25 / 12),
                                           ("52W", 364.0), ("365D", 365.0), ("2 years", 730.5),
                                           ("1.5y", 547.875)])
def test_horizon_days_exact(horizon, days):
    assert tu.horizon_days(horizon) == pytest.approx(days, rel=1e-15)


def test_to_units_is_exact_in_every_unit():
    assert tu.to_units("1y", "W") == pytest.approx(365.25 / 7, rel=1e-15)
    assert tu.to_units("1y", "M") == pytest.approx(12.0, rel=1e-15)
    assert tu.to_units("1y", "D") == pytest.approx(365.25, rel=1e-15)
    assert tu.to_units(39, "W") == 39.0


@pytest.mark.parametrize("bad", ["", "y", "1x", "-1y", "0W", "1 fortnight", True])
def test_bad_horizons_are_refused(bad):
    with pytest.raises(ValueError):
        tu.horizon_days(bad)


def test_bare_number_needs_a_unit():
    with pytest.raises(ValueError, match="no unit"):
        tu.horizon_days(52)


def test_bad_time_unit():
    with pytest.raises(ValueError, match="time_unit"):
        tu.check_unit("Y")


def test_discount_rate_matches_the_iso_value_paper():
    # Fader, Hardie & Lee (2005, JMR): 15% a year is delta = ln(1.15)/52 = 0.002688 per week, a 52-week
    # year. With the exact 365.25-day year used everywhere here, the weekly rate is ln(1.15) * 7 / 365.25.
    delta = tu.continuous_discount_rate(0.15, "W")
    assert delta == pytest.approx(math.log(1.15) * 7 / 365.25, rel=1e-14)
    assert round(math.log(1.15) / 52, 6) == 0.002688
    assert delta == pytest.approx(math.log(1.15) / 52 * 52 / (365.25 / 7), rel=1e-14)
    # one year of continuous discounting equals dividing by 1 + d
    assert math.exp(-delta * tu.to_units("1y", "W")) == pytest.approx(1 / 1.15, rel=1e-14)


@pytest.mark.parametrize("horizon, label", [("1y", "1y"), (" 52W ", "52W"), ("1 year", "1y"), ("2 weeks", "2W"),
                                            ("18 months", "18M"), ("1.5 Years", "1.5y"), ("365 days", "365D")])
def test_horizon_labels_are_column_names_without_spaces(horizon, label):
    assert tu.horizon_label(horizon) == label


@pytest.mark.parametrize("horizon, unit, words", [("180D", None, "180 days"), ("1y", None, "1 year"),
                                                  ("1 year", None, "1 year"), ("18M", None, "18 months"),
                                                  ("1m", None, "1 month"), ("2.5W", None, "2.5 weeks"),
                                                  (26, "W", "26 weeks"), (1, "D", "1 day")])
def test_horizons_in_sentences_spell_their_unit(horizon, unit, words):
    assert tu.horizon_words(horizon, unit) == words
