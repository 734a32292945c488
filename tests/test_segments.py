"""Segments, the customer value table and its export."""

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError
from clvmodels import segments as S
from clvmodels.value_table import value_table, write_value_table


@pytest.fixture(scope="module")
def cdnow(cdnow_tx):
    summary = clv.rfm_summary(cdnow_tx, time_unit="W")
    bg, gg = clv.BetaGeo().fit(summary), clv.GammaGamma().fit(summary)
    return summary, bg, gg


def test_value_tiers_by_quantile_and_threshold():
    v = pd.Series(np.arange(100.0), index=[f"c{i}" for i in range(100)])
    tiers = S.value_tiers(v)
    assert tiers.value_counts().to_dict() == {"low": 50, "medium": 30, "high": 20}  # median, 80th percentile
    assert tiers.index.equals(v.index) and tiers.cat.ordered
    fixed = S.value_tiers(v, thresholds=[10, 90])
    assert fixed.loc["c9"] == "low" and fixed.loc["c10"] == "medium" and fixed.loc["c90"] == "high"
    with pytest.raises(ValueError, match="increasing cuts"):
        S.value_tiers(v, thresholds=[90, 10])
    with pytest.raises(DataError, match="finite"):
        S.value_tiers(pd.Series([1.0, np.nan]))


def test_customers_whose_values_differ_in_the_last_bits_share_their_tier():
    # the "identical customers land in different tiers": a value computed twice can differ in its
    # last bit, and a cut between the two split them
    v = pd.Series([1.0, 8.0, np.nextafter(8.0, 0.0), 3.0])
    assert list(S.value_tiers(v, thresholds=[5.0, 8.0])) == ["low", "high", "high", "low"]
    w = pd.Series(np.r_[np.arange(8.0), 8.0, np.nextafter(8.0, 9.0)])  # the 80th percentile between the two
    tiers = S.value_tiers(w)
    assert tiers.iloc[8] == tiers.iloc[9]


def test_rfm_scores_rank_and_name():
    summary = pd.DataFrame({"frequency": [0, 0, 1, 3, 8, 12, 2, 5, 0, 20],
                            "recency": [0, 0, 5, 30, 50, 51, 10, 2, 0, 52.0],
                            "T": [52.0] * 10, "monetary_value": [0, 0, 10, 20, 40, 80, 15, 30, 0, 100.0]})
    out = S.rfm_scores(summary)
    assert set(out["R"]) <= {1, 2, 3, 4, 5}
    # customers without repeat purchases score 1 on F and M; the 7 repeat buyers spread over 2-5
    assert (out.loc[[0, 1, 8], ["F", "M"]] == 1).all().all()
    assert out.loc[[2, 6, 3, 7, 4, 5, 9], "F"].tolist() == [2, 2, 3, 3, 4, 4, 5]
    # the best customer (most purchases, highest spend, bought last week) is a champion
    assert out.loc[9, "rfm_score"] == "555" and out.loc[9, "rfm_segment"] == "champions"
    # five purchases, middling spend, silent for 50 weeks (only the non-repeaters longer): at risk
    assert out.loc[7, "R"] == 2 and out.loc[7, "rfm_segment"] == "at risk"
    assert out["rfm_segment"].notna().all()
    with pytest.raises(DataError, match="monetary_value must be finite"):
        S.rfm_scores(summary.assign(monetary_value=[0, 0, np.nan, 20, 40, 80, 15, 30, 0, 100.0]))


def test_rfm_scores_use_every_score_on_cdnow(cdnow):
    # 52% of CDNOW customers never repeat: F and M still use all of 2-5 among repeat buyers, and the
    # named segments between champions and lost are populated
    out = S.rfm_scores(cdnow[0])
    for col in "RFM":
        assert set(out[col]) == {1, 2, 3, 4, 5}, col
    counts = out["rfm_segment"].value_counts()
    assert (counts > 0).sum() >= 8 and counts.max() < 0.45 * len(out), counts
    with pytest.raises(DataError, match="lacks columns"):
        S.rfm_scores(cdnow[0].drop(columns="recency"))
    # without amounts: R and F alone, and the segments read F where their rules say FM
    plain = S.rfm_scores(cdnow[0].drop(columns="monetary_value"))
    assert "M" not in plain and (plain[["R", "F"]] == out[["R", "F"]]).all().all()
    assert (plain["rfm_score"] == out["R"].astype(str) + out["F"].astype(str)).all()
    env = {"R": plain["R"].to_numpy(), "FM": plain["F"].to_numpy()}
    first = next(name for name, rule in S.RFM_SEGMENTS if S._rule(rule, env)[0])
    assert plain["rfm_segment"].iloc[0] == first


def test_every_score_pair_gets_a_named_segment():
    # the rules of RFM_SEGMENTS cover all 5 x 5 (R, FM) combinations
    env = {"R": np.repeat(np.arange(1, 6), 5), "FM": np.tile(np.arange(1, 6), 5).astype(float)}
    covered = np.zeros(25, dtype=bool)
    for _, rule in S.RFM_SEGMENTS:
        covered |= S._rule(rule, env)
    assert covered.all()


def test_quadrants_align_by_index():
    value = pd.Series([10.0, 1.0, 10.0, 1.0], index=list("abcd"))
    sat = pd.Series([1, 9, 9, 1], index=list("dcba"))  # shuffled: aligned by customer
    q = S.value_satisfaction_quadrants(value, sat)
    assert q.to_dict() == {"a": "high value, low satisfaction", "b": "low value, high satisfaction",
                           "c": "high value, high satisfaction", "d": "low value, low satisfaction"}
    with pytest.raises(DataError, match="no satisfaction score"):
        S.value_satisfaction_quadrants(value, sat.drop("a"))


def test_lifecycle_stages_use_p_alive_and_recency():
    summary = pd.DataFrame({"frequency": [0, 3, 3, 3, 0, 2, 2, 1], "recency": [0, 50, 40, 30, 0, 51.0, 20, 10],
                            "T": [5, 53, 60, 52, 100, 52.0, 30, 52]})
    pa = [1.0, 0.95, 0.9, 0.3, 1.0, 0.1, 0.9, 0.9]
    st = S.lifecycle_stages(summary, pa, time_unit="W")
    # new (5 weeks old); mature (bought 3 weeks ago, a customer for over a year); mature (60 weeks); declining
    # (P 0.3); lost: one purchase 100 weeks ago although BG/NBD gives P(alive) = 1 without repeats; lost
    # (P 0.1); growing (30 weeks a customer, bought 10 weeks ago); declining: P(alive) 0.9 but no purchase
    # for 42 weeks (more than 240 days)
    assert list(st) == ["new", "mature", "mature", "declining", "lost", "lost", "growing", "declining"]
    assert list(st.cat.categories) == ["new", "growing", "mature", "declining", "lost"] and st.cat.ordered
    # a Series is aligned by customer, not by position
    shuffled = pd.Series(pa, index=summary.index).sort_values()
    assert list(S.lifecycle_stages(summary, shuffled, time_unit="W")) == list(st)
    with pytest.raises(DataError, match="no P\\(alive\\)"):
        S.lifecycle_stages(summary, shuffled.iloc[1:], time_unit="W")
    with pytest.raises(ValueError, match="time unit"):
        S.lifecycle_stages(summary, pa)


def test_at_risk_ranks_valuable_customers_by_value_at_stake():
    table = pd.DataFrame({"value_1y": [100.0, 10.0, 60.0, 5.0, 2.0, 1e-18],
                          "p_alive": [0.8, 0.125, 0.3, 0.4, 0.0625, 1e-20]}, index=list("abcdef"))
    out = S.at_risk(table, top_share=0.6, p_alive_below=0.5, p_alive_above=0.05)
    # worth if active: a 125, b 80, c 200, d 12.5, e 32 (f is already lost: P(alive) < 0.05, left out);
    # the top 60% of a-e are c, a, b; a is safe
    assert list(out.index) == ["c", "b"]
    np.testing.assert_allclose(out["value_at_stake"], [200 * 0.7, 80 * 0.875])
    assert "f" in S.at_risk(table, top_share=0.6, p_alive_above=0.0, p_alive_below=0.5).index
    # by default a customer the lifecycle calls lost (P(alive) < 0.2) is not on the list: b is out
    assert list(S.at_risk(table, top_share=0.6)) and "b" not in S.at_risk(table, top_share=0.6).index
    with pytest.raises(ValueError, match="top_share"):
        S.at_risk(table, top_share=0)


def test_net_value():
    v = pd.Series([10.0, 20.0], index=["x", "y"])
    assert S.net_value(v, 5).tolist() == [5.0, 15.0]
    assert S.net_value(v, pd.Series({"y": 1.0, "x": 2.0})).tolist() == [8.0, 19.0]
    assert S.net_value(v, np.array([2.0, 1.0])).tolist() == [8.0, 19.0]  # an array: in order
    with pytest.raises(DataError, match="no acquisition cost"):
        S.net_value(v, pd.Series({"x": 1.0}))
    with pytest.raises(DataError, match="no acquisition cost"):  # a Series with other ids is never positional
        S.net_value(v, pd.Series([2.0, 1.0]))


def test_value_table_has_every_column_and_exports(cdnow, tmp_path):
    summary, bg, gg = cdnow
    sat = pd.Series(np.random.default_rng(1).integers(0, 11, len(summary)), index=summary.index)
    table = value_table(bg, gg, summary, satisfaction=sat, acquisition_cost=12.0)
    for col in ["frequency", "recency", "T", "monetary_value", "p_alive", "expected_spend", "expected_purchases_1y",
                "value_1y", "value_2y", "value_3y", "value_tier", "lifecycle_stage", "R", "F", "M", "rfm_segment",
                "quadrant", "net_value_3y"]:
        assert col in table.columns, col
    assert len(table) == len(summary) and table.index.equals(summary.index)
    np.testing.assert_allclose(table["net_value_1y"], table["value_1y"] - 12.0)
    expected = clv.customer_value(bg, gg, summary)
    np.testing.assert_allclose(table["value_3y"], expected["value_3y"])
    for name in ("values.csv", "values.parquet", "values.xlsx"):
        write_value_table(table, tmp_path / name)
    back = pd.read_parquet(tmp_path / "values.parquet")
    np.testing.assert_allclose(back["value_1y"], table["value_1y"])
    assert back["value_tier"].dtype == table["value_tier"].dtype  # ordered categorical survives
    assert back["rfm_segment"].astype(str).tolist() == table["rfm_segment"].astype(str).tolist()
    csv = pd.read_csv(tmp_path / "values.csv", index_col=0)
    np.testing.assert_allclose(csv["value_3y"], table["value_3y"])
    assert csv["quadrant"].tolist() == table["quadrant"].astype(str).tolist()
    xl = pd.read_excel(tmp_path / "values.xlsx", index_col=0)
    assert len(xl) == len(table) and xl["lifecycle_stage"].tolist() == table["lifecycle_stage"].astype(str).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["values.csv", "values.parquet", "values.xlsx"]
    with pytest.raises(DataError, match=".csv, .parquet or .xlsx"):
        write_value_table(table, tmp_path / "values.txt")


def test_the_management_table_speaks_crm(cdnow, cdnow_tx, tmp_path):
    from clvmodels.data.rfm import purchase_history

    summary, bg, gg = cdnow
    summary = summary.assign(cohort=clv.acquisition_cohorts(cdnow_tx).reindex(summary.index))
    history = purchase_history(cdnow_tx)
    table = value_table(bg, gg, summary, interval=0.9, max_draws=50, history=history, segment_columns=["cohort"])
    assert list(table.columns[:5]) == ["first_purchase", "last_purchase", "days_since_last_purchase",
                                       "purchase_days", "total_spend"]
    # the CRM columns agree with the log: customer 1 bought on 1997-01-01, -01-18, -08-02 and -12-12
    c1 = table.loc[1]
    assert (str(c1["first_purchase"]), str(c1["last_purchase"]), c1["days_since_last_purchase"]) == (
        "1997-01-01", "1997-12-12", 200)
    raw = clv.load_cdnow("sample")
    assert c1["total_spend"] == pytest.approx(raw.loc[raw["customer_id"] == 1, "amount"].sum())
    assert (table["purchase_days"] == summary["frequency"] + 1).all()
    # the at-risk flag is the at-risk list, each with its reason
    risk = S.at_risk(table, n=None)
    assert set(table.index[table["at_risk"]]) == set(risk.index) and len(risk) > 0
    flagged = table.loc[risk.index[0]]
    assert flagged["at_risk_reason"].startswith(f"P(alive) {flagged['p_alive']:.2f}, below 0.5; worth ")
    assert (table.loc[~table["at_risk"], "at_risk_reason"] == "").all()
    assert (table["cohort"] == summary["cohort"]).all()
    # Excel: the customers sheet with frozen header, filters and formats; the data dictionary
    write_value_table(table, tmp_path / "values.xlsx")
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "values.xlsx")
    assert book.sheetnames == ["customers", "data dictionary"]
    sheet = book["customers"]
    assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref == sheet.dimensions
    header = [c.value for c in sheet[1]]
    assert sheet.cell(2, header.index("value_1y") + 1).number_format == "#,##0.00"
    assert sheet.cell(2, header.index("total_spend") + 1).number_format == "#,##0.00"
    assert sheet.cell(2, header.index("monetary_value") + 1).number_format == "#,##0.00"
    assert sheet.cell(2, header.index("frequency") + 1).number_format == "General"
    assert sheet.cell(2, header.index("p_alive upper 90%") + 1).number_format == "0.000"
    words = pd.read_excel(tmp_path / "values.xlsx", sheet_name="data dictionary")
    assert words["column"].tolist() == header
    meaning = dict(zip(words["column"], words["meaning"]))
    assert meaning["value_2y"] == "expected spend over the horizon 2y, discounted to today"
    assert meaning["value_1y lower 90%"] == "the lower bound of value_1y's central 90% interval"
    assert "CRM recency is days_since_last_purchase" in meaning["recency"]
    unit = dict(zip(words["column"], words["unit"]))
    assert unit["recency"] == "weeks" and unit["value_1y"] == "money (the log's currency)"
    write_value_table(table, tmp_path / "eur.xlsx", currency="EUR")
    eur = pd.read_excel(tmp_path / "eur.xlsx", sheet_name="data dictionary").set_index("column")["unit"]
    assert eur["value_1y"] == eur["total_spend"] == eur["value_1y upper 90%"] == "EUR"
    assert words["meaning"].notna().all()


def test_at_risk_alerts_on_customers_silent_for_too_long_too():
    table = pd.DataFrame({"value_1y": [100.0, 90.0, 80.0, 5.0, 70.0], "p_alive": [0.9, 0.3, 0.95, 0.9, 0.9],
                          "T": [52.0] * 5, "recency": [50.0, 40.0, 10.0, 50.0, 45.0]})
    table.attrs["time_unit"] = "W"
    plain = S.at_risk(table, top_share=1.0)
    assert list(plain.index) == [1] and plain.loc[1, "reason"] == "P(alive) 0.30, below 0.5; worth 300 if active (top 100% of the customers not lost)"
    silent = S.at_risk(table, top_share=1.0, silent_for="20W")  # customer 2: no purchase for 42 weeks
    assert set(silent.index) == {1, 2}
    assert silent.loc[2, "reason"] == "no purchase for 42 weeks, over 20 weeks; worth 84 if active (top 100% of the customers not lost)"
    assert silent.attrs["silent_for"] == "20W"
    with pytest.raises(DataError, match="columns for the at-risk list"):
        S.at_risk(table.drop(columns="recency"), silent_for="20W")
    # a customer the lifecycle calls lost (silent for over a year, whatever P(alive) says) is not listed
    staged = table.assign(lifecycle_stage=["mature", "mature", "lost", "mature", "mature"])
    assert set(S.at_risk(staged, top_share=1.0, silent_for="20W").index) == {1}
    # ranked by expected purchases (a log without amounts), the list says purchases, not value
    counts = table.rename(columns={"value_1y": "expected_purchases_1y"})
    listed = S.at_risk(counts, value="expected_purchases_1y", top_share=1.0)
    assert listed.loc[1, "purchases_at_stake"] == pytest.approx(300 * 0.7) and "value_at_stake" not in listed
    assert listed.loc[1, "reason"] == "P(alive) 0.30, below 0.5; 300 expected purchases if active (top 100% of the customers not lost)"


def test_rfm_segments_agree_with_the_lifecycle_stage(cdnow):
    # the customer 1365: 15 repeat purchases, silent for 24 weeks, P(alive) 0.07 under BG/NBD; it was
    # RFM "champions" and lifecycle "lost" at once
    summary, bg, gg = cdnow
    table = value_table(bg, gg, summary)
    assert table.loc[1365, "lifecycle_stage"] == "lost" and table.loc[1365, "rfm_segment"] == "can't lose"
    slipping = table["lifecycle_stage"].isin(["lost", "declining"])
    assert not table.loc[slipping, "rfm_segment"].isin(["champions", "loyal", "potential loyalists",
                                                        "new or one-off"]).any()
    assert (table.loc[table["lifecycle_stage"] == "lost", "R"] == 1).all()
    # without the stages, R is the plain quintile
    assert S.rfm_scores(summary).loc[1365, "rfm_segment"] == "champions"
