"""The whole job on a user's own log (clvmodels.job.run_job, `clvmodels report`): a generated log with a
channel per customer, same-day returns, and the same log without amounts."""

import os
import re

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels.job import backtest_plan, run_job
from tests.cli_run import run_cli


def run(*args):
    proc = run_cli(*args)
    return proc.returncode, proc.stdout, proc.stderr


def orders(seed: int = 7, n: int = 500) -> pd.DataFrame:
    """A retailer's log in its own column names: web customers buy about twice as often as store ones;
    one purchase in 20 has a same-day return of part of it."""
    sim = clv.simulate(n, rng=seed, start="2022-01-01", acquisition="26W", duration="130W", segments={
        "web": (0.4, {"alpha": 3.0}), "store": (0.6, {"alpha": 6.0})})
    tx = sim.transactions.rename(columns={"customer_id": "client", "date": "ordered_at", "amount": "total"})
    tx["channel"] = tx.pop("segment") if "segment" in tx else sim.customers.loc[tx["client"], "segment"].to_numpy()
    rng = np.random.default_rng(seed)
    back = tx.sample(frac=0.05, random_state=seed).assign(total=lambda d: -np.round(d["total"] * rng.uniform(0.1, 0.5, len(d)), 2))
    out = pd.concat([tx, back]).sort_values(["ordered_at", "client"]).reset_index(drop=True)
    out["ordered_at"] = pd.to_datetime(out["ordered_at"]).dt.strftime("%Y-%m-%d")
    return out


@pytest.fixture(scope="module")
def job():
    log = clv.read_transactions(orders(), customer="client", date="ordered_at", amount="total", returns="net",
                                attributes={"channel": "mode"})
    return log, run_job(log, show_progress=False, max_draws=100)


def test_the_job_values_every_customer_with_the_chosen_models(job):
    log, result = job
    table, selection = result.value_table, result.selection
    assert len(table) == len(result.summary) == log.n_customers
    expected = clv.customer_value(selection.purchase_model_, selection.spend_model_, result.summary, ["1y"])
    np.testing.assert_allclose(table["value_1y"], expected["value_1y"], rtol=1e-9)
    assert (table["channel"] == result.summary["channel"]).all() and set(table["channel"]) == {"web", "store"}
    assert table["cohort"].str.fullmatch(r"2022-0[1-7]").all()
    assert result.at_risk is not None and set(result.at_risk.index) <= set(table.index)
    # the backtest: the longest horizon with as much history before its cut-off (130 weeks: 52), with the
    # choice as a candidate
    cut, horizon = backtest_plan(log)
    assert horizon == "52W" and set(result.backtest.metrics["cutoff"]) == {cut.isoformat()}
    assert "Chosen by validation" in set(result.backtest.metrics["model"])
    # the channel was offered as a covariate: each model's channel variant competed
    candidates = set(result.selection.ranking_.index)
    assert "BG/NBD (covariates: channel)" in candidates and "Gamma-Gamma (covariates: channel)" in candidates


def test_the_report_opens_with_the_choice_and_splits_value_by_channel(job):
    _, result = job
    report = result.report()
    titles = [s.title for s in report.sections]
    assert titles[0] == "Model choice" and "Backtest" in titles
    md = report.to_markdown()
    assert "**By channel**" in md and "**By cohort**" in md
    # the conclusion says how the choice and the backtest's verdicts relate
    conclusion = " ".join(b[1] for b in next(s for s in report.sections if s.title == "Conclusion").blocks)
    chosen = result.selection
    assert (f"The customer values come from {chosen.purchase_model_.label} + {chosen.spend_model_.label}, chosen by "
            "rolling origins on all the data (Model choice).") in conclusion
    ranking = result.backtest.summary(target="purchases", by="rmse")
    rank = int(ranking.loc[ranking["model"] == "Chosen by validation", "rank"].iloc[0])
    assert f"ranked {rank} of {len(ranking)} at 52W by RMSE of purchases." in conclusion
    # the backtest says which models its "Chosen by validation" candidate fitted at the cut-off
    backtest = next(s for s in report.sections if s.title == "Backtest")
    behind = next(b[1] for b in backtest.blocks if b[0] == "table" and "models fitted" in b[1])
    ((purchase, spend),) = [v for (_, label), v in result.backtest.fits.items() if label == "Chosen by validation"]
    assert behind.set_index("candidate").loc["Chosen by validation", "models fitted"] == \
        f"{purchase.label} + {spend.label}"


@pytest.mark.slow  # (the whole job again, 5-10 s)
def test_a_log_without_amounts_gets_purchase_forecasts_alone():
    log = clv.read_transactions(orders().drop(columns="total"), customer="client", date="ordered_at",
                                attributes={"channel": "mode"})
    result = run_job(log, show_progress=False, max_draws=100)  # (no warning: the report says it)
    assert result.selection.spend_model_ is None
    report = result.report()
    headline, choice = (b[1] for b in report.sections[0].blocks[:2])
    totals = result.selection.totals(result.summary)
    assert headline.startswith(f"The 500 customers are expected to make {totals.loc['1y', 'purchases']:,.4g} "
                               "purchases over the next year (90% interval ")
    assert "the log has no amounts" in choice
    # the customer table forecasts purchases: no spend or value, but P(alive), stages, alerts and the channel
    table, purchase = result.value_table, result.selection.purchase_model_
    assert not [c for c in table.columns if re.match(r"(net_)?value_[0-9]|expected_spend", c)]
    np.testing.assert_allclose(table["expected_purchases_1y"],
                               purchase.expected_purchases(result.summary, "1y"), rtol=1e-9)
    assert {"p_alive", "lifecycle_stage", "rfm_segment", "at_risk", "channel", "days_since_last_purchase"} <= set(table)
    assert "M" not in table and table["rfm_score"].str.fullmatch(r"[1-5]{2}").all()
    # customers at risk: in the top 20% by purchases expected if active, ranked by purchases at stake
    risk = result.at_risk
    assert len(risk) and risk.attrs["value"] == "expected_purchases_1y"
    np.testing.assert_allclose(risk["purchases_if_active"], risk["expected_purchases_1y"] / risk["p_alive"])
    assert risk["purchases_at_stake"].is_monotonic_decreasing and table.loc[risk.index, "at_risk"].all()
    assert (risk["reason"] == table.loc[risk.index, "at_risk_reason"]).all() and "purchase_tier" in table
    md = report.to_markdown()
    assert "**By channel**" in md and "expected purchases at stake" in md
    assert "value_1y" not in md and "USD" not in md


@pytest.mark.slow  # (three runs of the whole job through the command line)
def test_the_command_line_report_on_a_users_log(tmp_path):
    log = orders(n=300)
    log.to_csv(tmp_path / "orders.csv", index=False)
    (tmp_path / "out").mkdir()
    clients = sorted(log["client"].unique())
    scores = pd.DataFrame({"client": clients, "satisfaction": np.arange(len(clients)) % 11})
    scores.to_csv(tmp_path / "nps.csv", index=False)
    code, stdout, stderr = run("report", tmp_path / "orders.csv", "--customer", "client", "--date", "ordered_at",
                               "--amount", "total", "--returns", "net", "--segment-column", "channel:mode",
                               "--satisfaction", tmp_path / "nps.csv", "--acquisition-cost", "12.5",
                               "--alert-after", "26W",
                               "--value-table", tmp_path / "out" / "values.xlsx", "--at-risk", tmp_path / "out" / "risk.csv",
                               "-o", tmp_path / "out" / "report.html")
    assert code == 0, stderr
    written = stdout.split()
    assert {os.path.basename(p) for p in written} >= {"report.html", "report.md", "values.xlsx", "risk.csv"}
    values = pd.read_excel(tmp_path / "out" / "values.xlsx", index_col=0)
    assert "channel" in values and "value_1y" in values
    np.testing.assert_allclose(values["net_value_1y"], values["value_1y"] - 12.5)
    # the alert rule: valuable customers silent for over 26 weeks are flagged, with the reason
    risk = pd.read_csv(tmp_path / "out" / "risk.csv", index_col=0)
    silent = risk["reason"].str.contains("over 26 weeks")
    assert silent.any() and ((risk["T"] - risk["recency"])[silent] > 26).all()
    assert set(risk.index) == set(values.index[values["at_risk"]])
    median = np.median(scores["satisfaction"])
    high = values.index.map(dict(zip(scores["client"], scores["satisfaction"]))) >= median
    assert (values["quadrant"].str.endswith("high satisfaction") == high).all()
    # a customer without a score is refused, naming how many
    scores.iloc[1:].to_csv(tmp_path / "some.csv", index=False)
    code, _, stderr = run("report", tmp_path / "orders.csv", "--customer", "client", "--date", "ordered_at",
                          "--amount", "total", "--returns", "net", "--satisfaction", tmp_path / "some.csv",
                          "-o", tmp_path / "some.html")
    assert code == 2 and f"no satisfaction score for 1 of {len(clients)} customers" in stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.index("<h2>Model choice</h2>") < html.index("<h2>Backtest</h2>")
    # without amounts: a report of purchases; asking for the value table is refused before any work
    orders(n=300).drop(columns="total").to_csv(tmp_path / "plain.csv", index=False)
    code, _, stderr = run("report", tmp_path / "plain.csv", "--customer", "client", "--date", "ordered_at",
                          "--value-table", tmp_path / "plain.csv.values.csv", "-o", tmp_path / "plain.html", "-q")
    assert code == 0, stderr
    assert (tmp_path / "plain.html").exists()
    plain = pd.read_csv(tmp_path / "plain.csv.values.csv", index_col=0)
    assert "expected_purchases_1y" in plain and "value_1y" not in plain and len(plain) == len(values)
    code, _, stderr = run("report", tmp_path / "plain.csv", "--customer", "client", "--date", "ordered_at",
                          "--currency", "EUR", "-o", tmp_path / "plain2.html")
    assert code == 2 and "--currency acts on customer values, which need --amount" in stderr
    assert not (tmp_path / "plain2.html").exists()
    # the report must be .html, and never the log itself
    code, _, stderr = run("report", tmp_path / "orders.csv", "--customer", "client", "--date", "ordered_at",
                          "-o", tmp_path / "report.csv")
    assert code == 2 and "-o" in stderr and stderr.count("\n") == 1


def test_mistakes_on_the_report_command_are_refused_in_one_line_naming_the_flag(tmp_path):
    # from a new user's session: each exited 2 only after the whole job, or without naming the flag, or not at all
    orders(n=60).to_csv(tmp_path / "orders.csv", index=False)
    log = ["report", tmp_path / "orders.csv", "--customer", "client", "--date", "ordered_at"]
    cases = [
        (["--alert-after", "6X"], "argument --alert-after: not a duration: '6X'"),
        (["--amount", "total", "--returns", "net", "--acquisition-cost", "-5"],
         "argument --acquisition-cost: must be a finite amount of 0 or more"),
        (["--segment-column", "chanel:mode"], "--segment-column names chanel, not a column of"),
        (["--amount", "totl"], "[column 'totl'] (from --amount totl)"),
        (["--currency", "EUR", "--acquisition-cost", "5"], "--acquisition-cost, --currency act on customer values, "
                                                           "which need --amount"),
    ]
    for extra, message in cases:
        code, _, stderr = run(*log, *extra, "-o", tmp_path / "r.html")
        assert code == 2 and message in stderr and stderr.count("\n") == 1, (extra, stderr)
        assert not (tmp_path / "r.html").exists()
