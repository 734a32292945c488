"""The HTML report is well-formed, self-contained and complete; the Markdown twin matches it."""

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError
from clvmodels.report import HEADERS, SECTION_TITLES, build_report, conclusions
from clvmodels.segments import at_risk, value_concentration
from clvmodels.value_table import value_table

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Records unbalanced tags, every URL-bearing attribute and the h2 titles."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.urls, self.h2, self._in_h2 = [], [], [], [], False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "srcset"):
                self.urls.append(value)
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


@pytest.fixture(scope="module")
def report_parts(cdnow_tx):
    log = cdnow_tx
    res = clv.backtest(log, "1997-09-30", horizons=["13W", "39W"], time_unit="W", show_progress=False)
    summary = clv.rfm_summary(log, time_unit="W")
    bg, gg = clv.BetaGeo().fit(summary), clv.GammaGamma().fit(summary)
    table = value_table(bg, gg, summary)
    shrink = pd.DataFrame({"segment": ["a", "b"] * 2, "customers": [1000, 40] * 2, "parameter": ["r", "r", "alpha", "alpha"],
                           "unpooled_mle": [0.3, 0.9, 5.0, 2.0], "posterior_mean": [0.31, 0.5, 5.1, 4.0],
                           "lower 90%": [0.28, 0.3, 4.6, 3.0], "upper 90%": [0.34, 0.7, 5.6, 5.0],
                           "population_mle": [0.3, 0.3, 5.0, 5.0]})
    chosen = clv.select_model(log, folds=2, show_progress=False, purchase_candidates=[clv.BetaGeo(), clv.ParetoNBD()])
    rep = build_report(summary, backtest=res, models={"BG/NBD": bg, "Gamma-Gamma": gg}, value_table=table, log=log,
                       shrinkage={"Bayesian BG/NBD by cohort": shrink}, selection=chosen, at_risk=at_risk(table),
                       currency="USD")
    return rep, res, table, chosen


def test_the_report_opens_with_the_chosen_models_and_the_totals(report_parts):
    rep, _, _, chosen = report_parts
    first = rep.sections[0]
    assert first.title == "Model choice"
    # the answer in one sentence, as the totals table writes it
    totals = next(b[1] for b in first.blocks if b[0] == "table")
    one_year = totals.loc["1y"]
    assert first.blocks[0][1] == (
        f"The 2,357 customers are expected to be worth {one_year['value']:,.0f} USD over the next year (90% "
        f"interval {one_year['value lower 90%']:,.0f} to {one_year['value upper 90%']:,.0f}), discounted at 10% "
        "a year.")
    opening = first.blocks[1][1]
    assert opening.startswith(f"The forecasts come from {chosen.purchase_model_.title} for purchases and "
                              f"{chosen.spend_model_.title} for spend per purchase, chosen by validation.")
    assert chosen.reason_ in opening
    assert list(totals.index) == ["1y", "2y", "3y"] and "value upper 90%" in totals
    assert (totals["purchases lower 90%"] < totals["purchases"]).all() and (totals["value"] < totals["value upper 90%"]).all()
    md = rep.to_markdown()
    assert md.index("## Model choice") < md.index("## Conclusion")
    assert f"| 1y | 2,357 | {totals.loc['1y', 'purchases']:,.0f} |" in md


def test_the_opening_says_what_the_customers_are_worth(report_parts):
    rep, _, table, _ = report_parts
    texts = [b[1] for b in rep.sections[0].blocks if b[0] == "text"]
    answer = next(t for t in texts if t.startswith("Of the 2,357 customers"))
    active = table["p_alive"].sum()
    assert f"Of the 2,357 customers, {active:,.0f} are expected to be active" in answer
    # the shares of the most valuable 10% (235.7 customers) and 20%, counted by hand
    v = np.sort(table["value_1y"].to_numpy())[::-1]
    top10 = (v[:235].sum() + 0.7 * v[235]) / v.sum()
    top20 = (v[:471].sum() + 0.4 * v[471]) / v.sum()
    assert f"The top 10% and top 20% of customers by value over 1 year hold {top10:.0%} and {top20:.0%} of it." in answer
    risk = at_risk(table)
    stake = risk["value_at_stake"].sum()
    assert f"{len(risk):,} valuable customers are at risk (listed under At risk): {stake:,.0f} USD of value at stake" \
        in answer
    assert any(b[0] == "figure" and b[1] == "value_concentration.png" for b in rep.sections[0].blocks)
    listed = next(s for s in rep.sections if s.title == "At risk").blocks[1][1]
    np.testing.assert_allclose(listed["value_at_stake"], risk["value_at_stake"].iloc[:20])
    assert "those in the top 20% by value over 1 year if still active" in next(s for s in rep.sections if s.title == "At risk").blocks[0][1]


def test_customer_ids_are_pseudonyms_unless_asked(report_parts, cdnow_tx):
    rep, _, table, chosen = report_parts
    top = next(s for s in rep.sections if s.title == "Top customers").blocks
    listed = next(b[1] for b in top if b[0] == "table")
    assert listed.index.name == "customer (pseudonym)" and listed.index.str.fullmatch(r"c-[0-9a-f]{10}").all()
    assert not set(map(str, table.index)) & set(listed.index)
    html = rep.to_html()
    best = table["value_1y"].idxmax()
    assert f"<td class=\"t\">{best}</td>" not in html
    # the same customer keeps one pseudonym within a report, another in the next report
    from clvmodels.report import pseudonyms

    assert pseudonyms(pd.Index([best, best]), b"k")[0] == pseudonyms(pd.Index([best]), b"k")[0] != \
        pseudonyms(pd.Index([best]), b"other")[0]
    shown = build_report(value_table=table, at_risk=at_risk(table), show_ids=True)
    listed = next(b[1] for b in shown.sections[0].blocks if b[0] == "table")
    assert list(listed.index[:3]) == list(table.sort_values("value_1y", ascending=False).index[:3])


def test_value_concentration_counts_a_share_of_the_customer_at_the_edge():
    shares = value_concentration(pd.Series([1.0, 4.0, 2.0, 3.0]), top=(0.1, 0.25, 0.5, 1.0))
    assert list(shares) == pytest.approx([0.4 * 4 / 10, 0.4, 0.7, 1.0], rel=1e-12)
    assert value_concentration([2.0, 1.0, 2.0, 1.0], top=(0.25,)).iloc[0] == pytest.approx(1 / 3)
    with pytest.raises(DataError, match="positive total"):
        value_concentration([0.0, 0.0])


def test_a_report_for_a_log_without_amounts_says_so(cdnow_df):
    log = clv.read_transactions(cdnow_df.drop(columns="amount"))
    chosen = clv.select_model(log, folds=1, show_progress=False, purchase_candidates=[clv.BetaGeo()])
    rep = build_report(clv.rfm_summary(log, time_unit="W"), selection=chosen)
    assert rep.sections[0].blocks[1][1].startswith("The forecasts come from BG/NBD for purchases (the log has no "
                                                   "amounts: no spend or value)")
    assert "worth" not in rep.sections[0].blocks[0][1] and "value" not in rep.sections[0].blocks[2][1]


def test_html_is_well_formed_self_contained_and_complete(report_parts, tmp_path):
    rep, res, table, _ = report_parts
    written = rep.save(tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    # no external resource: every URL is an in-page anchor or an embedded image
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in checker.urls), [u[:40] for u in checker.urls]
    assert not re.search(r"https?://|@import|url\(", text)
    import base64

    for png in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text):  # nor inside the images
        assert b"http" not in base64.b64decode(png)
    assert checker.h2 == list(SECTION_TITLES)  # every section, in order
    n_figures = sum(b[0] == "figure" for s in rep.sections for b in s.blocks)
    # backtest 5, forest plots 2, value concentration, P(alive) and purchases by frequency and recency, values
    assert n_figures == 5 + 2 + 1 + 3 and text.count("data:image/png;base64,") == n_figures
    # the top customer of the value table is shown, with its value (under a pseudonym)
    top = table["value_1y"].idxmax()
    assert re.search(rf'<tr><td class="t">c-[0-9a-f]{{10}}</td>(?:(?!</tr>).)*<td>{table.loc[top, "value_1y"]:,.4g}'
                     '</td>', text)
    # the Markdown twin: same sections, its figures on disk
    md = (tmp_path / "report.md").read_text()
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(SECTION_TITLES)
    figs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figs) == n_figures and all((tmp_path / f).is_file() for f in figs)
    assert sorted(p.name for p in written if p.suffix != ".png") == ["report.html", "report.md"]
    with pytest.raises(DataError, match="html"):
        rep.save(tmp_path / "report.pdf")


def test_conclusion_is_generated_from_the_numbers(report_parts):
    rep, res, _, _ = report_parts
    lines = conclusions(res)
    # the default backtest scores the whole family next to the formulas; Pareto/NBD ranks first on CDNOW
    family = {"BG/NBD", "BG/CNBD-k", "MBG/CNBD-k", "MBG/NBD", "NBD", "Pareto/NBD"}
    assert {f"{m} + Gamma-Gamma" for m in family} <= set(res.metrics["model"]) and res.failures.empty
    assert len(lines) == 2 and lines[1].startswith("Over 39W, trust Pareto/NBD + Gamma-Gamma for purchases")
    ranked = res.summary().query("horizon == '39W'")
    best = ranked.query("rank == 1").iloc[0]
    # every number as the report's tables write it (4 significant digits)
    assert f"lowest RMSE ({best['rmse']:,.4g})" in lines[1]
    assert f"{abs(best['aggregate_error_pct']):,.4g}% below what happened" in lines[1]
    # by how much it beats the next model: the runner-up's RMSE and the gap
    second = ranked.query("rank == 2").iloc[0]
    assert (f"The next model, {second['model']}, has RMSE {second['rmse']:,.4g} "
            f"({second['rmse'] / best['rmse'] - 1:.1%} higher: as good, for practical purposes)") in lines[1]
    # the formula that wins MAE only by forecasting little is called out, with the direction
    low = ranked.loc[ranked["mae"].idxmin()]
    assert (f"Among the formulas, {low['model']} has a lower mean absolute error ({low['mae']:,.4g} vs "
            f"{best['mae']:,.4g}) only because its total is {abs(low['aggregate_error_pct']):,.4g}% below") in lines[1]
    assert "Pareto/NBD + Gamma-Gamma's 90% predictive intervals are" in lines[1]
    assert f"randomised PIT coverage {100 * best['pit_coverage']:,.4g}%" in lines[1]
    # and when a formula wins, the verdict says so
    swapped = res.metrics.copy()
    models = swapped["model"].map(res.roles) == "purchase"
    swapped.loc[models & (swapped["metric"] == "rmse"), "value"] = 99.0
    from dataclasses import replace

    verdict = conclusions(replace(res, metrics=swapped))[1]
    assert verdict.startswith("Over 39W, the formula") and "did not earn their place" in verdict
    # and when no model could be fitted at the cut-off, it says so, not that the models lost (a new user's log)
    failures = pd.DataFrame({"cutoff": "1997-09-30", "model": ["BG/NBD + Gamma-Gamma", "NBD + Gamma-Gamma"],
                             "error": "ConvergenceError", "message": "did not converge"})
    verdict = conclusions(replace(res, metrics=res.metrics[~models], failures=failures))[1]
    assert verdict.startswith("Over 39W, the formula") and "did not earn" not in verdict
    assert "no model was scored, so the formulas were compared only with each other (2 model fits failed" in verdict
    conclusion = next(s for s in rep.sections if s.title == "Conclusion")
    assert any(lines[1] == b[1] for b in conclusion.blocks)


def test_the_report_states_the_backtests_level_and_tells_formulas_by_their_role(cdnow_tx, cdnow_df, tmp_path):
    from clvmodels.backtest import Candidate
    from clvmodels.models.heuristics import RunRate

    candidates = [Candidate("BG/NBD", clv.BetaGeo()), Candidate("my rate", RunRate(per_customer=True))]
    with pytest.raises(ValueError, match="candidate 'BG/NBD' forecasts no spend: give it a spend model"):
        clv.backtest(cdnow_tx, "1997-09-30", models=candidates)
    candidates[0] = Candidate("BG/NBD", clv.BetaGeo(), clv.GammaGamma())
    # a misspelt keyword is named, whether the log is read already or not
    for log in (cdnow_tx, cdnow_df):
        with pytest.raises(TypeError, match="unexpected keyword argument 'candidates' .candidates go in models="):
            clv.backtest(log, "1997-09-30", candidates=candidates)
    with pytest.raises(TypeError, match="'date_format': options of read_transactions, but the log is read already"):
        clv.backtest(cdnow_tx, "1997-09-30", date_format="%Y%m%d")
    res = clv.backtest(cdnow_tx, "1997-09-30", horizons=["39W"], time_unit="W", models=candidates,
                       interval=0.8, show_progress=False)
    assert res.roles == {"BG/NBD": "purchase", "my rate": "formula"}
    line = conclusions(res)[0]
    # a formula under a label of the user's own is still a formula, and the level is the one scored
    assert "The best formula, my rate," in line and "BG/NBD's 80% predictive intervals are" in line, line
    rep = build_report(clv.rfm_summary(cdnow_tx, time_unit="W"), backtest=res)
    rep.save(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "80% interval coverage %" in html and "80% PIT coverage %" in html and "90%" not in html


def test_report_without_a_backtest_has_only_what_it_was_given():
    summary = clv.load_cdnow_summary()
    rep = build_report(summary)
    assert [s.title for s in rep.sections] == ["Data overview", "Glossary"]
    assert '<td class="t">2,357</td>' in rep.to_html()


def test_text_and_ids_are_escaped():
    from clvmodels.report import Report, Section

    sec = Section("A & B <models>")
    sec.text("<script>alert(1)</script>")
    sec.table(pd.DataFrame({"model": ["<b>x</b>"]}, index=pd.Index(["<id>"], name="customer_id")))
    out = Report("t", [sec]).to_html()
    assert "<script>" not in out and "&lt;script&gt;" in out and "<b>x</b>" not in out
    assert "&lt;id&gt;" in out and "A &amp; B &lt;models&gt;" in out


def test_the_glossary_explains_every_column_and_label_of_the_customer_tables(report_parts):
    rep, _, table, _ = report_parts
    terms = set(next(s for s in rep.sections if s.title == "Glossary").blocks[0][1]["term"])
    for title in ("Top customers", "At risk"):
        for block in next(s for s in rep.sections if s.title == title).blocks:
            if block[0] == "table":
                for column in block[1].columns:
                    assert re.sub(r"_[0-9.]+[A-Za-z]+$", "_H", column) in terms, (title, column)
    # the model choice's tables, under the headers the reader sees
    words = {w for t in terms for w in t.split(", ")}
    for block in rep.sections[0].blocks:
        if block[0] == "table" and block[2].startswith("The "):
            for column in block[1].columns:
                assert HEADERS.get(column, column) in words, (block[2], column)
    for stage in table["lifecycle_stage"].unique():
        assert f"lifecycle: {stage}" in terms
    for segment in table["rfm_segment"].unique():
        assert f"RFM segment: {segment}" in terms
    patterns = [b[1] for b in next(s for s in rep.sections if s.title == "Purchase patterns").blocks if b[0] == "figure"]
    assert patterns == ["p_alive_by_frequency_recency.png", "purchases_by_frequency_recency.png",
                        "value_distribution.png"]



def test_candidates_that_failed_to_fit_are_named_and_left_out_of_the_ranking(cdnow_df):
    log = clv.read_transactions(cdnow_df)
    chosen = clv.select_model(log, folds=2, show_progress=False,
                              purchase_candidates=[clv.BetaGeo(), clv.ParetoNBD(maxiter=1)])  # (cannot converge)
    assert chosen.ranking_.loc["Pareto/NBD", "failed"]
    rep = build_report(clv.rfm_summary(log, time_unit="W"), selection=chosen)
    blocks = rep.sections[0].blocks
    ranking = next(b[1] for b in blocks if b[0] == "table" and b[2].startswith("The purchase models compared"))
    assert list(ranking.index) == ["BG/NBD"] and "failed" not in ranking
    assert ("Left out of the purchase models' ranking: Pareto/NBD, which could not be fitted at every origin "
            "(the selection's evidence has each fit's error).") in [b[1] for b in blocks if b[0] == "text"]
