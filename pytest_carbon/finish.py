"""End of a run on the controller: build the report, compare with a baseline, write files."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_carbon.session import CarbonSession


def after_runtestloop(cs: CarbonSession, session: pytest.Session) -> None:
    """Compare with the stored baseline and save the run (the plugin calls this only
    when :meth:`CarbonSession.baseline_wanted`). A regression fails the session through
    ``session.testsfailed``, as pytest-cov does, not by raising."""
    s = cs.settings
    from pytest_carbon.compare.baseline import apply_to_session
    from pytest_carbon.results.io import build_report

    cs.finished_unix_s = cs.finished_unix_s or time.time()
    complete, why = cs.completeness(session, None)
    report = build_report(cs, complete=complete, incomplete_reason=why)
    lines: list[str] = []
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    width = session.config.get_terminal_writer().fullwidth if tr else 100
    comparison = apply_to_session(
        s,
        report,
        lines.append,
        verbose=session.config.option.verbose > 0,
        width=max(min(width, 140), 80),
        meter=lambda: cs.meter,
    )
    cs.comparison_lines = lines
    cs.comparison = comparison
    failures = len(getattr(comparison, "failures", []) or [])
    if failures:
        session.testsfailed += failures


def write_reports(cs: CarbonSession, session: pytest.Session, exitstatus: int) -> None:
    """Write JSON, CSV, HTML and Markdown reports. An interrupted run writes what it
    measured, with ``complete: false``."""
    s = cs.settings
    wanted = [
        (k, p)
        for k, p in (
            ("JSON", s.carbon_json),
            ("CSV", s.carbon_csv),
            ("HTML", s.carbon_html),
            ("Markdown", s.carbon_markdown),
        )
        if p
    ]
    if not wanted:
        return
    import time

    from pytest_carbon.results.io import build_report

    cs.finished_unix_s = time.time()
    report = build_report(cs, complete=cs.complete, incomplete_reason=cs.incomplete_reason)
    report = _enrich(cs, report)
    comparison = getattr(cs, "comparison", None)
    if comparison is not None and hasattr(comparison, "to_json"):
        report["comparison"] = comparison.to_json()  # an optional key: readers may skip it
    written: list[tuple[str, str]] = []
    for kind, path in wanted:
        try:
            _write(kind, report, path, comparison)
            written.append((kind, path))
        except Exception as exc:  # one failing writer must not lose the others
            cs.warn(f"could not write the {kind} report to {path}: {type(exc).__name__}: {exc}")
    cs.written = written


def _enrich(cs: CarbonSession, report: dict[str, Any]) -> dict[str, Any]:
    results = cs.config.hook.pytest_carbon_json(config=cs.config, report=report)
    for r in results or []:
        if isinstance(r, dict):
            report = r
    return report


def _write(kind: str, report: dict[str, Any], path: str, comparison: Any) -> None:
    if kind == "JSON":
        from pytest_carbon.results.io import write_json

        write_json(report, path)
    elif kind == "CSV":
        from pytest_carbon.report.csvreport import write_csv

        write_csv(report, path)
    elif kind == "HTML":
        from pytest_carbon.report.html import write_html

        write_html(report, path, comparison=comparison)
    else:
        import os

        from pytest_carbon.report.markdown import render_markdown
        from pytest_carbon.results.atomic import append_text, write_text_atomic

        text = render_markdown(report, comparison)
        # GitHub collects step summaries by appending to this file; never replace it.
        if os.environ.get("GITHUB_STEP_SUMMARY") and os.path.abspath(path) == os.path.abspath(
            os.environ["GITHUB_STEP_SUMMARY"]
        ):
            append_text(path, text)
        else:
            write_text_atomic(path, text)
