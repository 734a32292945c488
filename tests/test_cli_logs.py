"""The command line's transaction-log options: the holdout end, the CSV flags, and messages in CLI terms."""


import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from tests.cli_run import run_cli


def run(*args):
    """``clvmodels ARGS``; return (code, stdout, stderr)."""
    proc = run_cli(*args)
    return proc.returncode, proc.stdout, proc.stderr


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clvmodels: error: "), stderr
    return lines[0]


@pytest.fixture()
def log_csv(tmp_path, small_log):
    path = tmp_path / "tx.csv"
    small_log.to_csv(path, index=False)
    return path


COLUMNS = ("--customer", "customer_id", "--date", "date", "--amount", "amount")


def test_end_is_the_holdout_end_with_a_calibration_end(tmp_path, log_csv, small_log):
    out = tmp_path / "cal.csv"
    code, _, stderr = run("summarize", log_csv, *COLUMNS, "--calibration-end", "2024-01-10", "--end", "2024-01-20",
                          "--time-unit", "D", "-o", out, "-q")
    assert code == 0, stderr
    got = pd.read_csv(out, index_col=0)
    expected = clv.calibration_holdout(small_log, "2024-01-10", "2024-01-20", time_unit="D")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (got["holdout_duration"] == 10.0).all() and got["holdout_frequency"].sum() == 0  # c buys on 02-05
    code, _, stderr = run("summarize", log_csv, *COLUMNS, "--calibration-end", "2024-01-10", "--end", "2024-01-20",
                          "--holdout-end", "2024-01-25", "-o", tmp_path / "x.csv")
    assert code == 2 and "--end 2024-01-20 and --holdout-end 2024-01-25 differ" in one_error(stderr)
    assert not (tmp_path / "x.csv").exists()
    assert run("summarize", log_csv, *COLUMNS, "--calibration-end", "2024-01-10", "--end", "2024-01-20",
               "--holdout-end", "2024-01-20", "-o", tmp_path / "y.csv", "-q")[0] == 0


def test_an_end_past_the_log_warns_in_one_line_unless_the_log_end_is_declared(tmp_path, log_csv):
    code, _, stderr = run("summarize", log_csv, *COLUMNS, "--end", "2024-03-06", "-o", tmp_path / "s.csv")
    assert code == 0
    warned = [line for line in stderr.splitlines() if line.startswith("clvmodels: warning")]
    assert warned == [
        "clvmodels: warning: --end 2024-03-06 is 30 days after the last purchase in the log (2024-02-05): every "
        "customer's T counts those days as days without a purchase, which changes the fit if purchases were "
        "missed. If the log is complete up to 2024-03-06, declare it: --log-end 2024-03-06; else take an --end "
        "within the log"]
    code, _, stderr = run("summarize", log_csv, *COLUMNS, "--end", "2024-03-06", "--log-end", "2024-03-31",
                          "-o", tmp_path / "s.csv")
    assert code == 0 and "warning" not in stderr


def test_a_malformed_line_past_the_sniffer_and_a_bad_date_format_exit_2(tmp_path):
    path = tmp_path / "big.csv"
    lines = ["customer_id,date,amount"] + [f"{i % 97},2024-01-01,1.5" for i in range(300_010)]
    lines[300_001] = "5,2024-01-01,1.5,extra"
    path.write_text("\n".join(lines) + "\n")
    code, _, stderr = run("summarize", path, *COLUMNS, "-o", tmp_path / "s.csv")
    assert code == 2 and "line 300,002 has 4 fields where the header has 3" in one_error(stderr)
    code, _, stderr = run("summarize", path, *COLUMNS, "--date-format", "%Q", "-o", tmp_path / "s.csv")
    assert code == 2 and "--date-format %Q is not a valid strptime format" in one_error(stderr)


def test_messages_name_flags_not_python_keywords(tmp_path):
    path = tmp_path / "returns.csv"
    path.write_text("customer_id,date,amount\n1,2024-01-01,5\n1,2024-01-01,-7\n2,2024-01-02,3\n")
    code, _, stderr = run("summarize", path, *COLUMNS, "--returns", "net", "-o", tmp_path / "s.csv")
    line = one_error(stderr)
    assert code == 2 and "use --returns drop for returns" in line and "returns='drop'" not in line
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text("customer_id,date,amount\n1,2024-01-01,1\n", encoding="utf-16")
    code, _, stderr = run("summarize", utf16, *COLUMNS, "-o", tmp_path / "s.csv")
    assert code == 2 and "is not UTF-8" in one_error(stderr) and "give its encoding: --encoding utf-16" in stderr
    assert run("summarize", utf16, *COLUMNS, "--encoding", "utf-16", "-o", tmp_path / "s.csv", "-q")[0] == 0
    (tmp_path / "empty.csv").write_text("")
    code, _, stderr = run("summarize", tmp_path / "empty.csv", *COLUMNS, "-o", tmp_path / "s.csv")
    assert code == 2 and "empty.csv is empty" in one_error(stderr)
    code, _, stderr = run("summarize", tmp_path, *COLUMNS, "-o", tmp_path / "s.csv")
    assert code == 2 and f"{tmp_path} is a folder; give a" in one_error(stderr)  # (the CLI checks its inputs first)


def test_csv_flags_read_semicolons_decimal_commas_latin1_and_quotes(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("kunde;datum;betrag\n\xe9mile;2024-01-01;1,5\n\xe9mile;2024-01-03;2,25\n'b;c';2024-01-02;3\n"
                     .encode("latin-1"))
    out = tmp_path / "s.csv"
    code, _, stderr = run("summarize", path, "--customer", "kunde", "--date", "datum", "--amount", "betrag",
                          "--delimiter", ";", "--decimal-comma", "--encoding", "latin-1", "--quote", "'",
                          "--time-unit", "D", "-o", out, "-q")
    assert code == 0, stderr
    got = pd.read_csv(out, index_col=0)
    assert got.index.tolist() == ["b;c", "émile"] and got.loc["émile", "monetary_value"] == 2.25
    parquet = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": [1], "date": ["2024-01-01"], "amount": [1.0]}).to_parquet(parquet)
    code, _, stderr = run("summarize", parquet, *COLUMNS, "--delimiter", ";", "-o", out)
    assert code == 2 and "--delimiter, --decimal-comma, --encoding and --quote apply to CSV files" in one_error(stderr)


def test_backtest_reads_with_the_csv_flags_and_refuses_amounts_too_large(tmp_path):
    sim = clv.simulate(300, rng=3, time_unit="W", duration="2y")
    tx = sim.transactions[["customer_id", "date", "amount"]]
    path = tmp_path / "tx.csv"
    tx.assign(amount=tx["amount"].map(lambda v: f"{v:.2f}".replace(".", ","))).to_csv(path, sep=";", index=False)
    code, stdout, stderr = run("backtest", path, *COLUMNS, "--delimiter", ";", "--decimal-comma",
                               "--calibration-end", "2021-01-01", "--horizons", "26W", "--models", "bgnbd,run-rate",
                               "--json", tmp_path / "m.json", "-q")
    assert code == 0, stderr
    huge = pd.DataFrame({"customer_id": np.repeat(np.arange(20), 2),
                         "date": np.tile(["2024-01-01", "2024-06-01"], 20), "amount": 1e306})
    huge.to_csv(tmp_path / "huge.csv", index=False)
    code, _, stderr = run("backtest", tmp_path / "huge.csv", *COLUMNS, "--calibration-end", "2024-03-01",
                          "--horizons", "13W", "--json", tmp_path / "h.json")
    assert code == 2 and "amounts too large to compute with" in one_error(stderr)
    assert not (tmp_path / "h.json").exists()


def test_cli_terms_render_keywords_as_flags_and_leave_paths_alone():
    from clvmodels.cli import cli_terms

    assert cli_terms("e.g. date_format='%Y %m'; use returns='drop'") == "e.g. --date-format '%Y %m'; use --returns drop"
    assert cli_terms("cannot read 'sales/date=2024-01-01/part.parquet'") == "cannot read 'sales/date=2024-01-01/part.parquet'"
    assert cli_terms("holdout_end 2024-06-01 is after") == "--holdout-end 2024-06-01 is after"
    # advice the command line cannot follow is left out (a new user looked for --start)
    assert cli_terms("Try another time unit, a fixed k, or pass start=.") == "Try another time unit, a fixed k."


def test_dates_in_flags_and_the_api_must_be_iso(tmp_path, log_csv):
    # day-first and month-first dates read the same text two ways: refused, never guessed
    for text in ("03/04/2024", "31/12/2024", "2024", "Jan 5 2024"):
        with pytest.raises(clv.DataError, match="not a date in ISO form"):
            clv.rfm_summary(pd.DataFrame({"customer_id": ["a"], "date": ["2024-01-01"]}), observation_end=text)
        code, _, stderr = run("summarize", log_csv, *COLUMNS, "--end", text, "-o", tmp_path / "s.csv")
        line = one_error(stderr)
        assert code == 2 and f"--end {text!r} is not a date in ISO form" in line, line
    from datetime import date

    from clvmodels.data.transactions import to_date
    assert to_date("2024-03-04", "x") == to_date("2024-03-04T10:00:00", "x") == to_date(date(2024, 3, 4), "x")


def test_more_messages_in_cli_terms(tmp_path, log_csv):
    returns = tmp_path / "returns.csv"
    returns.write_text("customer_id,date,amount\n1,2024-01-01,5\n1,2024-01-03,-2\n2,2024-01-02,3\n")
    code, _, stderr = run("summarize", returns, *COLUMNS, "-o", tmp_path / "s.csv")
    line = one_error(stderr)
    assert code == 2 and "--returns drop or --returns net" in line, line
    (tmp_path / "m.json").write_text("{}")
    code, _, stderr = run("summarize", tmp_path / "m.json", *COLUMNS, "-o", tmp_path / "s.csv")
    line = one_error(stderr)
    assert code == 2 and "DataFrame" not in line and ".csv or .parquet" in line, line
    # summarize's holdout end is --end: the message names the flag given
    code, _, stderr = run("summarize", log_csv, *COLUMNS, "--calibration-end", "2024-01-10", "--end", "2024-12-31",
                          "--time-unit", "D", "-o", tmp_path / "s.csv")
    line = one_error(stderr)
    assert code == 2 and "--end 2024-12-31" in line and "--holdout-end" not in line, line
    assert "declare it: --log-end 2024-12-31" in line, line  # (what to do)


def test_returns_dropped_are_counted_in_the_log_summary(tmp_path):
    returns = tmp_path / "returns.csv"
    returns.write_text("customer_id,date,amount\n1,2024-01-01,5\n1,2024-01-03,-2\n2,2024-01-02,3\n")
    code, _, stderr = run("summarize", returns, *COLUMNS, "--returns", "drop", "-o", tmp_path / "s.csv")
    assert code == 0 and "1 return dropped" in stderr, stderr
    returns.write_text("customer_id,date,amount\n1,2024-01-01,5\n1,2024-01-03,9\n1,2024-01-03,-2\n2,2024-01-02,3\n")
    log = clv.read_transactions(returns, customer="customer_id", date="date", amount="amount", returns="net")
    assert "1 return netted" in repr(log)


def test_interval_flag_is_checked_when_parsed(tmp_path):
    code, _, stderr = run("predict", tmp_path / "m.json", tmp_path / "s.csv", "--interval", "90",
                          "-o", tmp_path / "p.csv")
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "argument --interval: must be between 0 and 1" in stderr, stderr


def test_sampler_advice_in_cli_terms():
    from clvmodels.cli import cli_terms

    text = cli_terms("To do: draw more (e.g. draws=2000, tune=2000); raise target_accept above 0.95")
    assert "--draws 2000, --tune 2000" in text and "--target-accept above 0.95" in text, text
