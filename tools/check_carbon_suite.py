#!/usr/bin/env python3
"""Run a real test suite with and without ``--carbon`` and check that pytest-carbon is a
good citizen: the same exit status, the same outcome counts, and exactly one record per
executed test (a test whose call phase ran; reruns still make one record).

    python tools/check_carbon_suite.py SUITE_DIR [PYTEST_ARGS...]

Runs ``python -m pytest PYTEST_ARGS`` in SUITE_DIR twice. Exit status 0 when every check
holds, 1 otherwise (each failed check is printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run(suite: Path, args: list[str], extra: list[str], probe: Path) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["CARBON_CI_PROBE"] = str(probe)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "carbon_ci_probe", *extra, *args]
    proc = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
    print(f"$ {' '.join(cmd[1:])}\n  -> exit {proc.returncode}: {' '.join(tail)}")
    return proc.returncode, json.loads(probe.read_text())


def check(suite: Path, args: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        plain_rc, plain = run(suite, args, [], t / "plain.json")
        report_path = t / "carbon-report.json"
        carbon_rc, carbon = run(
            suite, args, ["--carbon", f"--carbon-json={report_path}"], t / "carbon.json"
        )
        report = json.loads(report_path.read_text())
    problems = []
    if plain_rc != carbon_rc:
        problems.append(f"exit status {plain_rc} without --carbon, {carbon_rc} with it")
    if plain["counts"] != carbon["counts"]:
        problems.append(f"outcomes differ: {plain['counts']} vs {carbon['counts']} (--carbon)")
    records = Counter(r["nodeid"] for r in report["tests"])
    executed = set(carbon["called"])
    twice = sorted(n for n, c in records.items() if c > 1)
    missing = sorted(executed - set(records))
    extra = sorted(set(records) - executed)
    for label, ids in (
        ("executed tests without a record", missing),
        ("tests with more than one record", twice),
        ("records of tests that never ran", extra),
    ):
        if ids:
            problems.append(f"{len(ids)} {label}, e.g. {ids[:3]}")
    if not report.get("complete"):
        problems.append(f"report incomplete: {report.get('incomplete_reason')}")
    print(
        f"outcomes: {carbon['counts']}; executed: {len(executed)}; records: {sum(records.values())}"
    )
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    suite = Path(argv[0])
    if not suite.is_dir():
        print(f"error: {suite} is not a directory", file=sys.stderr)
        return 2
    problems = check(suite, argv[1:])
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print("ok: same outcomes with and without --carbon, one record per executed test")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
