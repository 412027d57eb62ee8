"""``pytest-carbon compare BASE.json CURRENT.json [--fail energy:10%]...``: a CI gate.

Exit status: 0 when no regression fails, 1 when one does, 2 on a usage or file error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from pytest_carbon.compare.judge import FailSpec, compare, parse_fail_spec
from pytest_carbon.compare.storage import Storage
from pytest_carbon.results.io import ReportError, load_report


def _fail_spec(text: str) -> FailSpec:
    try:
        return parse_fail_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon compare",
        description="Compare two pytest-carbon JSON reports test by test. A regression "
        "fails only when it exceeds a --fail threshold and the samples support it "
        "(see docs/ci-regression.md).",
    )
    parser.add_argument("base", metavar="BASE.json", help="the baseline report")
    parser.add_argument("current", metavar="CURRENT.json", help="the report to check")
    parser.add_argument(
        "--fail",
        action="append",
        type=_fail_spec,
        default=[],
        metavar="METRIC:N[%]",
        help="fail on a regression beyond N%% (or N in the metric's unit) of METRIC: "
        "energy, dynamic_energy, duration, gco2e, edp (repeatable)",
    )
    parser.add_argument(
        "--history",
        metavar="DIR",
        help="a storage directory (e.g. .carbon) whose runs of CURRENT's machine give "
        "comparisons their between-run noise; without 3 stored runs, two reports cannot "
        "tell a change from a run that was slower alone, so nothing is a regression",
    )
    parser.add_argument(
        "--test",
        choices=("mann-whitney", "bootstrap"),
        default="mann-whitney",
        help="statistical test for tests with 3+ samples a side (default: mann-whitney)",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write a Markdown summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every test")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        base = load_report(args.base)
        current = load_report(args.current)
    except ReportError as exc:
        print(f"pytest-carbon compare: error: {exc}", file=sys.stderr)
        return 2
    history = None
    if args.history:
        machine_id = str((current.get("machine") or {}).get("machine_id") or "")
        history = Storage(args.history).history(machine_id)
    comparison = compare(base, current, args.fail, history, test=args.test)
    comparison.base_label = args.base
    comparison.current_label = args.current
    if args.json:
        print(json.dumps(comparison.to_json(), indent=1))
    else:
        width = shutil.get_terminal_size((100, 24)).columns
        for line in comparison.render_lines(width=max(80, width), verbose=args.verbose):
            print(line)
    if args.markdown:
        from pytest_carbon.report.markdown import render_markdown
        from pytest_carbon.results.atomic import write_text_atomic

        try:
            write_text_atomic(args.markdown, render_markdown(current, comparison))
        except OSError as exc:
            print(
                f"pytest-carbon compare: error: cannot write {args.markdown}: {exc}",
                file=sys.stderr,
            )
            return 2
    return 1 if comparison.failures else 0
