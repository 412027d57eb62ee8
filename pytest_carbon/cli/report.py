"""``pytest-carbon report IN.json``: render a saved JSON report as HTML, CSV or Markdown."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon report",
        description="Render a pytest-carbon JSON report (from --carbon-json) as a "
        "self-contained HTML page, a CSV file or a Markdown summary.",
    )
    parser.add_argument("report", help="the JSON report to render")
    parser.add_argument("--html", metavar="OUT.html", help="write the HTML page here")
    parser.add_argument("--csv", metavar="OUT.csv", help="write the CSV (one row per test)")
    parser.add_argument("--markdown", metavar="OUT.md", help="write the Markdown summary here")
    parser.add_argument(
        "--compare",
        metavar="BASE.json",
        help="a baseline report: the HTML and Markdown show the changes against it",
    )
    return parser


def _missing(what: str, exc: ImportError) -> int:
    print(f"pytest-carbon report: {what} is not available ({exc})", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not (args.html or args.csv or args.markdown):
        parser.error("nothing to write: give --html, --csv and/or --markdown")
    from pytest_carbon.results.io import ReportError, load_report

    try:
        report = load_report(args.report)
        base = load_report(args.compare) if args.compare else None
    except ReportError as exc:
        print(f"pytest-carbon report: {exc}", file=sys.stderr)
        return 2
    comparison: Any = None
    if base is not None:
        try:
            from pytest_carbon.compare.baseline import compare
        except ImportError as exc:
            return _missing("the baseline comparison", exc)
        comparison = compare(base, report)
    written = []
    if args.html:
        from pytest_carbon.report.html import write_html

        written.append(write_html(report, args.html, comparison))
    if args.csv:
        try:
            from pytest_carbon.report.csvreport import write_csv
        except ImportError as exc:
            return _missing("the CSV report", exc)
        written.append(write_csv(report, args.csv))
    if args.markdown:
        try:
            from pytest_carbon.report.markdown import render_markdown
        except ImportError as exc:
            return _missing("the Markdown report", exc)
        from pytest_carbon.results.atomic import write_text_atomic

        text = (
            render_markdown(report, comparison)
            if comparison is not None
            else render_markdown(report)
        )
        written.append(write_text_atomic(args.markdown, text))
    for path in written:
        print(f"written: {path}")
    return 0
