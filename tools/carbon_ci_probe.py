"""A pytest plugin for tools/check_carbon_suite.py: writes what pytest itself saw.

Loaded with ``-p carbon_ci_probe`` (this folder on PYTHONPATH). Writes JSON to the path in
``CARBON_CI_PROBE``: the outcome counts of pytest's terminal summary, and the node id of
every call phase that ran (once per attempt: a rerun shows up twice).
"""

from __future__ import annotations

import json
import os
from typing import Any

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error", "rerun")

_called: list[str] = []
_counts: dict[str, int] = {}


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call":
        _called.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    stats = terminalreporter.stats
    _counts.update({k: len(stats.get(k, [])) for k in OUTCOMES})


def pytest_unconfigure(config: Any) -> None:
    path = os.environ.get("CARBON_CI_PROBE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"counts": _counts, "called": _called}, f)
