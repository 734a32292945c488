"""The command line: exit codes, one-line errors, atomic outputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
import clvmodels.files
from clvmodels.cli import main
from tests.cli_run import run_cli


def run(*args):
    """``clvmodels ARGS``; return (code, stdout, stderr)."""
    proc = run_cli(*args)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture()
def log_csv(tmp_path, small_log):
    path = tmp_path / "tx.csv"
    small_log.rename(columns={"customer_id": "cust", "date": "day", "amount": "value"}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_summarize_writes_the_summary(tmp_path, log_csv, small_log, suffix):
    out = tmp_path / f"summary.{suffix}"
    code = main(["summarize", str(log_csv), "--customer", "cust", "--date", "day", "--amount", "value",
                 "--end", "2024-02-05", "--time-unit", "D", "-o", str(out), "--quiet"])
    assert code == 0
    got = pd.read_csv(out, index_col=0) if suffix == "csv" else pd.read_parquet(out)
    expected = clv.rfm_summary(small_log, observation_end="2024-02-05", time_unit="D")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the private mode of a temp file


def test_summarize_calibration_holdout(tmp_path, log_csv):
    out = tmp_path / "cal.csv"
    assert main(["summarize", str(log_csv), "--customer", "cust", "--date", "day", "--amount", "value",
                 "--calibration-end", "2024-01-10", "-o", str(out), "-q"]) == 0
    assert "holdout_frequency" in pd.read_csv(out).columns


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, log_csv):
    out = tmp_path / "summary.csv"
    code, stdout, stderr = run("summarize", log_csv, "--customer", "nope", "--date", "day", "-o", out)
    assert code == 2
    assert stderr.strip().count("\n") == 0 and "missing column" in stderr and "'nope'" in stderr
    assert "Traceback" not in stderr
    assert not out.exists() and list(tmp_path.glob(".summary.csv*")) == []


def test_bad_values_exit_2(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("c,d,a\n1,2024-01-01,5\n1,2024-01-02,-3\n")
    out = tmp_path / "s.csv"
    code, _, stderr = run("summarize", path, "--customer", "c", "--date", "d", "--amount", "a", "-o", out)
    assert code == 2 and "negative amount" in stderr and "0-based row 1" in stderr and not out.exists()


def test_usage_errors_exit_2_in_one_line(tmp_path, log_csv):
    code, _, stderr = run("summarize", log_csv, "--date", "day", "-o", tmp_path / "s.csv")
    assert code == 2 and stderr.strip().count("\n") == 0 and "--customer" in stderr
    code, _, stderr = run("summarize", log_csv, "--customer", "cust", "--date", "day", "-o", tmp_path / "s.txt")
    assert code == 2 and "cannot tell the table format" in stderr
    code, _, stderr = run("summarize", log_csv, "--customer", "cust", "--date", "day", "-o", tmp_path / "s.xlsx")
    assert code == 2 and ".csv or .parquet" in stderr and not (tmp_path / "s.xlsx").exists()
    code, _, stderr = run("summarize", log_csv, "--customer", "cust", "--date", "day",
                          "-o", tmp_path / "missing_dir" / "s.csv")
    assert code == 2 and "does not exist" in stderr


@pytest.mark.parametrize("entry", ["console script", pytest.param("python -m", marks=pytest.mark.slow)])
def test_the_entry_points_pass_on_the_exit_status_and_output(tmp_path, log_csv, entry):
    """The other tests call cli.main in process (tests/cli_run.py); this one runs the programs a user runs."""
    script = Path(sys.executable).with_name("clvmodels")
    command = [str(script)] if entry == "console script" else [sys.executable, "-m", "clvmodels"]
    out = tmp_path / "s.csv"
    ok = subprocess.run([*command, "summarize", str(log_csv), "--customer", "cust", "--date", "day", "--amount",
                         "value", "-o", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0 and f"wrote {out} (3 customers" in ok.stderr and out.exists(), ok.stderr
    bad = subprocess.run([*command, "summarize", str(log_csv), "--customer", "nope", "--date", "day",
                          "-o", str(tmp_path / "t.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("clvmodels: error: ") and bad.stderr.count("\n") == 1
    assert "nope" in bad.stderr and not (tmp_path / "t.csv").exists()


def test_an_existing_output_survives_a_failed_run(tmp_path, log_csv):
    out = tmp_path / "summary.csv"
    out.write_text("precious")
    code, _, _ = run("summarize", log_csv, "--customer", "nope", "--date", "day", "-o", out)
    assert code == 2 and out.read_text() == "precious"


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch, small_log):
    from clvmodels import files

    def boom(self, path, **kw):
        with open(path, "w") as fh:
            fh.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError):
        files.write_table(small_log, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_internal_errors_exit_1(monkeypatch, tmp_path, log_csv):
    import clvmodels.data as data

    def broken(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(data, "read_transactions", broken)
    code = main(["summarize", str(log_csv), "--customer", "cust", "--date", "day", "-o", str(tmp_path / "s.csv")])
    assert code == 1


def test_duplicate_warning_is_one_line(tmp_path, small_log):
    path = tmp_path / "tx.csv"
    pd.concat([small_log, small_log.iloc[[0]]]).to_csv(path, index=False)
    code, _, stderr = run("summarize", path, "--customer", "customer_id", "--date", "date", "--amount", "amount",
                          "-o", tmp_path / "s.csv")
    assert code == 0
    assert [line for line in stderr.splitlines() if line.startswith("clvmodels: warning")] == [
        "clvmodels: warning: 1 of 7 rows in " + str(path) + " repeat an earlier row exactly (same customer, "
        "timestamp and amount); they are kept and their amounts added to that day"]


@pytest.mark.slow
def test_a_sampling_warning_is_output_not_an_internal_error(tmp_path, cal):
    # the suite turns warnings into errors, as `python -W error` would: the CLI still shows the sampler's
    # diagnostics warning as one line of its output and exits 0 (it said "internal error" and exited 1)
    pytest.importorskip("nutpie")
    cal[["frequency", "recency", "T"]].to_csv(tmp_path / "s.csv")
    code, _, stderr = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--bayes", "--draws", "20", "--tune", "20",
                          "--chains", "2", "--seed", "3", "-o", tmp_path / "hb.json", "-q")
    assert code == 0, stderr
    assert "clvmodels: warning: the sampler's diagnostics fail common thresholds" in stderr and "--draws 40" in stderr


@pytest.mark.slow
def test_demo_runs_offline(tmp_path):
    # the whole job as `make demo` runs it (4 chains x 1000 draws, seed 1)
    code, stdout, stderr = run("demo", "-o", tmp_path / "demo")
    assert code == 0, stderr
    # its hierarchies by cohort sample cleanly: no divergence, R-hat <= 1.01, no diagnostics warning (the
    # study over more seeds: tests/test_bayes_divergences.py)
    assert "sampler's diagnostics" not in stderr
    for name in ("cdnow_bayes_bgnbd.json", "cdnow_bayes_gamma_gamma.json"):
        (model,) = clv.load(tmp_path / "demo" / name).values()
        assert model.chains == 4 and model.divergences_ == 0, name
        assert model.diagnostics()["r_hat"].max() <= 1.01, name
    written = stdout.split()
    assert written and all(os.path.exists(p) for p in written)
    names = {os.path.basename(p) for p in written}
    assert {"cdnow_summary.csv", "cdnow_models.json", "cdnow_bayes_bgnbd.json", "cdnow_bayes_gamma_gamma.json",
            "backtest_metrics.csv", "selection_evidence.csv",
            "cdnow_customer_value.csv", "cdnow_customer_value.parquet", "cdnow_customer_value.xlsx",
            "cdnow_at_risk.csv", "report.html", "report.md"} <= names
    summary = pd.read_csv(tmp_path / "demo" / "cdnow_summary.csv")
    assert len(summary) == 2357 and sorted(summary["cohort"].unique()) == ["1997-01", "1997-02", "1997-03"]
    values = pd.read_parquet(tmp_path / "demo" / "cdnow_customer_value.parquet")
    assert len(values) == 2357
    assert {"value_1y", "value_3y lower 90%", "p_alive upper 90%", "value_tier", "lifecycle_stage",
            "rfm_segment"} <= set(values.columns)
    # the values come from the models chosen by validation, which the report opens with
    chosen = clv.load_models(tmp_path / "demo" / "cdnow_models.json")
    assert sorted(m.role for m in chosen.values()) == ["purchase", "spend"]
    purchase, spend = sorted(chosen.values(), key=lambda m: m.role)
    np.testing.assert_allclose(values["value_1y"], clv.customer_value(purchase, spend, summary.set_index(
        "customer_id"), ["1y"])["value_1y"].to_numpy(), rtol=1e-9)
    assert "The 2,357 customers are expected to be worth " in stderr and "Totals over the 2,357" in stderr
    assert "ArviZ" not in stderr
    html = (tmp_path / "demo" / "report.html").read_text()
    assert html.index("<h2>Model choice</h2>") < html.index("<h2>Conclusion</h2>")
    assert f"The forecasts come from {purchase.title} for purchases and {spend.title}" in html
    for section in ["Conclusion", "Data overview", "Fitted models", "Backtest", "Bayesian models", "Top customers",
                    "Segments"]:
        assert f"<h2>{section}</h2>" in html
    assert "Over 39W, trust Pareto/NBD + Gamma-Gamma for purchases" in stderr  # (the family is backtested)


def test_a_discount_rate_without_a_spend_model_is_refused(tmp_path, cal):
    # the new-user run: predict with a purchase model alone took --annual-discount-rate and ignored it
    cal.to_csv(tmp_path / "s.csv")
    assert run("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "bgnbd", "-o", tmp_path / "m.json", "-q")[0] == 0
    code, _, stderr = run("predict", tmp_path / "m.json", tmp_path / "s.csv", "--annual-discount-rate", "0.15",
                          "-o", tmp_path / "p.csv")
    assert code == 2 and "--annual-discount-rate discounts customer values, which need a spend model" in stderr
    assert not (tmp_path / "p.csv").exists()
    assert run("predict", tmp_path / "m.json", tmp_path / "s.csv", "-o", tmp_path / "p.csv", "-q")[0] == 0
    # two purchase models (the new-user run passed the default models file as --spend-model): say how to
    # get a file with one
    code, _, stderr = run("predict", tmp_path / "m.json", tmp_path / "s.csv", "--spend-model", tmp_path / "m.json",
                          "-o", tmp_path / "p2.csv")
    assert code == 2 and "2 purchase models" in stderr and "--model gamma-gamma for --spend-model" in stderr


def test_fit_and_predict_chain(tmp_path, cdnow_tx):
    summary = clv.calibration_holdout(cdnow_tx, "1997-09-30", "1998-06-30", time_unit="W")
    clv.files.write_table(summary, tmp_path / "summary.parquet")
    summary.to_csv(tmp_path / "summary.csv")
    code, _, stderr = run("fit", tmp_path / "summary.csv", "-o", tmp_path / "m.json")
    assert code == 2 and "--time-unit" in stderr and not (tmp_path / "m.json").exists()
    code, _, stderr = run("fit", tmp_path / "summary.parquet", "-o", tmp_path / "m.json", "-q")  # unit from Parquet
    assert code == 0, stderr
    models = clv.load_models(tmp_path / "m.json")
    assert models["bgnbd"].params_["r"] == pytest.approx(0.2426, rel=1e-3) and models["bgnbd"].time_unit_ == "W"
    code, _, stderr = run("predict", tmp_path / "m.json", tmp_path / "summary.csv", "--horizons", "1y,3y",
                          "--annual-discount-rate", "0.15", "-o", tmp_path / "scores.csv", "-q")
    assert code == 0, stderr
    scores = pd.read_csv(tmp_path / "scores.csv", index_col=0)
    expected = clv.customer_value(models["bgnbd"], models["gamma-gamma"], summary, ["1y", "3y"], 0.15)
    assert len(scores) == 2357
    np.testing.assert_allclose(scores["value_3y"].to_numpy(), expected["value_3y"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(scores["expected_purchases_1y"].to_numpy(),
                               expected["expected_purchases_1y"].to_numpy(), rtol=1e-9)


def test_fit_and_predict_bad_input(tmp_path, cdnow_tx):
    summary = clv.rfm_summary(cdnow_tx, observation_end="1997-09-30", time_unit="W")
    summary.to_csv(tmp_path / "s.csv")
    code, _, stderr = run("fit", tmp_path / "s.csv", "--model", "pareto", "--time-unit", "W", "-o", tmp_path / "m.json")
    assert code == 2 and "--model: unknown model pareto" in stderr
    code, _, stderr = run("backtest", tmp_path / "s.csv", "--customer", "id", "--date", "date",
                          "--calibration-end", "1997-06-30", "--models", "auot",
                          "-o", tmp_path / "b.json")
    assert code == 2 and "--models: unknown model auot" in stderr and stderr.count("\n") == 1
    bad = summary.copy()
    bad.loc[bad.index[3], "recency"] = 100.0
    bad.to_csv(tmp_path / "bad.csv")
    code, _, stderr = run("fit", tmp_path / "bad.csv", "--time-unit", "W", "-o", tmp_path / "m.json")
    assert code == 2 and "recency is larger than T" in stderr and stderr.count("\n") == 1
    code, _, stderr = run("predict", tmp_path / "missing.json", tmp_path / "s.csv", "-o", tmp_path / "x.csv")
    assert code == 2 and "no model file" in stderr
    code, _, stderr = run("fit", tmp_path / "s.csv", "--time-unit", "W", "--model", "bgnbd", "-o", tmp_path / "m.json")
    assert code == 0
    code, _, stderr = run("predict", tmp_path / "m.json", tmp_path / "s.csv", "--horizons", "1 fortnight",
                          "-o", tmp_path / "x.csv")
    assert code == 2 and "argument --horizons: not a duration: '1 fortnight'" in stderr
    assert stderr.count("\n") == 1 and not (tmp_path / "x.csv").exists()
