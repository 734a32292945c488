"""The ``clvmodels`` command line: parses arguments, calls the library, writes files.

Exit status: 0 on success; 2 on bad input (one line on stderr, no traceback); 1 on an internal failure
(set CLVMODELS_DEBUG=1 to see the traceback); 130 on Ctrl-C and 143 on SIGTERM, after removing temporary
files. Outputs are written atomically, and an output that is one of the inputs is refused before any work.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from .errors import ClvError, ConvergenceError, DataError, DataWarning, SamplingWarning

__all__ = ["main", "cli_terms"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message} (see --help)")


class _UsageError(Exception):
    pass


def _sampler_option(name: str):
    """argparse type for the sampler option ``name``, checked as the Bayesian models check it."""
    from .bayes.options import SAMPLER_OPTIONS, check_sampler_option

    def convert(text: str):
        try:
            return check_sampler_option(name, float(text) if name == "target_accept" else int(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {SAMPLER_OPTIONS[name]}, got {text}") from None
    return convert


#: The Bayesian models' sampler options and the ``fit`` flags that give them.
_SAMPLER_FLAGS = {"draws": "draws", "tune": "tune", "chains": "chains", "random_seed": "seed",
                  "target_accept": "target_accept"}


def _fraction(text: str) -> float:
    """argparse type: a level strictly between 0 and 1 (:func:`clvmodels.draws.check_interval`)."""
    from .draws import check_interval

    try:
        value = float(text)
        check_interval(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.9 for 90%), got {text}") from None
    return value


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _read_log(args: argparse.Namespace, attributes_flag: str = "--attributes"):
    """The transaction log named on the command line, read with its flags (summarize, backtest, report)."""
    from .data import read_transactions

    csv_options = {key: value for key, value in (("delim", args.delimiter), ("quote", args.quote),
                                                 ("encoding", args.encoding)) if value is not None}
    if args.decimal_comma:
        csv_options["decimal_separator"] = ","
    attributes = _attributes(getattr(args, "attributes", None), attributes_flag)
    try:
        return read_transactions(args.transactions, customer=args.customer, date=args.date, amount=args.amount,
                                 date_format=args.date_format, returns=args.returns, observation_end=args.log_end,
                                 csv_options=csv_options, attributes=attributes)
    except DataError as exc:
        unknown = [c for c in exc.columns if c in (attributes or {})]
        if unknown and exc.reason.startswith("missing column"):
            raise DataError(f"{attributes_flag} names {', '.join(unknown)}, not a column of {args.transactions}: "
                            f"{exc.reason.split('(', 1)[-1].rstrip(')')}") from exc
        raise


def _attributes(text: str | None, flag: str = "--attributes") -> dict[str, str] | None:
    """--attributes channel,region:last as {column: rule} (rule "first" unless given)."""
    if not text:
        return None
    from .data.transactions import ATTRIBUTE_RULES

    rules = {}
    for item in _column_list(text, flag):
        column, _, rule = item.partition(":")
        rule = rule.strip() or "first"
        if rule not in ATTRIBUTE_RULES or not column.strip():
            raise DataError(f"{flag} takes COLUMN or COLUMN:RULE, RULE one of {', '.join(ATTRIBUTE_RULES)}; "
                            f"got {item!r}")
        if column.strip() in rules:
            raise DataError(f"{flag} names {column.strip()!r} twice")
        rules[column.strip()] = rule
    return rules


def _holdout_end(args: argparse.Namespace) -> str | None:
    """With --calibration-end, --end is the end of the holdout (as --holdout-end is; both must agree)."""
    import pandas as pd

    if args.end and args.holdout_end and pd.Timestamp(args.end) != pd.Timestamp(args.holdout_end):
        raise DataError(f"--end {args.end} and --holdout-end {args.holdout_end} differ; with --calibration-end "
                        "both name the end of the holdout: give one")
    return args.holdout_end or args.end


def _cmd_summarize(args: argparse.Namespace) -> int:
    from .data import calibration_holdout, period_summary, rfm_summary
    from .files import table_format, write_table
    from .progress import progress

    # refuse a bad output name before any work; summaries go where `clvmodels fit` can read them back
    if table_format(args.output) == "excel":
        raise DataError(f"write the summary as .csv or .parquet (clvmodels fit reads those), not {args.output!r}")
    with progress(3, "summarize", enabled=not args.quiet) as bar:
        bar.set_postfix_str("reading")
        log = _read_log(args)
        bar.update()
        bar.set_postfix_str("summarising")
        if args.holdout_end and not args.calibration_end:
            raise DataError("--holdout-end needs --calibration-end")
        if args.period:  # opportunities by period (BG/BB)
            if args.time_unit:
                raise DataError("--period and --time-unit make different summaries (whole periods as purchase "
                                "opportunities, for --model bgbb; continuous time, for the others): give one")
            if args.holdout_end:
                args.flag_names = {"observation_end": "--holdout-end"}
            summary = period_summary(log, args.period, calibration_end=args.calibration_end,
                                     observation_end=_holdout_end(args) if args.calibration_end else args.end)
            unit = f"by period {args.period}"
        elif args.calibration_end:
            if not args.holdout_end:
                args.flag_names = {"holdout_end": "--end"}
            summary = calibration_holdout(log, args.calibration_end, _holdout_end(args), time_unit=args.time_unit or "W")
            unit = f"time unit {args.time_unit or 'W'}"
        else:
            summary = rfm_summary(log, observation_end=args.end, time_unit=args.time_unit or "W")
            unit = f"time unit {args.time_unit or 'W'}"
        bar.update()
        bar.set_postfix_str("writing")
        write_table(summary, args.output)
        bar.update()
    _say(args, f"{log!r}\nwrote {args.output} ({len(summary):,} customers, {unit})")
    return 0


def _model_names(text: str, keys: dict[str, str]) -> list[str]:
    """The model names of --model, each a registered short name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in keys]
    if unknown or not names:
        raise DataError(f"--model: unknown model {', '.join(unknown) or '(none)'}; choose from {', '.join(keys)}")
    return names


def _column_list(text: str, flag: str) -> list[str]:
    """Comma-separated column names (no empty ones, no repeats)."""
    names = [c.strip() for c in text.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise DataError(f"{flag} takes comma-separated column names, each once, e.g. channel,region; got {text!r}")
    return names


def _fit_auto(args: argparse.Namespace) -> int:
    """fit LOG --model auto: the models chosen by validation (clvmodels.select_model), saved to -o."""
    from . import models as m
    from .files import write_table
    from .selection import select_model

    if not (args.customer and args.date):
        raise DataError("--model auto reads a transaction log: give --customer and --date (and --amount for spend)")
    if args.bayes or args.segment:
        raise DataError("--model auto chooses among maximum-likelihood models; fit the chosen one with --bayes after")
    if not str(args.output).endswith(".json"):
        raise DataError(f"the model file must be .json, got {args.output!r}")
    if args.evidence and not str(args.evidence).endswith(".csv"):
        raise DataError(f"--evidence writes a .csv file, got {args.evidence!r}")
    covariates = _column_list(args.covariates, "--covariates") if args.covariates else None
    args.transactions = args.summary
    args.returns = args.returns or "error"
    log = _read_log(args)
    chosen = select_model(log, args.calibration_end, covariates=covariates, time_unit=args.time_unit or "W",
                          show_progress=not args.quiet)
    _say(args, chosen.summary())
    fitted = {type(w).short_name: w for w in (chosen.purchase_model_, chosen.spend_model_) if w is not None}
    if args.evidence:
        write_table(chosen.evidence_, args.evidence, index=False)
        _say(args, f"wrote {args.evidence}")
    m.save_models(fitted, args.output)
    _say(args, f"wrote {args.output}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from . import models as m
    from .files import read_summary, table_format
    from .models.persistence import MODEL_REGISTRY, model_keys

    keys = model_keys()
    log_flags = [f for f in ("customer", "date", "amount", "date_format", "attributes", "calibration_end", "evidence",
                             "returns", "log_end", "delimiter", "encoding", "quote") if getattr(args, f) is not None]
    log_flags += ["decimal_comma"] if args.decimal_comma else []
    if args.model is not None and "auto" in _model_names(args.model, {**keys, "auto": "auto"}):
        if args.model.strip() != "auto":
            raise DataError(f"--model {args.model}: auto chooses among the models itself; give --model auto alone")
        return _fit_auto(args)
    if log_flags:
        raise DataError(f"--{log_flags[0].replace('_', '-')} goes with --model auto (fit then reads a transaction log)")
    if args.model is not None:
        _model_names(args.model, keys)  # (unknown names refused before the summary is read)
    if not str(args.output).endswith(".json"):
        raise DataError(f"the model file must be .json, got {args.output!r}")
    table_format(args.summary)
    summary = read_summary(args.summary)
    chosen = args.model is not None
    if args.model is None:  # the default: BG/NBD, and Gamma-Gamma when the summary has amounts
        args.model = "bgnbd,gamma-gamma" if "monetary_value" in summary.columns else "bgnbd"
        if args.model == "bgnbd":
            _say(args, f"{args.summary} has no amounts (monetary_value): fitting the purchase model only")
    names = _model_names(args.model, keys)
    purchase = [n for n in names if MODEL_REGISTRY[keys[n]].role == "purchase"]
    if len(purchase) > 1:
        raise DataError(f"--model {args.model} names {len(purchase)} purchase models: fit one per file (predict "
                        "takes one purchase and one spend model)")
    unit = args.time_unit or summary.attrs.get("time_unit")
    if not unit:
        raise DataError("the summary does not say its time unit (CSV files cannot): pass --time-unit D, W or M (for a "
                        "summary by period, its period: D, W, M or Y)")
    covariates = _column_list(args.covariates, "--covariates") if args.covariates else None
    if args.bayes:
        from .bayes.persistence import BAYES_MODELS


        bayes = {cls.mle_class.short_name: cls for cls in BAYES_MODELS.values()}
        name = next((n for n in names if MODEL_REGISTRY[keys[n]].role == "purchase"), names[0])
        if name not in bayes:
            raise DataError(f"--bayes fits {', '.join(bayes)}, not {name}")
        if len(names) > 1 and chosen:   # (refused before any sampling: each Bayesian model is its own file)
            raise DataError(f"--bayes fits one model per file: run fit --bayes once per model (--model {names[0]}, "
                            f"then --model {names[1]}), each with its own -o")
        if len(names) > 1:
            _say(args, f"--bayes fits one model per file: {name} here; the others each with --model NAME")
        cls = bayes[name]
        if covariates and "covariates" not in cls.mle_class.option_names():
            raise DataError(f"--covariates: {name} takes no covariates")
        options = {name: getattr(args, flag) for name, flag in _SAMPLER_FLAGS.items()
                   if getattr(args, flag) is not None}
        hb = cls(segment=args.segment, covariates=covariates, **options).fit(summary, time_unit=unit)
        _say(args, hb.summary())
        for path in hb.save(args.output):
            _say(args, f"wrote {path}")
        return 0
    if args.segment:
        raise DataError("--segment needs --bayes (segments are pooled by the hierarchical Bayesian model)")
    given = [flag for flag in ("draws", "tune", "chains", "seed", "target_accept") if getattr(args, flag) is not None]
    if given:
        raise DataError(f"--{given[0].replace('_', '-')} needs --bayes (maximum likelihood does not sample)")
    models = {name: MODEL_REGISTRY[keys[name]]() for name in names}
    if covariates:
        takers = [n for n in names if "covariates" in models[n].option_names()]
        if not takers or (chosen and len(takers) < len(names)):
            others = [n for n in names if n not in takers]
            raise DataError(f"--covariates: {', '.join(others)} take{'s' if len(others) == 1 else ''} no covariates "
                            f"(those that do: {', '.join(n for n, c in keys.items() if 'covariates' in MODEL_REGISTRY[c].option_names())})")
        for name in takers:
            models[name].set_params(covariates=covariates)
    for model in models.values():  # bad rows are refused whichever model they concern
        model.validate(summary)
    left = [n for n in names if covariates and n not in takers]
    if left:
        _say(args, f"--covariates {','.join(covariates)} act on {', '.join(takers)}; {', '.join(left)} is fitted "
                   "without them (it takes none)")
    fitted, failed = {}, {}
    for name in names:
        try:
            model = models[name].fit(summary, time_unit=unit)
        except (DataError, ConvergenceError) as exc:  # the data cannot identify this model; others may fit
            failed[name] = exc
            continue
        fitted[name] = model
        _say(args, model.summary() + "\n")
    if not fitted:
        raise DataError("; ".join(f"--model {n}: {exc}" for n, exc in failed.items()))
    for name, exc in failed.items():
        kept = ",".join(fitted)
        warnings.warn(f"--model {name} could not be fitted: {str(exc).rstrip('.')}. {args.output} holds {kept} only "
                      f"(--model {kept} fits it alone)", DataWarning)
    m.save_models(fitted, args.output)
    _say(args, f"wrote {args.output}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .files import read_summary, table_format, write_table
    from .persistence import load
    from .scoring import score_customers

    table_format(args.output)
    summary = read_summary(args.summary)
    if args.time_unit:
        declared = summary.attrs.get("time_unit")
        if declared and declared != args.time_unit:
            raise DataError(f"{args.summary} says its time unit is {declared!r}, not --time-unit {args.time_unit}")
        summary.attrs["time_unit"] = args.time_unit
    horizons = args.horizons
    models = list(load(args.model).values())
    if args.spend_model:
        models += list(load(args.spend_model).values())
    purchase, spend = _one_model("purchase", models, args), _one_model("spend", models, args)
    rate = args.annual_discount_rate
    if rate is not None and spend is None:
        raise DataError("--annual-discount-rate discounts customer values, which need a spend model: fit one "
                        "beside the purchase model (--model NAME,gamma-gamma) or give --spend-model FILE")
    given = {} if rate is None else {"annual_discount_rate": rate}   # (else score_customers' default)
    scores = score_customers(summary, purchase, spend, horizons, interval=args.interval, **given)
    write_table(scores, args.output)
    what = f"horizons {', '.join(horizons)}" if purchase is not None else "expected spend per purchase"
    bounds = f", {args.interval:.0%} intervals" if args.interval else ""
    _say(args, f"wrote {args.output} ({len(scores):,} customers, {what}{bounds})")
    return 0


def _one_model(role: str, models: list, args: argparse.Namespace):
    """The one purchase (or spend) model among those the model files hold, or None."""
    found = [m for m in models if m.role == role]
    if len(found) > 1:
        raise DataError(f"the model files hold {len(found)} {role} models ({', '.join(type(m).__name__ for m in found)}); "
                        "give one: 'clvmodels fit SUMMARY --model NAME' writes a file with one model (e.g. --model "
                        "gamma-gamma for --spend-model)")
    return found[0] if found else None


def _cmd_backtest(args: argparse.Namespace) -> int:
    import pandas as pd

    from .backtest import backtest, default_candidates

    outputs = [p for p in (args.output, args.json, args.csv) if p]
    if not outputs and not args.figures:
        raise DataError("say where to write: -o metrics.json|metrics.csv, --json, --csv or --figures DIR")
    for path in outputs:
        if not str(path).lower().endswith((".json", ".csv", ".parquet", ".html")):
            raise DataError(f"write metrics to .json, .csv or .parquet, or the report to .html, not {path!r}")
    try:
        candidates = default_candidates([m.strip() for m in args.models.split(",") if m.strip()],
                                        spend=bool(args.amount))
    except ValueError as exc:
        raise DataError(f"--models: {exc}") from None
    cutoffs = None
    if args.cutoffs:
        cutoffs = args.cutoffs if "," not in args.cutoffs and args.cutoffs[-1].isalpha() else args.cutoffs.split(",")
    log = _read_log(args)
    result = backtest(log, args.calibration_end, args.horizons,
                      candidates, cutoffs=cutoffs, time_unit=args.time_unit, show_progress=not args.quiet)
    written = []
    for path in outputs:
        if str(path).lower().endswith(".json"):
            result.to_json(path)
            written.append(path)
        elif str(path).lower().endswith(".html"):
            written += [str(p) for p in result.to_html(path, log=log) if p.suffix != ".png"]
        else:
            result.to_csv(path)
            written.append(path)
    if args.figures:
        from .plots import save_figures

        written += [str(p) for p in save_figures(result, args.figures)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        _say(args, result.summary().round(3).to_string(index=False))
    for f in result.failures.itertuples():
        _say(args, f"could not fit {f.model} at {f.cutoff}: {f.message}")
    _say(args, "wrote:")
    for path in written:
        print(path)
    return 0


def _say_job(args: argparse.Namespace, result, report) -> None:
    """What the report opens with, on stderr: the answer, the choice and its evidence, the totals (the
    report's own table), the conclusion."""
    import pandas as pd

    choice = next(sec for sec in report.sections if sec.title == "Model choice")
    _say(args, choice.blocks[0][1] + "\n")
    _say(args, result.selection.summary() + "\n")
    _, totals, caption = next(block for block in choice.blocks if block[0] == "table")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        _say(args, f"{caption}:\n{totals.round(0).to_string()}\n")
    conclusion = next((sec for sec in report.sections if sec.title == "Conclusion"), None)
    for line in (conclusion.blocks[:2] if conclusion else []):
        _say(args, line[1] + "\n")


def _read_satisfaction(path: str, customer: str):
    """--satisfaction FILE: a CSV or Parquet table with the customer column (as --customer names it, or
    customer_id) and a numeric satisfaction column; the scores by customer id (as text)."""
    import numpy as np
    import pandas as pd

    from .files import table_format

    fmt = table_format(path)
    if fmt == "excel":
        raise DataError(f"--satisfaction reads .csv or .parquet, got {path!r}")
    frame = pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)
    id_column = customer if customer in frame.columns else "customer_id"
    if id_column not in frame.columns or "satisfaction" not in frame.columns:
        raise DataError(f"--satisfaction {path} needs the columns {customer} (or customer_id) and satisfaction; "
                        f"it has {', '.join(map(str, frame.columns))}")
    scores = pd.to_numeric(frame["satisfaction"], errors="coerce").to_numpy(dtype=np.float64)
    rows = np.flatnonzero(~np.isfinite(scores))
    if len(rows):
        raise DataError(f"--satisfaction {path}: the satisfaction column must hold a number for every customer; "
                        f"{len(rows):,} rows do not (data rows {', '.join(str(r + 1) for r in rows[:3])})")
    return pd.Series(scores, index=frame[id_column].astype(str), name="satisfaction")


def _cmd_report(args: argparse.Namespace) -> int:
    from .files import write_table
    from .job import run_job
    from .value_table import write_value_table

    if not str(args.output).lower().endswith(".html"):
        raise DataError(f"-o writes the report: give a .html file (its .md twin is written beside it), got {args.output!r}")
    for flag, path, kinds in (("--value-table", args.value_table, (".csv", ".parquet", ".xlsx")),
                              ("--at-risk", args.at_risk, (".csv", ".parquet", ".xlsx"))):
        if path and not str(path).lower().endswith(kinds):
            raise DataError(f"{flag} writes {', '.join(kinds)}, got {path!r}")
    horizons = args.horizons
    valued = [flag for flag, given in (("--satisfaction", args.satisfaction),
                                       ("--acquisition-cost", args.acquisition_cost is not None),
                                       ("--currency", args.currency)) if given]
    if valued and not args.amount:
        raise DataError(f"{', '.join(valued)} act{'s' if len(valued) == 1 else ''} on customer values, which need --amount")
    satisfaction = _read_satisfaction(args.satisfaction, args.customer) if args.satisfaction else None
    args.attributes = args.segment_column
    log = _read_log(args, attributes_flag="--segment-column")
    try:
        result = run_job(log, horizons=horizons, annual_discount_rate=args.annual_discount_rate,
                         satisfaction=satisfaction, acquisition_cost=args.acquisition_cost,
                         alert_after=args.alert_after, show_progress=not args.quiet,
                         on_step=lambda text: _say(args, text))
    except DataError as exc:
        if "satisfaction" in exc.columns:
            raise DataError(f"--satisfaction {args.satisfaction}: {exc.reason}") from exc
        raise
    report = result.report(title=args.title, currency=args.currency, show_ids=args.show_ids)
    written = [str(p) for p in report.save(args.output) if p.suffix != ".png"]
    if args.value_table:
        written.append(str(write_value_table(result.value_table, args.value_table, currency=args.currency)))
    if args.at_risk:
        written.append(str(write_table(result.at_risk, args.at_risk)))
    _say_job(args, result, report)
    _say(args, "wrote:")
    for path in written:
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .bayes.hierarchical import BayesBetaGeo, BayesGammaGamma
    from .data import CDNOW_CALIBRATION_END, load_cdnow, read_transactions
    from .files import write_table
    from .job import job_summary, run_job
    from .models import save_models
    from .progress import progress
    from .value_table import write_value_table
    from .workers import WorkerFits

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with progress(7, "demo", enabled=not args.quiet) as bar, ExitStack() as stack:
        def step(text: str) -> None:
            bar.set_postfix_str(text)
            bar.update()

        with warnings.catch_warnings():  # CDNOW repeats 21 rows exactly; the demo says so once below
            warnings.simplefilter("ignore", DataWarning)
            log = read_transactions(load_cdnow("sample"), amount="amount")
        # the Bayesian hierarchies are fitted in two worker processes meanwhile: much of their time is
        # compiling each sampler's callback on one core (:mod:`clvmodels.workers`)
        options = {"segment": "cohort", "chains": args.chains, "draws": args.draws, "tune": args.draws,
                   "random_seed": 1, "target_accept": args.target_accept}
        fits = stack.enter_context(WorkerFits({"hb": BayesBetaGeo(**options), "hg": BayesGammaGamma(**options)},
                                              job_summary(log)))
        result = run_job(log, backtest_cutoff=CDNOW_CALIBRATION_END, backtest_horizons=["13W", "39W"],
                         show_progress=False, on_step=step)
        chosen, summary, table = result.selection, result.summary, result.value_table
        purchase, spend = chosen.purchase_model_, chosen.spend_model_
        written.append(write_table(summary, out / "cdnow_summary.csv"))
        save_models({type(purchase).short_name: purchase, type(spend).short_name: spend}, out / "cdnow_models.json")
        written.append(out / "cdnow_models.json")
        written.append(write_table(chosen.evidence_, out / "selection_evidence.csv", index=False))
        written.append(write_table(result.backtest.metrics, out / "backtest_metrics.csv", index=False))
        for name in ("cdnow_customer_value.csv", "cdnow_customer_value.parquet", "cdnow_customer_value.xlsx"):
            written.append(write_value_table(table, out / name, currency="USD"))
        written.append(write_table(result.at_risk, out / "cdnow_at_risk.csv"))
        step("sampling the Bayesian hierarchy by acquisition month")
        hb, hg = fits.results().values()
        written += hb.save(out / "cdnow_bayes_bgnbd.json")
        written += hg.save(out / "cdnow_bayes_gamma_gamma.json")
        step("writing the report")
        report = result.report(models={"Bayesian BG/NBD by cohort": hb, "Bayesian Gamma-Gamma by cohort": hg},
                               currency="USD",
                               shrinkage={"Bayesian BG/NBD by cohort": hb.shrinkage(summary)},
                               title="CDNOW: what is each customer worth, and which forecast to trust")
        written += report.save(out / "report.html")
        bar.update()
    _say(args, f"CDNOW sample: {log!r} ({log.n_duplicated_rows} rows repeat an earlier row exactly; kept)")
    _say_job(args, result, report)
    _say(args, purchase.summary() + "\n")
    _say(args, hb.summary() + "\n")
    top = table.sort_values("value_1y", ascending=False).head(5)
    _say(args, f"top customers by 1-year value (10% a year; {purchase.label} + {spend.label}), "
               "90% interval:\n"
         + top[["frequency", "p_alive", "value_1y", "value_1y lower 90%", "value_1y upper 90%", "rfm_segment"]]
         .round(2).to_string())
    _say(args, "wrote:")
    for path in written:
        if path.suffix != ".png":
            print(path)
    return 0


def _number(text: str, accept, requirement: str) -> float:
    """A finite number that ``accept`` takes, or argparse's error saying ``requirement`` (argparse names the
    flag)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
    return value


def _money(text: str) -> float:
    """An amount of money: a finite number of 0 or more."""
    return _number(text, lambda v: v >= 0, "a finite amount of 0 or more")


def _duration(text: str) -> str:
    """A duration such as 180D, 26W, 6M or 1y (argparse names the flag when this raises)."""
    from .timeunits import horizon_days

    try:
        horizon_days(text, "D")
    except (ValueError, DataError):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (a number and a unit: 180D, 26W, 6M, 1y)") from None
    return text


def _durations(text: str) -> list[str]:
    """Comma-separated durations such as 1y,2y,3y (argparse names the flag when this raises)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"takes comma-separated durations such as 1y,2y,3y; got {text!r}")
    return [_duration(t) for t in items]


def _discount_rate(text: str) -> float:
    """An annual discount rate: a finite number > -1."""
    return _number(text, lambda v: v > -1, "a finite rate above -1 (0.10 = 10% a year)")


def _build_parser() -> argparse.ArgumentParser:
    from .backtest import DEFAULT_CANDIDATES, candidate_names
    from .models import model_keys
    from .version import __version__

    parser = _Parser(prog="clvmodels", description="Probabilistic customer-lifetime-value models.")
    parser.add_argument("--version", action="version", version=f"clvmodels {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or messages on stderr")

    logs = _Parser(add_help=False)  # how to read a transaction log, shared by summarize, backtest and report
    logs.add_argument("transactions", help="CSV or Parquet file (or a quoted glob of files)")
    logs.add_argument("--customer", required=True, help="customer id column")
    logs.add_argument("--date", required=True, help="date column")
    logs.add_argument("--date-format", help="strptime format for text/integer dates, e.g. %%Y%%m%%d")
    logs.add_argument("--returns", default="error", choices=["error", "drop", "net"],
                      help="negative amounts: refuse (default), drop, or net against same-day purchases")
    logs.add_argument("--log-end", help="the date the log is complete up to, when after its last purchase "
                      "(declares the days between as days without purchases)")
    logs.add_argument("--delimiter", help="CSV field delimiter (default: detected), e.g. ';'")
    logs.add_argument("--decimal-comma", action="store_true", help="CSV amounts use a decimal comma (1,5)")
    logs.add_argument("--encoding", help="CSV text encoding: utf-8 (default), utf-16 or latin-1")
    logs.add_argument("--quote", help="CSV quote character (default: detected)")

    p = sub.add_parser("summarize", parents=[common, logs], help="transaction log -> per-customer summary",
                       description="Summarise a transaction log (CSV or Parquet) per customer: frequency, "
                                   "recency, T, monetary_value (and holdout columns with --calibration-end).")
    p.add_argument("--amount", help="amount column (optional)")
    p.add_argument("--attributes", help="customer attribute columns to carry into the summary, comma-separated, "
                   "each COLUMN or COLUMN:RULE: first (the earliest transaction's value, the default), last, or "
                   "mode (the most frequent), from the transactions up to the summary's end; e.g. channel,region:last")
    p.add_argument("--end", help="observation end date (default: the log's end); with --calibration-end, "
                   "the end of the holdout")
    p.add_argument("--calibration-end", help="split at this date: calibration summary + holdout columns")
    p.add_argument("--holdout-end", help="end of the holdout (default: last purchase day)")
    p.add_argument("--time-unit", choices=["D", "W", "M"], help="time unit (default W)")
    p.add_argument("--period", choices=["D", "W", "M", "Y"],
                   help="summarise by period instead, for BG/BB (--model bgbb): each whole day, week (Monday to "
                        "Sunday), month or year after a customer's first purchase is one purchase opportunity; "
                        "--end (and --calibration-end) must be the last day of a period")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.set_defaults(func=_cmd_summarize, inputs=["transactions"], outputs=["output"], folders=[])

    p = sub.add_parser("fit", parents=[common], help="customer summary -> fitted models (JSON)",
                       description="Fit a purchase model (BG/NBD, MBG/NBD, Pareto/NBD, NBD, the CNBD-k models, or "
                                   "BG/BB on a summary by period) and/or a spend model (Gamma-Gamma, or Gamma-Gamma "
                                   "with frequency) to a summary from 'clvmodels summarize', by maximum likelihood or "
                                   "(--bayes) Bayesian; or, with --model auto, the models chosen by validation on a "
                                   "transaction log.")
    p.add_argument("summary", help="summary .csv or .parquet; with --model auto, the transaction log (CSV or Parquet)")
    p.add_argument("--model", help=f"comma-separated: {', '.join(model_keys())} (default: bgnbd,gamma-gamma, "
                   "or bgnbd for a summary without amounts); or auto: the purchase and spend models chosen by "
                   "rolling-origin validation on a transaction log (with --customer, --date, --amount)")
    p.add_argument("--customer", help="with --model auto: the log's customer id column")
    p.add_argument("--date", help="with --model auto: the log's date column")
    p.add_argument("--amount", help="with --model auto: the log's amount column (optional)")
    p.add_argument("--date-format", help="with --model auto: strptime format for text/integer dates")
    p.add_argument("--returns", choices=["error", "drop", "net"],
                   help="with --model auto: negative amounts: refuse (default), drop, or net against the same day")
    p.add_argument("--log-end", help="with --model auto: the date the log is complete up to")
    p.add_argument("--delimiter", help="with --model auto: CSV field delimiter (default: detected)")
    p.add_argument("--decimal-comma", action="store_true", help="with --model auto: CSV amounts use a decimal comma")
    p.add_argument("--encoding", help="with --model auto: CSV text encoding: utf-8 (default), utf-16 or latin-1")
    p.add_argument("--quote", help="with --model auto: CSV quote character (default: detected)")
    p.add_argument("--attributes", help="with --model auto: customer attribute columns of the log, as for "
                   "summarize (with --covariates, the covariate variants compete too)")
    p.add_argument("--calibration-end", help="with --model auto: the end of the window the choice looks at and the "
                   "models are fitted on (default: the log's end); nothing after it is read")
    p.add_argument("--evidence", help="with --model auto: write every candidate's scores per origin here (.csv)")
    p.add_argument("--time-unit", choices=["D", "W", "M", "Y"], help="the summary's time unit, or period for a "
                   "summary by period (Y: by year, BG/BB only); Parquet summaries carry it, CSV summaries need it")
    p.add_argument("--bayes", action="store_true", help="Bayesian model (PyMC + nutpie), one per file: --model "
                   "bgnbd, mbgnbd, pnbd, bgcnbd, mbgcnbd (at the k maximum likelihood chooses), bgbb or gamma-gamma; "
                   "posterior saved beside the model file as NAME.posterior.<sha256>.nc")
    p.add_argument("--segment", help="with --bayes: segment column, partially pooled")
    p.add_argument("--covariates", help="comma-separated summary columns of static customer attributes (e.g. "
                   "channel,region; summarize --attributes carries them from a log) acting on the purchase and "
                   "dropout rates, and on spend for gamma-gamma; text columns are categories (the first level in "
                   "sorted order the reference), numbers are used as given")
    p.add_argument("--draws", type=_sampler_option("draws"), help="with --bayes: draws per chain (default 1000)")
    p.add_argument("--tune", type=_sampler_option("tune"), help="with --bayes: tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=_sampler_option("chains"), help="with --bayes: chains (default 4)")
    p.add_argument("--seed", type=_sampler_option("random_seed"), help="with --bayes: random seed")
    p.add_argument("--target-accept", type=_sampler_option("target_accept"),
                   help="with --bayes: NUTS' target acceptance rate in (0, 1); higher takes smaller steps, which "
                        "can remove divergent transitions at the cost of time (default 0.95 with --segment, 0.995 below five "
                        "segments, else 0.8)")
    p.add_argument("-o", "--output", required=True, help="model file (.json)")
    p.set_defaults(func=_cmd_fit, inputs=["summary"], outputs=["output", "evidence"], folders=[])

    p = sub.add_parser("predict", parents=[common], help="models + summary -> per-customer scores",
                       description="Score customers: P(alive), expected purchases per horizon and, with a "
                                   "Gamma-Gamma model, expected spend and discounted value.")
    p.add_argument("model", help="model file from 'clvmodels fit'")
    p.add_argument("summary", help="summary .csv or .parquet (same time unit as the fit)")
    p.add_argument("--horizons", type=_durations, default="1y,2y,3y", help="comma-separated durations (default 1y,2y,3y)")
    p.add_argument("--annual-discount-rate", type=_discount_rate,
                   help="annual discount rate of the values, > -1 (default 0.10; values need a spend model)")
    p.add_argument("--time-unit", choices=["D", "W", "M", "Y"], help="the summary's time unit or period (Parquet "
                   "summaries carry it; a CSV summary without it is taken to be in the model's unit); it must be the "
                   "model's")
    p.add_argument("--spend-model", help="a second model file, with the spend model (e.g. from fit --bayes "
                   "--model gamma-gamma), combined with MODEL's purchase model into value")
    p.add_argument("--interval", type=_fraction, help="add each value's bounds at this level, e.g. 0.9 (posterior "
                   "draws of a Bayesian model, the estimates' sampling distribution of a maximum-likelihood one)")
    p.add_argument("-o", "--output", required=True, help="scores .csv or .parquet")
    p.set_defaults(func=_cmd_predict, inputs=["model", "spend_model", "summary"], outputs=["output"], folders=[])

    p = sub.add_parser("backtest", parents=[common, logs],
                       help="score models and heuristic formulas on holdout periods",
                       description="Fit every candidate on the log up to a cut-off, forecast each customer's "
                                   "purchases and spend over each horizon, score against what happened.")
    p.add_argument("--amount", help="amount column (optional: without it, purchases are scored, not spend)")
    p.add_argument("--calibration-end", required=True, help="(first) cut-off date")
    p.add_argument("--horizons", type=_durations, default="1y,2y,3y", help="comma-separated durations (default 1y,2y,3y)")
    p.add_argument("--models", default=",".join(DEFAULT_CANDIDATES),
                   help=f"comma-separated candidates among {', '.join(candidate_names())} (default: "
                        f"{', '.join(DEFAULT_CANDIDATES)})")
    p.add_argument("--cutoffs", help="more cut-offs: a step such as 3M, or comma-separated dates")
    p.add_argument("--time-unit", default="W", choices=["D", "W", "M"], help="time unit (default W)")
    p.add_argument("-o", "--output", help="metrics (.json, .csv or .parquet) or the report (.html, with its .md twin)")
    p.add_argument("--json", help="also write the metrics as JSON here")
    p.add_argument("--csv", help="also write the tidy metrics table as CSV here")
    p.add_argument("--figures", help="folder for the backtest figures (PNG)")
    p.set_defaults(func=_cmd_backtest, inputs=["transactions"], outputs=["output", "json", "csv"],
                   folders=["figures"])

    p = sub.add_parser("report", parents=[common, logs], help="the whole job on a log -> the report (HTML)",
                       description="The whole job on your transaction log: summary, the models chosen by validation, "
                                   "a backtest of every model and formula, every customer's value, the at-risk "
                                   "list, and the report, which opens with the choice and the customers' totals.")
    p.add_argument("--amount", help="amount column (optional: without it, purchases are forecast, not value)")
    p.add_argument("--segment-column", help="customer attribute columns to split the customers by, comma-separated, "
                   "each COLUMN or COLUMN:RULE: first (the earliest transaction's value, the default), last, or "
                   "mode (the most frequent); e.g. channel:mode,region")
    p.add_argument("--horizons", type=_durations, default="1y,2y,3y", help="value horizons, comma-separated (default 1y,2y,3y)")
    p.add_argument("--annual-discount-rate", type=_discount_rate, default=0.10,
                   help="annual discount rate of the values, > -1 (default 0.10)")
    p.add_argument("--satisfaction", help="a .csv or .parquet table of satisfaction scores (columns: the --customer "
                   "column or customer_id, and satisfaction; every customer needs one): adds the value x "
                   "satisfaction quadrant (needs --amount)")
    p.add_argument("--acquisition-cost", type=_money, help="cost of acquiring a customer: adds value net of it per "
                   "horizon (needs --amount)")
    p.add_argument("--alert-after", type=_duration, help="the at-risk list also takes valuable customers without a purchase for "
                   "longer than this duration (e.g. 180D, 26W), besides those whose P(alive) fell below 0.5")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--currency", help="the amounts' currency, stated beside them in the report (e.g. EUR)")
    p.add_argument("--show-ids", action="store_true", help="show customer ids in the report's tables of customers "
                   "(default: pseudonyms, so that the report can be mailed; the value table and at-risk files keep "
                   "the ids)")
    p.add_argument("--value-table", help="also write the customer value table here (.csv, .parquet or .xlsx; "
                   "without --amount, of purchase forecasts)")
    p.add_argument("--at-risk", help="also write the at-risk list here (.csv, .parquet or .xlsx; without --amount, "
                   "ranked by expected purchases)")
    p.add_argument("-o", "--output", required=True, help="the report (.html; report.md and its figures beside it)")
    p.set_defaults(func=_cmd_report, inputs=["transactions", "satisfaction"], outputs=["output", "value_table", "at_risk"],
                   folders=[])

    p = sub.add_parser("demo", parents=[common], help="the whole job on the bundled CDNOW data, offline")
    p.add_argument("-o", "--output", default="clvmodels-demo", help="output folder (default clvmodels-demo)")
    p.add_argument("--draws", type=_sampler_option("draws"), default=1000,
                   help="posterior draws (and tuning steps) per chain (default 1000)")
    p.add_argument("--chains", type=_sampler_option("chains"), default=4, help="chains (default 4)")
    p.add_argument("--target-accept", type=_sampler_option("target_accept"),
                   help="NUTS' target acceptance rate in (0, 1) for the Bayesian hierarchy "
                        "(default 0.95, 0.995 below five segments)")
    p.set_defaults(func=_cmd_demo, inputs=[], outputs=[], folders=["output"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    _TERMINATING.clear()
    _INTERRUPTED.clear()
    previous = _handle_sigterm()
    args = None
    try:
        args = _build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            _check_files(args)
            # warnings about the user's data and fits are part of the output: one line each, whatever -W says
            warnings.simplefilter("default", DataWarning)
            warnings.simplefilter("default", SamplingWarning)
            return args.func(args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (DataError, ConvergenceError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"clvmodels: error: {cli_terms(_one_line(exc), getattr(args, 'flag_names', None))}"
              f"{_flags_of_columns(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clvmodels: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("clvmodels: terminated", file=sys.stderr)
        return 143
    except (ClvError, Exception) as exc:  # noqa: BLE001 - the last line of defence of a CLI
        if _TERMINATING.is_set():  # (a library that turned the signal into its own error: DuckDB's "Query interrupted")
            print("clvmodels: terminated", file=sys.stderr)
            return 143
        if _INTERRUPTED.is_set():
            print("clvmodels: interrupted", file=sys.stderr)
            return 130
        if os.environ.get("CLVMODELS_DEBUG"):
            traceback.print_exc()
        print(f"clvmodels: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set CLVMODELS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)


class _Terminated(BaseException):
    """SIGTERM, raised where the program is so that every cleanup runs (as for Ctrl-C)."""


#: Set once SIGTERM (SIGINT) has arrived: whatever exception the work then ends with, the program was
#: terminated (interrupted).
_TERMINATING = threading.Event()
_INTERRUPTED = threading.Event()


def _raise_terminated(signum, frame) -> None:
    _TERMINATING.set()
    raise _Terminated


def _raise_interrupted(signum, frame) -> None:
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def _handle_sigterm():
    """Install the SIGTERM handler, and a SIGINT handler that records Ctrl-C where Python's default one is
    in place (main thread only); return the previous handlers to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupted)
    return {signum: signal.SIG_DFL if handler is None else handler  # None: a handler set outside Python
            for signum, handler in previous.items()}


def _check_files(args: argparse.Namespace) -> None:
    """Before any work: no output may be an input, or a folder (see :func:`clvmodels.files.check_outputs`).
    Each subcommand names its input, output and output-folder arguments in its parser defaults."""
    from .files import check_outputs

    inputs = [getattr(args, name) for name in args.inputs]
    for name in ("model", "spend_model"):  # (predict's model files; fit's --model names a model)
        if name in args.inputs and getattr(args, name):
            from .bayes.persistence import posterior_of

            inputs.append(posterior_of(getattr(args, name)))  # a Bayesian model's posterior file, if any
    outputs, names = [], []
    for name in args.outputs:
        path, flag = getattr(args, name), "--" + name.replace("_", "-")
        outputs.append(path)
        names.append(flag)
        if path and str(path).lower().endswith((".html", ".htm")):  # the report's Markdown twin
            outputs.append(str(Path(path).with_suffix(".md")))
            names.append(f"the Markdown twin of {flag}")
    check_outputs(outputs, inputs, folders=[getattr(args, name) for name in args.folders], names=names)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"clvmodels: warning: {cli_terms(_one_line(message))}", file=sys.stderr)


# The library's messages name options as Python does (``returns='drop'``, ``date_format``); the command
# line says them as its flags. Keywords with a value become "--flag value"; names with an underscore
# become the flag where they stand alone.
_FLAGS = {"returns": "--returns", "date_format": "--date-format", "time_unit": "--time-unit",
          "calibration_end": "--calibration-end", "holdout_end": "--holdout-end", "observation_end": "--end",
          "encoding": "--encoding", "delim": "--delimiter", "sep": "--delimiter", "quote": "--quote",
          "customer": "--customer", "date": "--date", "amount": "--amount", "draws": "--draws", "tune": "--tune",
          "target_accept": "--target-accept"}
_PHRASES = [  # whole phrases first: their keywords mean something else in the command line
    (re.compile(r"read_transactions\(\.\.\., observation_end='([^']*)'\)"), r"--log-end \1"),
    (re.compile(r"decimal_separator=','"), "--decimal-comma"),
    (re.compile(r"read_transactions\(\.\.\., attributes=\[([^\]]*)\]\)"), r"--attributes \1"),
    (re.compile(r"\bcsv_options\b"), "--delimiter, --decimal-comma, --encoding and --quote"),
    (re.compile(r",? or pass start=\."), "."),  # (starting values are the Python API's alone)
]
_KEYWORD = re.compile(r"(?<![/\\])\b(" + "|".join(_FLAGS) + r")=('([^']*)'|\"([^\"]*)\"|[^\s,;)]+)")
_NAME = re.compile(r"\b(" + "|".join(k for k in _FLAGS if "_" in k) + r")\b")


def cli_terms(text: str, flags: dict[str, str] | None = None) -> str:
    """A library message with Python's option names (``returns='drop'``) said as command-line flags
    (``--returns drop``); ``flags`` names the flags a subcommand gives some options by."""
    names = {**_FLAGS, **(flags or {})}
    for pattern, flag in _PHRASES:
        text = pattern.sub(flag, text)

    def keyword(m: re.Match) -> str:
        value = m.group(3) if m.group(3) is not None else m.group(4) if m.group(4) is not None else m.group(2)
        return f"{names[m.group(1)]} {shlex.quote(value)}"

    return _NAME.sub(lambda m: names[m.group(1)], _KEYWORD.sub(keyword, text))


def _flags_of_columns(exc: BaseException, args: argparse.Namespace | None) -> str:
    """For an error about columns that flags named (``--date orderd_at``), " (from --date orderd_at)"."""
    named = [f"--{flag} {getattr(args, flag)}" for flag in ("customer", "date", "amount")
             if getattr(args, flag, None) and getattr(args, flag) in getattr(exc, "columns", ())]
    return f" (from {', '.join(named)})" if named else ""


def _one_line(exc: BaseException | Warning | str) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
