"""Merging reports from shards and machines: every record once, summary recomputed."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import factory
import pytest

from pytest_carbon.compare.baseline import ReportError, compare, parse_fail_spec
from pytest_carbon.results.merge import merge_reports

G_PER_J = 475.0 / 3.6e6


def rec(
    nodeid: str,
    energy_j: float | None,
    *,
    worker: str | None = None,
    start: str = "2026-11-20T10:00:05Z",
) -> dict[str, Any]:
    """A record at 22 W; ``energy_j=None``: a failed test that measured nothing."""
    if energy_j is None:
        return factory.unmeasured(nodeid, outcome="failed", worker=worker, start=start)
    return factory.record(nodeid, energy_j, power_w=22.0, worker=worker, start=start)


def rep(
    machine_id: str,
    records: list[dict[str, Any]],
    *,
    complete: bool = True,
    warnings: list[str] | None = None,
    started: str = "2026-11-20T10:00:00Z",
) -> dict[str, Any]:
    return {
        "schema": "pytest-carbon/report/1",
        "version": "0.1.0",
        "created": "2026-11-20T10:02:00Z",
        "complete": complete,
        "machine": {
            "hostname": machine_id.lower(),
            "machine_id": machine_id,
            "cpu_model": "AMD EPYC 7B13",
            "cpu_count": 2,
            "sensors": [{"name": "estimate", "method": "estimated"}],
        },
        "accounting": {"intensity_g_per_kwh": 475.0, "pue": 1.0, "country": None},
        "idle_power_w": {"cpu": 3.5},
        "run": {
            "started": started,
            "finished": "2026-11-20T10:01:00Z",
            "duration_s": 60.0,
            "workers": 2,
            "args": ["--carbon"],
        },
        "tests": records,
        "summary": {"energy_j": sum(r["energy_j"] or 0 for r in records)},
        "warnings": warnings or [],
    }


SHARD_0 = rep(
    "ci-a",
    [rec("t.py::a", 1.5, worker="gw0"), rec("t.py::b", 0.25, worker="gw0")],
    warnings=["estimated: no RAPL"],
)
SHARD_1 = rep(
    "ci-a",
    [rec("t.py::c", 3.0, worker="gw1"), rec("t.py::d", None, worker="gw1")],
    warnings=["estimated: no RAPL", "d measured nothing"],
)
OTHER_MACHINE = rep("ci-b", [rec("t.py::a", 2.0)], complete=False)


def test_two_workers_shards_merge_every_record_once() -> None:
    merged = merge_reports([SHARD_0, SHARD_1])
    assert [r["nodeid"] for r in merged["tests"]] == ["t.py::a", "t.py::b", "t.py::c", "t.py::d"]
    assert {r["machine_id"] for r in merged["tests"]} == {"ci-a"}
    assert len(merged["machines"]) == 1
    assert merged["machine"]["machine_id"] == "ci-a"
    assert merged["machines"][0]["accounting"]["intensity_g_per_kwh"] == 475.0
    summary = merged["summary"]
    # The unmeasured record counts as a test, not as zero joules.
    assert summary["tests"] == 4
    assert summary["energy_j"] == pytest.approx(4.75)
    assert summary["gco2e_g"] == pytest.approx(4.75 * G_PER_J)
    assert summary["methods"] == {"estimated": 3}
    assert merged["complete"] is True
    assert merged["warnings"] == ["estimated: no RAPL", "d measured nothing"]
    assert merged["schema"] == "pytest-carbon/report/1"


def test_same_report_twice_and_merged_again_keeps_records_once() -> None:
    twice = merge_reports([SHARD_0, SHARD_0])
    assert len(twice["tests"]) == 2
    assert twice["run"]["duplicates_dropped"] == 2
    assert twice["summary"]["energy_j"] == pytest.approx(1.75)
    first = merge_reports([SHARD_0, SHARD_1])
    again = merge_reports([first, SHARD_1, SHARD_0])
    assert len(again["tests"]) == 4
    assert again["summary"]["energy_j"] == pytest.approx(first["summary"]["energy_j"])


def test_same_identity_different_content_is_kept_with_a_warning() -> None:
    a = rep("ci-a", [rec("t.py::a", 1.5)])
    b = rep("ci-a", [rec("t.py::a", 1.9)])
    merged = merge_reports([a, b])
    assert [r["energy_j"] for r in merged["tests"]] == [1.5, 1.9]
    assert any("both kept" in w for w in merged["warnings"])


def test_two_machines_are_grouped() -> None:
    merged = merge_reports([SHARD_0, OTHER_MACHINE])
    assert [m["machine_id"] for m in merged["machines"]] == ["ci-a", "ci-b"]
    assert merged["machine"]["machine_id"] == "merged"
    by_machine = {(r["machine_id"], r["nodeid"]) for r in merged["tests"]}
    assert by_machine == {("ci-a", "t.py::a"), ("ci-a", "t.py::b"), ("ci-b", "t.py::a")}
    assert merged["complete"] is False  # one input was interrupted
    # A merged report compares with itself machine by machine: no failure, no new test.
    comp = compare(merged, merged, [parse_fail_spec("energy:10%")])
    assert comp.failures == []
    assert {c.status for c in comp.changes} == {"inconclusive"}  # no stored history
    assert len({c.nodeid for c in comp.changes}) == 3


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ReportError, match="nothing to merge"):
        merge_reports([])
    with pytest.raises(ReportError, match="no 'schema' field"):
        merge_reports([SHARD_0, {"benchmarks": []}])


def cli(*args: str | Path, real: bool = False) -> subprocess.CompletedProcess[str]:
    """``pytest-carbon ARGS``: the real command in a process of its own with ``real``,
    else its ``main()`` in this process (the same code, no interpreter start)."""
    argv = [str(a) for a in args]
    if real:
        return subprocess.run(
            [sys.executable, "-m", "pytest_carbon.cli", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
    from pytest_carbon.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_cli_merge_writes_the_report_and_exit_codes(tmp_path: Path) -> None:
    paths = []
    for name, data in (("s0", SHARD_0), ("s1", SHARD_1), ("b", OTHER_MACHINE)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(data))
        paths.append(p)
    out = tmp_path / "out" / "merged.json"
    done = cli("merge", out, *paths, paths[0], real=True)
    assert done.returncode == 0, done.stderr
    assert "2 machine(s): 5 record(s), 2 duplicate(s) dropped" in done.stdout
    merged = json.loads(out.read_text())
    assert len(merged["tests"]) == 5
    assert not list(out.parent.glob("*.tmp"))

    missing = cli("merge", tmp_path / "x.json", paths[0], tmp_path / "nope.json")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert not (tmp_path / "x.json").exists()
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "pytest-carbon/report/7", "tests": []}))
    assert cli("merge", tmp_path / "y.json", wrong).returncode == 2
    assert cli("merge", tmp_path / "z.json").returncode == 2  # no input: usage error


def test_cli_merge_never_overwrites_an_input_or_an_existing_output(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(SHARD_0))
    b.write_text(json.dumps(SHARD_1))
    before_a, before_b = a.read_bytes(), b.read_bytes()
    # The case: `merge a.json b.json` used to write over a.json.
    done = cli("merge", a, b)
    assert done.returncode == 2
    assert "exists and would be overwritten" in done.stderr and "--force" in done.stderr
    assert a.read_bytes() == before_a
    # Even --force never writes over an input, named any way.
    for out in (a, tmp_path / "sub" / ".." / "b.json"):
        done = cli("merge", "--force", out, a, b)
        assert done.returncode == 2 and "is also an input" in done.stderr, done.stderr
    assert a.read_bytes() == before_a and b.read_bytes() == before_b
    # An existing output that is not an input: refused, then replaced with --force.
    out = tmp_path / "merged.json"
    out.write_text("{}")
    assert cli("merge", out, a, b).returncode == 2
    assert out.read_text() == "{}"
    done = cli("merge", out, a, b, "--force")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())["tests"]) == 4
