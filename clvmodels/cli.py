"""The ``clvmodels`` command line: parses arguments, calls the library, writes files.

Exit status: 0 on success; 2 on bad input (one line on stderr, no traceback); 1 on an internal failure
(set CLVMODELS_DEBUG=1 to see the traceback). Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import ClvError, DataError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message} (see --help)")


class _UsageError(Exception):
    pass


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _cmd_summarize(args: argparse.Namespace) -> int:
    from .data import calibration_holdout, read_transactions, rfm_summary
    from .files import table_format, write_table
    from .progress import progress

    table_format(args.output)  # refuse a bad output name before any work
    with progress(3, "summarize", enabled=not args.quiet) as bar:
        bar.set_postfix_str("reading")
        log = read_transactions(args.transactions, customer=args.customer, date=args.date, amount=args.amount,
                                date_format=args.date_format, returns=args.returns)
        bar.update()
        bar.set_postfix_str("summarising")
        if args.holdout_end or args.calibration_end:
            if not args.calibration_end:
                raise DataError("--holdout-end needs --calibration-end")
            summary = calibration_holdout(log, args.calibration_end, args.holdout_end, time_unit=args.time_unit)
        else:
            summary = rfm_summary(log, observation_end=args.end, time_unit=args.time_unit)
        bar.update()
        bar.set_postfix_str("writing")
        write_table(summary, args.output)
        bar.update()
    _say(args, f"{log!r}\nwrote {args.output} ({len(summary):,} customers, time unit {args.time_unit})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .data import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, calibration_holdout, load_cdnow, read_transactions
    from .files import write_table

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    log = read_transactions(load_cdnow("sample"), amount="amount")
    summary = calibration_holdout(log, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, time_unit="W")
    path = write_table(summary, out / "cdnow_calibration_holdout.csv")
    repeat = (summary["frequency"] > 0).mean()
    _say(args, f"CDNOW sample: {log!r}")
    _say(args, f"calibration to {CDNOW_CALIBRATION_END}: {len(summary):,} customers, "
               f"{summary['frequency'].sum():,} repeat purchases, {repeat:.1%} repeat buyers; "
               f"holdout to {CDNOW_HOLDOUT_END}: {summary['holdout_frequency'].sum():,} purchases")
    _say(args, "wrote:")
    print(path)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="clvmodels", description="Probabilistic customer-lifetime-value models.")
    parser.add_argument("--version", action="version", version=f"clvmodels {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or messages on stderr")

    p = sub.add_parser("summarize", parents=[common], help="transaction log -> per-customer summary",
                       description="Summarise a transaction log (CSV or Parquet) per customer: frequency, "
                                   "recency, T, monetary_value (and holdout columns with --calibration-end).")
    p.add_argument("transactions", help="CSV or Parquet file (or a quoted glob of files)")
    p.add_argument("--customer", required=True, help="customer id column")
    p.add_argument("--date", required=True, help="date column")
    p.add_argument("--amount", help="amount column (optional)")
    p.add_argument("--date-format", help="strptime format for text/integer dates, e.g. %%Y%%m%%d")
    p.add_argument("--end", help="observation end date (default: last purchase day)")
    p.add_argument("--calibration-end", help="split at this date: calibration summary + holdout columns")
    p.add_argument("--holdout-end", help="end of the holdout (default: last purchase day)")
    p.add_argument("--time-unit", default="W", choices=["D", "W", "M"], help="time unit (default W)")
    p.add_argument("--returns", default="error", choices=["error", "drop", "net"],
                   help="negative amounts: refuse (default), drop, or net against same-day purchases")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.set_defaults(func=_cmd_summarize)

    p = sub.add_parser("demo", parents=[common], help="the whole job on the bundled CDNOW data, offline")
    p.add_argument("-o", "--output", default="clvmodels-demo", help="output folder (default clvmodels-demo)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        args = _build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (DataError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"clvmodels: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clvmodels: interrupted", file=sys.stderr)
        return 130
    except (ClvError, Exception) as exc:  # noqa: BLE001 - the last line of defence of a CLI
        if os.environ.get("CLVMODELS_DEBUG"):
            traceback.print_exc()
        print(f"clvmodels: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(set CLVMODELS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"clvmodels: warning: {_one_line(message)}", file=sys.stderr)


def _one_line(exc: BaseException | Warning | str) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
