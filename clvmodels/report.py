"""The model-comparison report: one self-contained HTML file (figures embedded) and a Markdown twin.

:func:`build_report` gathers what was computed (a summary, fitted models, a backtest, a value table)
into a :class:`Report` of sections; :meth:`Report.save` writes ``report.html`` (no external resource:
figures are base64 PNG, the style sheet is inline) and ``report.md`` with its figures as PNG files in
``report_figures/``. The conclusion is generated from the backtest's numbers, never written by hand.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .draws import level_text
from .files import atomic_path, write_text
from .timeunits import UNIT_WORDS, horizon_words

__all__ = ["Report", "Section", "build_report", "conclusions", "fitted_behind", "pseudonyms"]

#: Sections in the order a reader meets them (the answer, the customers, then the evidence, and an appendix
#: for statisticians); ``build_report`` includes those it has material for.
SECTION_TITLES = ("Model choice", "Conclusion", "Top customers", "At risk", "Segments", "Purchase patterns",
                  "Data overview", "Backtest", "Fitted models", "Bayesian models", "Glossary")


@dataclass
class Section:
    """A titled part of the report: blocks of ("text", str), ("table", DataFrame, caption) or
    ("figure", file name, PNG bytes, caption)."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def text(self, value: str) -> None:
        self.blocks.append(("text", value))

    def table(self, df: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(("table", df, caption))

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.blocks.append(("figure", name, png, caption))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #246;padding-bottom:.3em}h2{color:#246;margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
th,td{border:1px solid #ccd;padding:.25em .6em;text-align:right}th{background:#eef2f7}
.t{text-align:left}.scroll{overflow-x:auto}caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#555}
nav ul{columns:2;list-style:none;padding-left:0}.note{color:#555;font-size:.9em}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "" if np.isnan(v) else str(v)
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return str(v)


#: Column names shown to readers (metric names as the backtest spells them otherwise).
HEADERS = {"rmse": "RMSE", "mae": "MAE", "aggregate_error_pct": "total error %", "cumulative_error_pct":
           "cumulative error %", "wape": "WAPE", "spearman": "Spearman", "top_decile_share": "top-decile share",
           "coverage": "interval coverage", "pit_coverage": "PIT coverage", "p_alive": "P(alive)",
           "unpooled_mle": "segment alone (MLE)", "posterior_mean": "posterior mean", "population_mle": "pooled MLE",
           "log_score": "log score", "abs_aggregate_error_pct": "mean |total error %|", "origins_won": "origins won",
           "origins_fitted": "origins fitted",
           "spend_mae": "spend MAE", "spend_rmse": "spend RMSE", "purchases_expected": "purchases forecast",
           "purchases_actual": "purchases actual", "spend_expected": "spend forecast", "spend_actual": "spend actual"}


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, formatted cells and which columns are numeric (right-aligned)."""
    if not isinstance(df.index, pd.RangeIndex):
        # an index of ids or labels is text, never a number with thousands separators
        df = df.set_axis(df.index.map(str).rename(df.index.name or ""), axis=0).reset_index()
    frame = df
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = [HEADERS.get(str(c), str(c)) for c in frame.columns]
    return head, [[_fmt(v) for v in row] for row in frame.itertuples(index=False)], numeric


@dataclass
class Report:
    """A report as sections; render with :meth:`to_html` / :meth:`to_markdown`, write with :meth:`save`."""

    title: str
    sections: list[Section]

    def to_html(self) -> str:
        """The whole report as one HTML document with every figure embedded."""
        esc = html.escape
        out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
               f"<title>{esc(self.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
               f"<h1>{esc(self.title)}</h1>", "<nav><ul>"]
        out += [f'<li><a href="#s{k}">{esc(s.title)}</a></li>' for k, s in enumerate(self.sections)]
        out.append("</ul></nav>")
        for k, sec in enumerate(self.sections):
            out.append(f'<section id="s{k}">')
            out.append(f"<h2>{esc(sec.title)}</h2>")
            for block in sec.blocks:
                if block[0] == "text":
                    out += [f"<p>{esc(p)}</p>" for p in block[1].split("\n\n")]
                elif block[0] == "table":
                    head, rows, numeric = _cells(block[1])
                    cls = ["" if num else ' class="t"' for num in numeric]
                    out.append('<div class="scroll"><table>' + (f"<caption>{esc(block[2])}</caption>" if block[2] else ""))
                    out.append("<thead><tr>" + "".join(f"<th{c}>{esc(h)}</th>" for h, c in zip(head, cls))
                               + "</tr></thead><tbody>")
                    out += ["<tr>" + "".join(f"<td{c}>{esc(v)}</td>" for v, c in zip(r, cls)) + "</tr>" for r in rows]
                    out.append("</tbody></table></div>")
                else:
                    data = base64.b64encode(block[2]).decode("ascii")
                    out.append(f'<figure><img alt="{esc(block[3])}" src="data:image/png;base64,{data}">'
                               f"<figcaption>{esc(block[3])}</figcaption></figure>")
            out.append("</section>")
        out += ["</body>", "</html>"]
        return "\n".join(out) + "\n"

    def to_markdown(self, figure_dir: str = "report_figures") -> str:
        """The report as Markdown; figures are referenced as ``figure_dir/<name>.png``."""
        out = [f"# {self.title}", ""]
        for sec in self.sections:
            out += [f"## {sec.title}", ""]
            for block in sec.blocks:
                if block[0] == "text":
                    out += [block[1], ""]
                elif block[0] == "table":
                    head, rows, _ = _cells(block[1])
                    if block[2]:
                        out += [f"**{block[2]}**", ""]
                    out.append("| " + " | ".join(h.replace("|", "\\|") for h in head) + " |")
                    out.append("|" + "---|" * len(head))
                    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                    out.append("")
                else:
                    out += [f"![{block[3]}]({figure_dir}/{block[1]})", ""]
        return "\n".join(out)

    def save(self, path: str | os.PathLike) -> list[Path]:
        """Write ``path`` (.html, self-contained), its Markdown twin (same name, .md) and the twin's
        figures (``<name>_figures/``), each atomically; return the paths written."""
        html_path = Path(path)
        if html_path.suffix.lower() not in (".html", ".htm"):
            from .errors import DataError

            raise DataError(f"the report is written as HTML: give a .html name, not {html_path.name!r}")
        md_path = html_path.with_suffix(".md")
        fig_dir = html_path.with_name(html_path.stem + "_figures")
        written = [write_text(self.to_html(), html_path)]
        fig_dir.mkdir(exist_ok=True)
        for sec in self.sections:
            for block in sec.blocks:
                if block[0] == "figure":
                    with atomic_path(fig_dir / block[1]) as tmp:
                        tmp.write_bytes(block[2])
                    written.append(fig_dir / block[1])
        written.append(write_text(self.to_markdown(fig_dir.name), md_path))
        return written


def _png(draw, size=(10, 4.6)) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: no global state

    fig = Figure(figsize=size)
    draw(fig.subplots())
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})  # no URL, even inside the PNG
    return buf.getvalue()


def _off(pct: float) -> str:
    """How far a total is from what happened, its number written as the tables write it."""
    if not np.isfinite(pct):
        return "of unknown distance from"
    return f"{_fmt(abs(pct))}% {'below' if pct < 0 else 'above'}"


def fitted_behind(result) -> dict[str, str]:
    """The models behind each model candidate whose name does not say them (such as "Chosen by
    validation"): {candidate: "Pareto/NBD + Gamma-Gamma with frequency"}, several pairs joined by "; "
    when the cut-offs differ."""
    pairs: dict[str, list[str]] = {}
    for (_, label), (purchase, spend) in getattr(result, "fits", {}).items():
        if result.roles.get(label) == "formula":
            continue
        pair = purchase.label + (f" + {spend.label}" if spend is not None and spend is not purchase else "")
        if purchase.label not in label:
            pairs.setdefault(label, [])
            if pair not in pairs[label]:
                pairs[label].append(pair)
    return {label: "; ".join(found) for label, found in pairs.items()}


def conclusions(result, target: str = "purchases") -> list[str]:
    """Plain-language verdicts, one per horizon, generated from a backtest's numbers: which forecast to
    trust (lowest RMSE), how far its total is off, by how much it beats the next model and the best
    formula, and where a formula wins a metric (MAE) only by forecasting too little."""
    ranking = result.summary(target=target, by="rmse")

    def _is_model(label: str) -> bool:  # a probabilistic model's candidate, as opposed to a formula
        return result.roles.get(label) != "formula"

    level = level_text(result.interval)
    behind = fitted_behind(result)

    def named(label: str) -> str:  # a candidate's name, with the models behind it when the name hides them
        return f"{label} ({behind[label]})" if label in behind else label

    lines = []
    for horizon in result.horizons:
        part = ranking[ranking["horizon"] == horizon]
        if part.empty:
            continue
        best = part.iloc[0]
        formulas = part[~part["model"].map(_is_model)]
        models = part[part["model"].map(_is_model)]
        agg = best.get("aggregate_error_pct", np.nan)
        line = (f"Over {horizon}, trust {named(best['model'])} for {target}: it has the lowest RMSE ({_fmt(best['rmse'])}) "
                f"and its forecast total is {_off(agg)} what happened.")
        if not _is_model(best["model"]):
            line = (f"Over {horizon}, the formula {best['model']} has the lowest RMSE for {target} "
                    f"({_fmt(best['rmse'])}; its total is {_off(agg)} what happened): " + (
                        "on this data the models did not earn their place." if len(models) else
                        "no model was scored, so the formulas were compared only with each other"
                        + (f" ({len(result.failures)} model fit{'s' if len(result.failures) != 1 else ''} failed: "
                           "see the failures)." if len(result.failures) else ".")))
        if _is_model(best["model"]) and len(models) > 1:
            second = models.iloc[1]
            gap = max(second["rmse"] / best["rmse"] - 1, 0.0)  # (the ranking puts it second: never lower)
            line += (f" The next model, {named(second['model'])}, has RMSE {_fmt(second['rmse'])} ({gap:.1%} higher"
                     + (": as good, for practical purposes)." if gap < 0.01 else ")."))
        if len(formulas) and _is_model(best["model"]):
            f = formulas.iloc[0]
            line += (f" The best formula, {f['model']}, has RMSE {_fmt(f['rmse'])} and a total "
                     f"{_off(f.get('aggregate_error_pct', np.nan))} what happened.")
        if "mae" in part:
            mae_best = part.loc[part["mae"].idxmin()]
            if (mae_best["model"] != best["model"] and not _is_model(mae_best["model"])
                    and mae_best.get("aggregate_error_pct", 0) < -30):
                line += (f" Among the formulas, {mae_best['model']} has a lower mean absolute error "
                         f"({_fmt(mae_best['mae'])} vs {_fmt(best['mae'])}) only because its total is "
                         f"{_off(mae_best['aggregate_error_pct'])} what happened: near zero for customers who "
                         "mostly buy nothing.")
        if "pit_coverage" in part and np.isfinite(best.get("pit_coverage", np.nan)):
            well = abs(best["pit_coverage"] - result.interval) <= 0.05
            line += (f" {best['model']}'s {level} predictive intervals are {'well' if well else 'poorly'} "
                     f"calibrated (randomised PIT coverage {_fmt(100 * best['pit_coverage'])}%; plain coverage "
                     f"{_fmt(100 * best['coverage'])}%, higher because counts are discrete).")
        lines.append(line)
    return lines


def _overview(summary: pd.DataFrame, log) -> pd.DataFrame:
    rows = [("customers", f"{len(summary):,}")]
    if log is not None:
        from .data.transactions import TransactionLog, read_transactions

        if not isinstance(log, TransactionLog):
            log = read_transactions(log)
        rows += [("transactions (input rows)", f"{log.n_rows:,}"), ("purchase days", f"{log.n_purchases:,}"),
                 ("period", f"{log.first_date} to {log.last_date}")]
    unit = summary.attrs.get("time_unit")
    rows.append(("repeat buyers", f"{(summary['frequency'] > 0).mean():.1%}"))
    rows.append(("mean repeat purchases", f"{summary['frequency'].mean():.3g}"))
    rows.append((f"median age T ({unit or 'units'})", f"{summary['T'].median():.3g}"))
    if "monetary_value" in summary:
        m = summary.loc[summary["frequency"] > 0, "monetary_value"]
        if len(m):
            q = np.quantile(m, [0.1, 0.5, 0.9])
            rows.append(("spend per repeat purchase: mean", f"{m.mean():,.2f}"))
            rows.append(("... 10th / 50th / 90th percentile", f"{q[0]:,.2f} / {q[1]:,.2f} / {q[2]:,.2f}"))
    return pd.DataFrame(rows, columns=["", "value"])


def pseudonyms(ids: pd.Index, key: bytes) -> pd.Index:
    """Customer ids replaced by pseudonyms ("c-" and 10 hex digits of an HMAC-SHA256 of the id under
    ``key``): the same customer gets the same pseudonym within one report, and without the key nobody can
    tell which customer it is."""
    import hashlib
    import hmac

    return pd.Index([f"c-{hmac.new(key, str(i).encode(), hashlib.sha256).hexdigest()[:10]}" for i in ids],
                    name="customer (pseudonym)")


def _money(value: float, currency: str | None) -> str:
    """An amount as the tables show it, with the currency when known."""
    return _fmt(value) + (f" {currency}" if currency else "")


def _words(column: str) -> str:
    """A forecast column as a sentence names it: ``value_1y`` is "value over 1 year", ``expected_purchases_26W``
    "expected purchases over 26 weeks"."""
    found = re.fullmatch(r"(value|expected_purchases)_([0-9.]+[A-Za-z]+)", column)
    if not found:
        return column
    return f"{found.group(1).replace('_', ' ')} over {horizon_words(found.group(2))}"


def _count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless one: "1 origin", "3 origins"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _the_answer(sec: Section, value_table: pd.DataFrame, at_risk: pd.DataFrame | None, first: str,
                currency: str | None) -> None:
    """Active customers, the value's concentration (with its Lorenz curve) and the value at stake."""
    from . import plots
    from .segments import value_concentration

    n, active = len(value_table), float(value_table["p_alive"].sum())
    shares = value_concentration(value_table[first])
    text = (f"Of the {n:,} customers, {active:,.0f} are expected to be active (the sum of their P(alive), "
            f"{active / n:.0%}). The {' and '.join(shares.index)} of customers by {_words(first)} hold "
            f"{' and '.join(f'{v:.0%}' for v in shares)} of it.")
    if at_risk is not None:
        stake = float(at_risk[at_risk.attrs["at_stake"]].sum())
        text += (f" {len(at_risk):,} valuable customers are at risk (listed under At risk): "
                 + (f"{_money(stake, currency)} of value at stake." if first.startswith("value_")
                    else f"{_fmt(stake)} expected purchases at stake."))
    sec.text(text)
    sec.figure("value_concentration.png", _png(lambda ax: plots.plot_lorenz(value_table[first], ax=ax), size=(6, 4.6)),
               f"Concentration: the share of the total {_words(first)} held by the customers highest in it")


def _two_validations(selection, backtest) -> str:
    """How the Model choice and this backtest's verdicts relate, so that two different winners do not read
    as a contradiction: the values use the pair chosen on all the data; the backtest judges every model
    once, at an earlier cut-off, where the choice made then is one candidate among them."""
    pair = selection.purchase_model_.label + (f" + {selection.spend_model_.label}" if selection.spend_model_ else "")
    what = "customer values" if selection.spend_model_ is not None else "purchase forecasts"
    text = (f"The {what} come from {pair}, chosen by rolling origins on all the data (Model choice). "
            "The verdicts above judge every model once, on the holdout after an earlier cut-off, so their winner "
            "may differ.")
    behind = fitted_behind(backtest)
    ranking = backtest.summary(target=backtest.targets[0], by="rmse")
    for label, models in behind.items():
        ranks = [f"{int(r['rank'])} of {int((ranking['horizon'] == r['horizon']).sum())} at {r['horizon']}"
                 for _, r in ranking[ranking["model"] == label].iterrows()]
        if ranks:
            text += (f" There, the choice made from the data before the cut-off, {label} ({models}), ranked "
                     f"{', '.join(ranks)} by RMSE of {backtest.targets[0]}.")
    return text


def _headline(totals: pd.DataFrame, unit: str, annual_discount_rate: float, currency: str | None) -> str:
    """The answer in one sentence, from the totals' first horizon: what the customers are worth (or, without
    amounts, how much they will buy), with its interval."""
    h, row = totals.index[0], totals.iloc[0]
    what = "value" if "value" in totals else "purchases"
    lower, upper = (row[c] for c in totals.columns if c.startswith((f"{what} lower ", f"{what} upper ")))
    span = f"{_fmt(lower)} to {_fmt(upper)}"
    period = horizon_words(h, unit)
    period = period[2:] if period.startswith("1 ") else period  # ("the next year", "the next 2 years")
    if what == "value":
        return (f"The {int(row['customers']):,} customers are expected to be worth {_money(row['value'], currency)} "
                f"over the next {period} (90% interval {span}), discounted at "
                f"{annual_discount_rate:.0%} a year.")
    return (f"The {int(row['customers']):,} customers are expected to make {_fmt(row['purchases'])} purchases "
            f"over the next {period} (90% interval {span}).")


def _model_choice(sec: Section, selection, summary: pd.DataFrame | None, horizons, annual_discount_rate: float,
                  currency: str | None, answer) -> None:
    """The section the report opens with: which models, why, what they forecast in total (and ``answer``,
    called with the section: what the customers are worth), then the evidence."""
    pair = selection.purchase_model_.label + (
        f" for purchases and {selection.spend_model_.label} for spend per purchase"
        if selection.spend_model_ is not None else " for purchases (the log has no amounts: no spend or value)")
    totals = None if summary is None else selection.totals(summary, horizons,
                                                           annual_discount_rate=annual_discount_rate)
    if totals is not None:
        sec.text(_headline(totals, selection.purchase_model_.time_unit_, annual_discount_rate, currency))
    sec.text(f"The forecasts come from {pair}, chosen by validation. {selection.reason_}")
    if totals is not None:
        sec.table(totals, f"Totals over the {len(summary):,} customers: expected purchases"
                  + (f" and value ({currency + ', ' if currency else ''}discounted at {annual_discount_rate:.0%} a "
                     "year)" if "value" in totals else "")
                  + ", with 90% intervals")
        first = totals.iloc[0]
        sec.text("The intervals are calibrated on the chosen models' own errors: at each rolling origin inside the "
                 "window they forecast the holdout's total, and the spread of those errors (on a log scale, with "
                 f"Student's t for {_count(int(first['origins']), 'origin')}"
                 + (f"; {int(first['value origins'])} for the value, where the spend model could be fitted"
                    if "value origins" in first and first["value origins"] != first["origins"] else "")
                 + ") sets the interval's width. They include what "
                 "parameter uncertainty leaves out, such as purchase rates that drift after acquisition. The origins' "
                 f"holdouts were {selection.horizon_days_:g} days; a longer horizon's interval is widened with the "
                 "square root of its length, as accumulated errors grow.")
    answer(sec)
    ranking = selection.ranking_
    for role in ("purchase", "spend"):
        table = ranking[ranking["role"] == role]
        failed = list(table.index[table["failed"]]) if "failed" in table else []
        table = table.drop(index=failed, columns=["role", "failed"], errors="ignore").dropna(axis=1, how="all")
        if not table.empty:
            sec.table(table, f"The {role} models compared (means over the rolling origins; the first row was chosen, "
                                     "the simpler of any tied)")
        if failed:
            sec.text(f"Left out of the {role} models' ranking: {', '.join(failed)}, which could not be fitted at "
                     "every origin (the selection's evidence has each fit's error).")
    sec.table(selection.origin_totals_.dropna(axis=1, how="all"),
              "The chosen models' total forecast of each origin's holdout, and the actual total")


def build_report(summary: pd.DataFrame | None = None, *, backtest=None, models: dict[str, Any] | None = None,
                 value_table: pd.DataFrame | None = None, log=None, shrinkage: dict[str, pd.DataFrame] | None = None,
                 selection=None, horizons: Sequence[Any] = ("1y", "2y", "3y"), annual_discount_rate: float = 0.10,
                 segment_columns: Sequence[str] = (),
                 at_risk: pd.DataFrame | None = None, currency: str | None = None, show_ids: bool = False,
                 title: str = "Customer lifetime value: which forecast to trust", top_n: int = 20) -> Report:
    """Assemble the report from what was computed (any argument but ``summary`` may be left out).

    Parameters
    ----------
    summary
        The customer summary the models were fitted on (data overview; left out, the section is too).
    selection
        A :class:`clvmodels.SelectedModel`: the report opens with the answer in one sentence, the choice, its
        evidence and the customers' totals at ``horizons`` (value discounted at ``annual_discount_rate``) with
        calibrated intervals.
    segment_columns
        Columns of ``value_table`` (customer attributes such as a channel) to split the value by, after the
        value tiers, lifecycle stages and RFM segments.
    at_risk
        From :func:`clvmodels.segments.at_risk`: its value at stake in the opening, its list under At risk.
    currency
        The amounts' currency, stated beside every amount in a sentence and in the totals' caption.
    show_ids
        Show customer ids in the tables of customers (top customers, at risk). By default they are
        replaced by :func:`pseudonyms` under a key drawn for this report and kept nowhere, so that the
        report can be mailed; every other number is an aggregate.
    backtest
        A :class:`clvmodels.BacktestResult`: metrics, ranking per horizon, every backtest figure, and the
        generated conclusion.
    models
        Fitted models by display name: maximum-likelihood models show their parameter table and fit
        statistics, Bayesian models their posterior diagnostics.
    value_table
        From :func:`clvmodels.value_table.value_table`: top customers and segment summaries.
    log
        The transaction log (a :class:`clvmodels.TransactionLog`, or anything :func:`clvmodels.read_transactions`
        reads with its default column names), for transaction counts and the period.
    shrinkage
        Per Bayesian hierarchical model name, its :meth:`shrinkage` table: shown with forest plots.
    """
    from . import plots

    key = os.urandom(32)

    def customers(table: pd.DataFrame) -> pd.DataFrame:  # (a table of customers, as the reader may see it)
        return table if show_ids else table.set_axis(pseudonyms(table.index, key), axis=0)

    sections: dict[str, Section] = {t: Section(t) for t in SECTION_TITLES}
    value_cols = forecast_cols = []
    if value_table is not None:  # (ranked by the first horizon's value; without amounts, its expected purchases)
        value_cols = [c for c in value_table.columns if re.fullmatch(r"value_[0-9.]+[A-Za-z]+", c)]
        forecast_cols = value_cols or [c for c in value_table.columns
                                       if re.fullmatch(r"expected_purchases_[0-9.]+[A-Za-z]+", c)]

    def answer(sec: Section) -> None:
        if value_table is not None:
            _the_answer(sec, value_table, at_risk, forecast_cols[0], currency)

    if selection is not None:
        _model_choice(sections["Model choice"], selection, summary, horizons, annual_discount_rate, currency, answer)
    else:
        answer(sections["Top customers"])
    if backtest is not None:
        sec = sections["Conclusion"]
        for target in backtest.targets:
            for line in conclusions(backtest, target):
                sec.text(line)
        if "spend" not in backtest.targets:
            sec.text("The log has no amounts, so only purchases were scored: no spend or value forecasts.")
        sec.text("These verdicts come from the holdout backtest below: every model and formula was fitted on the "
                 "data before the cut-off and scored on what customers did after it."
                 + (" The fitted models further down use all the data"
                    + (f", and so do the customer {'values' if value_cols else 'forecasts'}."
                       if value_table is not None else ".")
                    if models or value_table is not None else ""))
        if selection is not None:
            sec.text(_two_validations(selection, backtest))
        if len(backtest.unavailable):
            sec.text(backtest.not_scored_text())
        if len(backtest.failures):
            n_failed = len(backtest.failures)
            sec.text(f"At the backtest's cut-off, {_count(n_failed, 'candidate')} could not be fitted "
                     f"({'it is' if n_failed == 1 else 'they are'} listed under Backtest).")
    if summary is not None:
        sections["Data overview"].table(_overview(summary, log), "The customer summary")

    for name, model in (models or {}).items():
        bayesian = model.fit_method == "Bayesian"
        sec = sections["Bayesian models" if bayesian else "Fitted models"]
        sec.table(model.estimates(), f"{name}: {model.estimates_caption}")
        sec.text(f"{name}: {model.fit_statement()}")
        if bayesian:  # (the posterior's shape per parameter)
            slug = "".join(ch if ch.isalnum() else "_" for ch in name).lower()
            for p in model.param_names:
                sec.figure(f"posterior_{slug}_{p}.png",
                           _png(lambda ax, m=model, p=p: plots.plot_posterior(m, p, ax=ax), size=(10, 3.6)),
                           f"{name}: posterior of {p}" + (" by segment" if model.segments() else ""))

    if backtest is not None:
        sec = sections["Backtest"]
        cut = ", ".join(sorted(backtest.metrics["cutoff"].unique()))
        sec.text(f"Every candidate was fitted on the data up to the cut-off ({cut}) and forecast each customer's "
                 f"{' and '.join(backtest.targets)} over each horizon the log covers after it; the forecasts are scored against "
                 "what those customers then did. Models are ranked by RMSE (an expected-value forecast minimises "
                 f"squared error). Scored: {backtest.scored_text()}." + (
                     f" {backtest.not_scored_text()}" if len(backtest.unavailable) else ""))
        cols = ["horizon", "rank", "model", "rmse", "mae", "aggregate_error_pct", "cumulative_error_pct",
                "spearman", "top_decile_share", "coverage", "pit_coverage"]
        level = level_text(backtest.interval)
        for target in backtest.targets:
            ranking = backtest.summary(target=target)
            shown = ranking[[c for c in cols if c in ranking.columns]]
            shown = shown.assign(**{c: 100 * shown[c] for c in ("coverage", "pit_coverage") if c in shown}).rename(
                columns={"coverage": f"{level} interval coverage %", "pit_coverage": f"{level} PIT coverage %"})
            sec.table(shown, f"Ranking for {target} per horizon")
        behind = fitted_behind(backtest)
        if behind:
            sec.table(pd.DataFrame({"candidate": list(behind), "models fitted": list(behind.values())}),
                      "The models behind candidates whose name does not say them")
        if len(backtest.unavailable):
            sec.table(backtest.unavailable, "Horizons the data do not cover (not extrapolated)")
        if len(backtest.failures):
            sec.table(backtest.failures, "Candidates that could not be fitted")
        figures = [("frequency_holdout.png", lambda ax: plots.plot_frequency_holdout(backtest, ax=ax),
                    "Mean holdout purchases by calibration frequency: actual and each model"),
                   ("error_by_horizon.png", lambda ax: plots.plot_error_by_horizon(backtest, ax=ax),
                    "Aggregate error of total purchases by horizon"),
                   ("decile_lift.png", lambda ax: plots.plot_decile_lift(backtest, ax=ax),
                    f"Decile lift: mean actual {backtest.targets[-1]} by decile of the best model's forecast")]
        if not backtest.tracking.empty:
            figures += [("tracking_cumulative.png", lambda ax: plots.plot_tracking(backtest, ax=ax),
                         "Cumulative repeat purchases: actual and forecast"),
                        ("tracking_incremental.png", lambda ax: plots.plot_tracking(backtest, cumulative=False, ax=ax),
                         "Weekly repeat purchases: actual and forecast")]
        for fname, draw, caption in figures:
            sec.figure(fname, _png(draw), caption)

    for name, table in (shrinkage or {}).items():
        sec = sections["Bayesian models"]
        params = list(dict.fromkeys(table["parameter"]))
        sec.table(table, f"{name}: each segment fitted alone (MLE) against the hierarchical posterior")
        for p in params:
            slug = "".join(ch if ch.isalnum() else "_" for ch in f"{name}_{p}").lower()
            sec.figure(f"forest_{slug}.png", _png(lambda ax, p=p: plots.plot_forest(table, p, ax=ax), size=(10, 5)),
                       f"{name}: partial pooling of {p} across segments")

    if value_table is not None:
        first = forecast_cols[0]
        stake = "Value at stake: their value" if value_cols else "Purchases at stake: their expected purchases"
        show = ["frequency", "monetary_value", "p_alive", *forecast_cols, "value_tier", "purchase_tier", "lifecycle_stage",
                "rfm_segment"]
        top = value_table.sort_values(first, ascending=False).head(top_n)
        sections["Top customers"].table(customers(top[[c for c in show if c in top.columns]]),
                                        f"The {top_n} customers with the highest {_words(first)}"
                                        + ("" if show_ids else " (ids replaced by pseudonyms)"))
        if at_risk is not None:
            sec = sections["At risk"]
            rule = at_risk.attrs
            silent = (f", or who have not bought for more than "
                      f"{horizon_words(rule['silent_for'], value_table.attrs.get('time_unit'))}"
                      if rule.get("silent_for") else "")
            sec.text(f"Valuable customers who may be slipping away. Among the customers not lost yet (P(alive) at "
                     f"least {rule['p_alive_above']:g}, and not lost by the lifecycle rule), those in the top "
                     f"{rule['top_share']:.0%} by {_words(rule['value'])} if still active (divided by P(alive): not "
                     f"the tiers' ranking) whose P(alive) is below {rule['p_alive_below']:g}{silent}. {stake} if "
                     "active times the probability they are gone, 1 - P(alive). Contact them first.")
            risk_cols = ["frequency", "p_alive", first, rule["if_active"], rule["at_stake"], "lifecycle_stage", "reason"]
            sec.table(customers(at_risk.head(top_n)[[c for c in risk_cols if c in at_risk.columns]]),
                      f"The {min(top_n, len(at_risk))} customers with the most {'value' if value_cols else 'purchases'} "
                      f"at stake, of {len(at_risk):,}"
                      + ("" if show_ids else " (ids replaced by pseudonyms: the at-risk file has the ids)"))
        total = value_table[first].sum()
        sec = sections["Segments"]
        shown_total = _money(total, currency) if value_cols else _fmt(total)
        sec.text(f"Total {_words(first)} over all customers: {shown_total}. The tables split it by the segmentations "
                 f"the business uses: {'value' if value_cols else 'purchase'} tiers by quantile, lifecycle stage from "
                 "P(alive) and the time since the last purchase, and named RFM segments. A customer's stage is the lower of what P(alive) and the time "
                 "since their last purchase say: a model may keep P(alive) high for customers who never came back "
                 "(BG/NBD gives them 1), so the time since their purchase moves them down the stages too.")
        for col in ("value_tier", "purchase_tier", "lifecycle_stage", "rfm_segment", "quadrant", *segment_columns):
            if col in value_table:
                g = value_table.groupby(col, observed=True)
                seg = pd.DataFrame({"customers": g.size(), f"total {first}": g[first].sum(),
                                    f"share of {first}": (g[first].sum() / total).map(lambda v: f"{v:.1%}"),
                                    "mean P(alive)": g["p_alive"].mean()})
                sec.table(seg, f"By {col.replace('_', ' ').replace('rfm', 'RFM')}")
    model = selection.purchase_model_ if selection is not None else None
    if model is not None and summary is not None and not getattr(model, "has_covariates", False):
        sec = sections["Purchase patterns"]
        age = float(summary["T"].max())
        unit = getattr(model, "time_unit_", "")
        sec.text(f"What {model.label} makes of a customer's history, for a customer of the oldest age here "
                 f"({age:.0f} {UNIT_WORDS.get(unit, ('', unit))[1]}): the more purchases and the longer since the "
                 "last one, the less likely the customer is still active; a customer who bought often and recently is expected to buy most.")
        sec.figure("p_alive_by_frequency_recency.png",
                   _png(lambda ax: plots.plot_frequency_recency(model, age, ax=ax)),
                   "P(alive) by repeat purchases and recency")
        sec.figure("purchases_by_frequency_recency.png",
                   _png(lambda ax: plots.plot_frequency_recency(model, age, horizon="1y", ax=ax)),
                   "Expected purchases over the next year by repeat purchases and recency")
    elif model is not None and summary is not None:
        sections["Purchase patterns"].text(
            f"The chosen purchase model, {model.label}, gives each customer parameters by their covariates, so no "
            "one chart of P(alive) by repeat purchases and recency holds for every customer; the tables under "
            "Segments give P(alive) by group.")
    if value_table is not None:
        sections["Purchase patterns"].figure(
            "value_distribution.png", _png(lambda ax: plots.plot_value_distribution(value_table[forecast_cols[0]], ax=ax)),
            f"How {_words(forecast_cols[0])} is spread over the customers")
    unit = (summary.attrs.get("time_unit") if summary is not None else None) or (
        value_table.attrs.get("time_unit") if value_table is not None else None)
    sections["Glossary"].table(_glossary(unit), "The terms, columns and labels of this report")
    return Report(title, [s for s in sections.values() if s.blocks])


def _glossary(time_unit: str | None = None) -> pd.DataFrame:
    """Every term a reader meets in the report: the value table's columns, the metrics, the lifecycle
    stages and RFM segments with their rules."""
    from .segments import LIFECYCLE_STAGES, RFM_SEGMENTS
    from .value_table import COLUMN_DICTIONARY

    unit_words = {"unit": UNIT_WORDS.get(time_unit, ("", "the summary's time unit"))[1], "money": "money"}
    unit_words["log unit"] = f"log {unit_words['unit']}"
    rows = [(name, meaning + (f" ({unit_words.get(unit, unit)})" if unit else ""))
            for name, (meaning, unit) in COLUMN_DICTIONARY.items()]
    rows += [
        ("RMSE", "root mean squared error of the per-customer forecasts against what happened"),
        ("MAE", "mean absolute error of the per-customer forecasts"),
        ("total error %", "100 x (forecast total - actual total) / actual total"),
        ("log score", "mean log probability a model gave each customer's actual holdout purchases (higher is "
                      "better)"),
        ("rolling origin", "a cut-off inside the data: models fitted before it forecast the weeks after it"),
        ("interval", "a range that holds the quantity with the stated probability, its level"),
        ("FM", "in the RFM segments' rules: the mean of the F and M scores, rounded half up"),
        ("cumulative error %", "the total error % of the tracking curve: purchases since each customer's first"),
        ("WAPE", "sum of absolute errors / actual total"),
        ("Spearman", "rank correlation of the forecasts and what happened (1: the same order)"),
        ("top-decile share", "share of the actual total bought by the 10% of customers forecast highest"),
        ("interval coverage %", "customers whose actual count fell inside their predictive interval"),
        ("PIT coverage %", "the same, scored by the randomised probability integral transform: equal to the level "
                           "when the forecasts are calibrated (counts are discrete, so plain coverage runs higher)"),
        ("rank", "a candidate's place by the table's ranking metric (1: the best)"),
        ("origins won", "rolling origins at which a candidate scored best (ties count for each)"),
        ("origins fitted", "rolling origins at which a candidate could be fitted and scored"),
        ("origin", "the cut-off of a rolling origin"),
        ("mean |total error %|", "mean over the origins of |total error %| (no cancelling of signs)"),
        ("spend MAE, spend RMSE", "errors of the buyers' holdout spend: purchases x expected spend per purchase"),
        ("purchases forecast, purchases actual, spend forecast, spend actual",
         "a rolling origin's holdout total over the customers: as the chosen models forecast it, and as it happened"),
        ("R-hat, ESS, HDI", "sampling diagnostics: R-hat near 1 and a large effective sample size (ESS) mean the "
                            "chains agree; HDI is the highest-density interval of the posterior"),
        ("pseudonym", "c- and a code standing for a customer id, the same within one report"),
    ]
    rows += [(f"lifecycle: {name}", rule) for name, rule in LIFECYCLE_STAGES]
    rows += [(f"RFM segment: {name}", rule) for name, rule in RFM_SEGMENTS]
    return pd.DataFrame(rows, columns=["term", "meaning"])
