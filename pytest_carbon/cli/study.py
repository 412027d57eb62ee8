"""``pytest-carbon study REPORT.json...``: the study (models x prompt strategies) of one or
more reports. Several reports (shards, CI machines) are merged first, as ``pytest-carbon
merge`` does; every figure comes from the records, so the merged study is the run's."""

from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon study",
        description="Rank (model, prompt strategy) cells of prompt-suite reports by "
        "frugality (geometric mean of per-task energy ratios to the reference, with a 95% "
        "interval over tasks), with pass rates and head-to-head comparisons.",
    )
    parser.add_argument("reports", metavar="REPORT.json", nargs="+", help="JSON report(s)")
    parser.add_argument("--json", metavar="OUT.json", help="also write the study as JSON here")
    parser.add_argument(
        "--markdown", metavar="OUT.md", help="also write the leaderboard as Markdown here"
    )
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from pytest_carbon.results.io import ReportError, load_report
    from pytest_carbon.results.merge import merge_reports
    from pytest_carbon.study.render import markdown_lines, study_lines
    from pytest_carbon.study.stats import compute_study

    try:
        reports = [load_report(p) for p in args.reports]
        report = reports[0] if len(reports) == 1 else merge_reports(reports)
    except ReportError as exc:
        print(f"pytest-carbon study: error: {exc}", file=sys.stderr)
        return 2
    records = report.get("tests") or []
    if len(reports) == 1:
        # One report is one machine: its records carry no machine_id until merged.
        mid = (report.get("machine") or {}).get("machine_id")
        records = [dict(r, machine_id=r.get("machine_id") or mid) for r in records]
    study = compute_study(records)
    if not study.cells:
        print(
            "pytest-carbon study: no prompt-suite records in "
            + ", ".join(args.reports)
            + " (run a prompt suite with --carbon --carbon-json=REPORT.json)",
            file=sys.stderr,
        )
        return 1
    for line in study_lines(study, limit=None):
        print(line)
    from pytest_carbon.results.atomic import write_text_atomic

    if args.json:
        write_text_atomic(args.json, json.dumps(study.to_json(), indent=1, sort_keys=True) + "\n")
    if args.markdown:
        write_text_atomic(args.markdown, "\n".join(["## Study", "", *markdown_lines(study)]) + "\n")
    return 0
