"""Files the command line reads and writes: outputs never replace inputs, saves are atomic, temporary
files are cleaned, ids round-trip, model files are validated as strictly as a fit produces them."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pandas as pd
import pytest

import clvmodels as clv
from clvmodels import DataError, files
from clvmodels.cli import main
from clvmodels.models import persistence

# short chains on purpose: the sampler-diagnostics warning is expected here (tests/test_bayes_divergences.py holds it)
pytestmark = pytest.mark.filterwarnings("ignore::clvmodels.SamplingWarning")


def cli(*args):
    return main([str(a) for a in args] + ["-q"])


@pytest.fixture()
def log_csv(tmp_path, small_log):
    path = tmp_path / "log.csv"
    small_log.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def summary_w(cdnow_df):
    return clv.rfm_summary(cdnow_df.drop_duplicates(), observation_end="1997-09-30", time_unit="W")


@pytest.fixture(scope="module")
def models(summary_w):
    return clv.BetaGeo().fit(summary_w), clv.GammaGamma().fit(summary_w)


@pytest.fixture()
def broken_work(monkeypatch):
    """Any reading of a log or a summary is an internal error (exit 1): a check that answers 2 ran first."""
    import clvmodels.data as data

    def broken(*a, **k):
        raise RuntimeError("work started")

    monkeypatch.setattr(data, "read_transactions", broken)
    monkeypatch.setattr(files, "read_summary", broken)


# 1. an output is never an input ---------------------------------------------------------------------------------
SUMMARIZE = ["summarize", "{log}", "--customer", "customer_id", "--date", "date", "--amount", "amount"]
BACKTEST = ["backtest", "{log}", "--customer", "customer_id", "--date", "date", "--amount", "amount",
            "--calibration-end", "2024-01-10", "--horizons", "2W"]


@pytest.mark.parametrize("argv, flag", [
    (SUMMARIZE + ["-o", "{log}"], "--output"),
    (BACKTEST + ["-o", "{log}"], "--output"),
    (BACKTEST + ["--csv", "{log}"], "--csv"),
    (BACKTEST + ["-o", "{dir}/m.json", "--json", "{log}"], "--json"),
    (["predict", "{dir}/m.json", "{summary}", "-o", "{summary}"], "--output"),
    (["fit", "{summary}", "--time-unit", "W", "-o", "{dir}/link.json"], "--output"),  # link.json -> summary.csv
    (SUMMARIZE + ["-o", "{dir}/hard.csv"], "--output"),  # hard.csv is a hard link to log.csv
    (["summarize", "{dir}/*.csv", "--customer", "customer_id", "--date", "date", "-o", "{summary}"], "--output"),
    (BACKTEST + ["-o", "{dir}/a.json", "--json", "{dir}/a.json"], "--json"),  # one output twice
], ids=["summarize", "backtest-o", "backtest-csv", "backtest-json", "predict", "fit-symlink", "hard-link", "glob",
        "output-twice"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, log_csv, models, broken_work, capsys,
                                                              argv, flag):
    clv.save_models({"bgnbd": models[0]}, tmp_path / "m.json")
    summary = tmp_path / "summary.csv"
    summary.write_text("customer_id,frequency,recency,T\nx,1,1,2\n")
    (tmp_path / "link.json").symlink_to(summary)
    os.link(log_csv, tmp_path / "hard.csv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    argv = [a.format(log=log_csv, dir=tmp_path, summary=summary) for a in argv]
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is also an input" in err or "given twice" in err), err
    assert f"({flag}) " in err, err  # the flag that gave the output (a new user asked which one)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_output_in_a_missing_folder_is_refused_before_any_work(tmp_path, log_csv, summary_w, capsys):
    # the new-user run: `fit ... -o nodir/m.json` printed its fits (a Bayesian fit sampled) before saying so
    with pytest.raises(DataError, match="output folder 'nodir' does not exist"):
        files.check_outputs(["nodir/m.json"], [log_csv])
    summary_w.to_csv(tmp_path / "s.csv")
    assert main(["fit", str(tmp_path / "s.csv"), "--time-unit", "W", "-o", str(tmp_path / "nodir" / "m.json")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "output folder" in err, (out, err)  # (no fit was printed)
    assert not (tmp_path / "nodir").exists()


def test_inputs_and_outputs_that_differ_are_accepted(tmp_path, log_csv):
    files.check_outputs([tmp_path / "out.csv", tmp_path / "fig"], [log_csv, tmp_path / "*.parquet"])


# 2. a Bayesian model is saved as a pair, atomically -------------------------------------------------------------
@pytest.fixture(scope="module")
def small_cal(cdnow_df):
    cal = clv.calibration_holdout(cdnow_df.drop_duplicates(), "1997-09-30", "1998-06-30", time_unit="W")
    return cal.iloc[::5]


@pytest.fixture(scope="module")
def two_posteriors(small_cal):
    """Two different fitted Bayesian models, built from known draws around the MLE (no sampling: these
    tests are about their files)."""
    from clvmodels.bayes.imports import import_arviz

    az = import_arviz()
    mle = clv.BetaGeo().fit(small_cal)
    fits = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        model = clv.BayesBetaGeo(draws=300, tune=200, chains=1, random_seed=seed)
        model.idata_ = az.from_dict(posterior={n: v * np.exp(rng.normal(0.0, 0.05, (1, 300)))
                                               for n, v in mle.params_.items()})
        model.segments_, model.time_unit_, model.mle_ = ["all"], "W", mle
        fits.append(model)
    return fits


def _predict(model, cal):
    return model.expected_purchases(cal.iloc[:20], 39)


def test_bayes_save_over_a_model_keeps_the_old_pair_if_the_json_write_fails(tmp_path, two_posteriors, small_cal,
                                                                         monkeypatch):
    from clvmodels.bayes import persistence as bp

    old, new = two_posteriors
    path = tmp_path / "hb.json"
    old.save(path)
    expected = _predict(clv.BayesBetaGeo.load(path), small_cal)
    listing = sorted(p.name for p in tmp_path.iterdir())

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(bp, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # the new posterior did not stay behind
    pd.testing.assert_series_equal(_predict(clv.BayesBetaGeo.load(path), small_cal), expected)
    written = new.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # old posterior gone
    back = clv.BayesBetaGeo.load(path)
    pd.testing.assert_series_equal(_predict(back, small_cal), _predict(new, small_cal))
    assert not _predict(back, small_cal).equals(expected)


def test_bayes_files_of_the_first_layout_still_load(tmp_path, two_posteriors, small_cal):
    model = two_posteriors[0]
    path = tmp_path / "hb.json"
    _, nc = model.save(path)
    nc.rename(tmp_path / "hb.posterior.nc")
    content = json.loads(path.read_text())
    content.pop("sha256")
    content["posterior_file"] = "hb.posterior.nc"
    content["sha256"] = persistence.checksum(content)
    path.write_text(json.dumps(content))
    pd.testing.assert_series_equal(_predict(clv.BayesBetaGeo.load(path), small_cal), _predict(model, small_cal))
    model.save(path)  # saving over it removes the first layout's posterior
    assert not (tmp_path / "hb.posterior.nc").exists()
    assert len(list(tmp_path.glob("*.nc"))) == 1


def _resign(path, edit):
    content = json.loads(path.read_text())
    content.pop("sha256")
    edit(content)
    content["sha256"] = persistence.checksum(content)
    path.write_text(json.dumps(content))


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.__setitem__("posterior_file", ".."), "posterior_file"),
    (lambda c: c.__setitem__("posterior_file", "../hb.posterior.nc"), "posterior_file"),
    (lambda c: c.__setitem__("posterior_file", "/etc/passwd"), "posterior_file"),
    (lambda c: c["options"].__setitem__("draws", -5), "options.draws"),
    (lambda c: c["options"].__setitem__("chains", 1.5), "options.chains"),
    (lambda c: c["options"].__setitem__("tune", "50"), "options.tune"),
    (lambda c: c["options"].__setitem__("tune", 0), "options.tune"),  # (what fit refuses, load refuses)
    (lambda c: c["options"].__setitem__("sampler", "stan"), "options.sampler"),
    (lambda c: c["options"].__setitem__("target_accept", 1.0), "options.target_accept"),
    (lambda c: c["options"].__setitem__("segment", 3), "options.segment"),
    (lambda c: c["options"].__setitem__("evil", 1), "options"),
    (lambda c: c.__setitem__("segments", "all"), "segments"),
    (lambda c: c.__setitem__("model", "BayesPareto"), "model"),
    (lambda c: c.__setitem__("time_unit", "Y"), "time_unit"),
    (lambda c: c["mle"]["params"].__setitem__("r", -1), "params.r"),
    (lambda c: c.__setitem__("format_version", "1"), "format_version"),
])
def test_bayes_model_files_are_validated(tmp_path, two_posteriors, edit, field):
    path = tmp_path / "hb.json"
    two_posteriors[0].save(path)
    _resign(path, edit)
    with pytest.raises(DataError, match=field.replace(".", r"\.")):
        clv.BayesBetaGeo.load(path)


def test_predict_refuses_to_write_over_the_models_posterior(tmp_path, two_posteriors, small_cal, capsys):
    _, nc = two_posteriors[0].save(tmp_path / "hb.json")
    small_cal.iloc[:20].to_csv(tmp_path / "s.csv")
    before = nc.read_bytes()
    assert cli("predict", tmp_path / "hb.json", tmp_path / "s.csv", "-o", nc) == 2
    assert "is also an input" in capsys.readouterr().err and nc.read_bytes() == before


def test_a_posterior_symlinked_outside_the_folder_is_refused(tmp_path, two_posteriors):
    inner, outer = tmp_path / "models", tmp_path / "elsewhere"
    inner.mkdir()
    outer.mkdir()
    _, nc = two_posteriors[0].save(inner / "hb.json")
    nc.rename(outer / nc.name)
    (inner / nc.name).symlink_to(outer / nc.name)
    with pytest.raises(DataError, match="outside"):
        clv.BayesBetaGeo.load(inner / "hb.json")


# 3. temporary files ---------------------------------------------------------------------------------------------
def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_names_carry_the_pid(tmp_path, monkeypatch):
    seen = []

    def spy(df, path, **kw):
        seen.append(os.path.basename(path))
        open(path, "w").close()

    monkeypatch.setattr(pd.DataFrame, "to_csv", spy)
    files.write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    assert seen[0].startswith(f".out.csv.{os.getpid()}.") and seen[0].endswith(".part")


def test_stale_temp_files_of_dead_processes_are_removed_and_others_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".out.csv.{dead}.abc_12xy.part"
    live = tmp_path / f".out.csv.{alive}.abc_12xy.part"
    foreign = [tmp_path / ".out.csv.abc_12xy.part", tmp_path / f"out.csv.{dead}.abc_12xy.part",
               tmp_path / f".out.csv.{dead}.abc_12xy.partial", tmp_path / "notes.txt"]
    for p in [stale, live, *foreign]:
        p.write_text("x")
    files.write_text("hello", tmp_path / "result.txt")
    assert not stale.exists()
    assert live.exists() and all(p.exists() for p in foreign)


def test_stale_duckdb_spill_folders_are_removed(tmp_path):
    from clvmodels.data import transactions

    root = tempfile.gettempdir()
    dead = tempfile.mkdtemp(prefix=f"clvmodels-duckdb-{_dead_pid()}-", dir=root)
    live = tempfile.mkdtemp(prefix=f"clvmodels-duckdb-{os.getpid()}-", dir=root)
    other = tempfile.mkdtemp(prefix="clvmodels-duckdb-notapid-", dir=root)
    try:
        open(os.path.join(dead, "spill.tmp"), "w").close()
        con, tmpdir = transactions._connect()
        transactions._close(con, tmpdir)
        assert os.path.basename(tmpdir).startswith(f"clvmodels-duckdb-{os.getpid()}-")
        assert not os.path.exists(dead) and os.path.exists(live) and os.path.exists(other)
    finally:
        for d in (dead, live, other):
            if os.path.exists(d):
                import shutil

                shutil.rmtree(d)


def test_sigterm_during_a_write_cleans_up_and_exits_143(tmp_path, log_csv):
    script = textwrap.dedent(f"""
        import sys, time
        import pandas as pd
        from clvmodels.cli import main

        def slow(df, path, **kw):
            with open(path, "w") as fh:
                fh.write("half")
            print("writing", flush=True)
            time.sleep(60)

        pd.DataFrame.to_csv = slow
        sys.exit(main(["summarize", {str(log_csv)!r}, "--customer", "customer_id", "--date", "date",
                       "-o", {str(tmp_path / "s.csv")!r}, "-q"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err == "clvmodels: terminated\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


# 5. ids that look like missing values ---------------------------------------------------------------------------
NA_IDS = ["NA", "null", "None", "nan", "N/A", "#N/A", "NULL", "n/a", "NaN", "-nan", "<NA>", "007"]


# (summaries in CSV, where "NA" and the like must not be read as missing, in the fast tier; Parquet: full suite)
@pytest.mark.parametrize("fmt", ["csv", pytest.param("parquet", marks=pytest.mark.slow)])
def test_ids_that_look_missing_round_trip_through_the_cli(tmp_path, fmt):
    rng = np.random.default_rng(3)
    rows = []
    for k, cid in enumerate(NA_IDS * 8):
        life = int(rng.integers(5, 360))  # days from the first purchase to dropping out
        for d in rng.choice(life, size=min(life, 1 + int(rng.poisson(life / 40))), replace=False):
            rows.append((cid if k < len(NA_IDS) else f"{cid}_{k}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)),
                         round(float(rng.gamma(2, 10)) + 1, 2)))
    log = pd.DataFrame(rows, columns=["cust", "day", "amount"])
    log.to_csv(tmp_path / "log.csv", index=False)
    summary = tmp_path / f"s.{fmt}"
    assert cli("summarize", tmp_path / "log.csv", "--customer", "cust", "--date", "day", "--amount", "amount",
               "--end", "2024-12-31", "-o", summary) == 0
    back = files.read_summary(summary)
    assert sorted(back.index) == sorted(log["cust"].unique()) and pd.api.types.is_string_dtype(back.index)
    assert back["frequency"].dtype.kind in "if"
    # (the NBD: these 96 customers' lifetimes are uniform, which puts the BG/NBD's a and b at infinity, where
    # whether its optimiser reports convergence turns on rounding; the ids' round trip is under test here)
    assert cli("fit", summary, "--time-unit", "W", "--model", "nbd", "-o", tmp_path / "m.json") == 0
    assert cli("predict", tmp_path / "m.json", summary, "--horizons", "1y", "-o", tmp_path / "p.csv") == 0
    scores = files.read_summary(tmp_path / "p.csv")
    assert list(scores.index) == list(back.index)
    ids = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)["customer_id"]
    assert set(NA_IDS) <= set(ids)
    # the calibration/holdout split that backtests use
    assert cli("summarize", tmp_path / "log.csv", "--customer", "cust", "--date", "day", "--amount", "amount",
               "--calibration-end", "2024-06-30", "-o", tmp_path / f"cal.{fmt}") == 0
    cal = files.read_summary(tmp_path / f"cal.{fmt}")
    first = log.groupby("cust")["day"].min()
    assert sorted(cal.index) == sorted(first[first <= "2024-06-30"].index)
    assert cal["holdout_frequency"].notna().all()


def test_read_summary_keeps_missing_values_in_other_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("customer_id,frequency,monetary_value\nNA,1,NA\nnull,0,\n")
    s = files.read_summary(path)
    assert list(s.index) == ["NA", "null"] and s["monetary_value"].isna().all()
    path.write_text("customer_id,frequency\nNA,1\n,0\n")
    with pytest.raises(DataError, match="customer_id.*row 1"):
        files.read_summary(path)


# 10. model files re-signed by hand ------------------------------------------------------------------------------
def _saved(tmp_path, models, key="bgnbd"):
    path = tmp_path / "m.json"
    clv.save_models({"bgnbd": models[0], "gamma-gamma": models[1]}, path)
    return path


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["bgnbd"]["params"].__setitem__("r", -1), "params.r"),
    (lambda m: m["bgnbd"]["params"].__setitem__("r", "0.2"), "params.r"),
    (lambda m: m["bgnbd"]["params"].__setitem__("r", True), "params.r"),
    (lambda m: m["bgnbd"]["se"].__setitem__("a", -0.1), "se.a"),
    (lambda m: m["bgnbd"].__setitem__("cov", [[1.0]]), "cov"),
    (lambda m: m["bgnbd"].__setitem__("loglik", "x"), "loglik"),
    (lambda m: m["bgnbd"].__setitem__("n_obs", -3), "n_obs"),
    (lambda m: m["bgnbd"].__setitem__("n_unique", 2.5), "n_unique"),
    (lambda m: m["bgnbd"].__setitem__("time_unit", "Y"), "time_unit"),
    (lambda m: m["bgnbd"].__setitem__("param_names", ["r", "alpha", "b", "a"]), "param_names"),
    (lambda m: m["bgnbd"]["options"].__setitem__("maxiter", "many"), "options.maxiter"),
    (lambda m: m["bgnbd"]["options"].__setitem__("__class__", 1), "options"),
    (lambda m: m["bgnbd"]["fitted_attributes"].__setitem__("result_", 1), "fitted_attributes"),
    (lambda m: m["gamma-gamma"]["fitted_attributes"].__setitem__("frequency_spend_correlation_", "x"),
     "frequency_spend_correlation_"),
    (lambda m: m["bgnbd"].__setitem__("options", []), "options"),
    (lambda m: m["bgnbd"].__setitem__("converged", "yes"), "converged"),
    (lambda m: m.__setitem__("bgnbd", m["gamma-gamma"]), "bgnbd"),  # a Gamma-Gamma under the key bgnbd
])
def test_re_signed_model_files_are_validated(tmp_path, models, edit, field):
    path = _saved(tmp_path, models)
    _resign(path, lambda c: edit(c["models"]))
    with pytest.raises(DataError, match=field.replace(".", r"\.")):
        clv.load_models(path)


def test_every_option_of_every_model_has_a_load_check(models):
    from clvmodels.models._base import MODEL_REGISTRY

    for cls in MODEL_REGISTRY.values():
        assert set(cls.option_names()) <= set(cls.option_checks), cls.__name__


def test_a_fitted_start_option_round_trips(tmp_path, summary_w, models):
    bg = clv.BetaGeo(maxiter=300, start=dict(models[0].params_)).fit(summary_w)
    bg.save(tmp_path / "bg.json")
    back = clv.BetaGeo.load(tmp_path / "bg.json")
    assert back.get_params() == bg.get_params() and back.params_ == bg.params_


def test_re_signed_negative_r_is_exit_2_in_the_cli(tmp_path, models, summary_w, capsys):
    path = _saved(tmp_path, models)
    _resign(path, lambda c: c["models"]["bgnbd"]["params"].__setitem__("r", -1))
    summary_w.iloc[:50].to_csv(tmp_path / "s.csv")
    assert cli("predict", path, tmp_path / "s.csv", "-o", tmp_path / "p.csv") == 2
    assert "params.r" in capsys.readouterr().err and not (tmp_path / "p.csv").exists()


def test_saving_a_model_under_another_models_key_is_refused(tmp_path, models):
    with pytest.raises(DataError, match="bgnbd"):
        clv.save_models({"bgnbd": models[1]}, tmp_path / "m.json")


# 14, 15. folders, nesting, versions, empty summaries, read-only folders ----------------------------------------
def test_format_version_as_text_gets_a_clear_message(tmp_path, models):
    path = _saved(tmp_path, models)
    _resign(path, lambda c: c.__setitem__("format_version", "1"))
    with pytest.raises(DataError, match="format_version must be a whole number") as exc:
        clv.load_models(path)
    assert "newer" not in str(exc.value)


def test_deeply_nested_json_is_a_data_error(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested"):
        clv.load_models(path)
    pd.DataFrame({"customer_id": ["a"], "frequency": [1], "recency": [1.0], "T": [2.0]}).to_csv(
        tmp_path / "s.csv", index=False)
    assert cli("predict", path, tmp_path / "s.csv", "-o", tmp_path / "p.csv") == 2
    assert "nested" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["model", "summary", "output"])
def test_a_folder_given_as_a_file_exits_2(tmp_path, models, summary_w, capsys, which):
    clv.save_models({"bgnbd": models[0]}, tmp_path / "m.json")
    summary_w.iloc[:50].to_csv(tmp_path / "s.csv")
    (tmp_path / "d.json").mkdir()
    (tmp_path / "d.csv").mkdir()
    argv = {"model": ("predict", tmp_path / "d.json", tmp_path / "s.csv", "-o", tmp_path / "p.csv"),
            "summary": ("predict", tmp_path / "m.json", tmp_path / "d.csv", "-o", tmp_path / "p.csv"),
            "output": ("predict", tmp_path / "m.json", tmp_path / "s.csv", "-o", tmp_path / "d.csv")}[which]
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err, err


@pytest.mark.parametrize("content", ["", "customer_id,frequency,recency,T\n"])
def test_an_empty_summary_says_it_has_no_customers(tmp_path, models, content, capsys):
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="has no customers"):
        files.read_summary(path)
    assert cli("fit", path, "--time-unit", "W", "-o", tmp_path / "m.json") == 2
    assert "has no customers" in capsys.readouterr().err


def test_a_read_only_folder_is_named_not_the_temp_file(tmp_path, log_csv, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: fail as the system would for a user

        def refuse(prefix="", suffix="", dir=None):
            raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k2j3h4g5" + suffix))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        assert cli(*[a.format(log=log_csv) for a in SUMMARIZE], "-o", folder / "s.csv") == 2
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err
    assert f"cannot write {folder / 's.csv'}: folder {folder} is not writable" in err and ".part" not in err
