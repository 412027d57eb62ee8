"""``--carbon-compare-ref``: the work tree against a git REF, interleaved, test by test.

Every repository here is real (``git init``, a base commit, a changed work tree) and both
pytest processes are real. The energy is not: a sensor in the repository's conftest
counts the "cost units" that the tests spend (``costs.spend``), so a test that the head
makes 3x heavier has a ratio of exactly 3, whatever the machine's load. Each call also
appends its side to a log, which shows the order in which the two processes ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CONFTEST = """
import time

import costs
from pytest_carbon.measure.sensors.base import Reading


class CostSensor:
    name = "cost"
    method = "measured"
    components = ("cpu", "dram")  # owns both, so the estimate adds nothing
    machine_wide = False
    update_period_s = 0.0
    poll_interval_s = None

    def read(self, pids=()):
        return Reading(time.perf_counter(), {"cpu": costs.SPENT[0], "dram": 0.0})

    def close(self):
        pass


def pytest_carbon_sensors(config):
    return [CostSensor()]
"""

COSTS = """
import itertools
import os

SIDE = "{side}"
SPENT = [0.0]
_CYCLE = itertools.cycle([0.5, 2.0, 1.0])


def spend(test, units):
    SPENT[0] += units
    with open(os.environ["CALL_LOG"], "a") as f:
        f.write(f"{{SIDE}} {{test}}\\n")


def wobbly():
    return next(_CYCLE)
"""

BASE_TESTS = """
import time

from costs import spend


def test_same():
    spend("same", 2.0)


def test_work():
    spend("work", 1.0)


def test_lighter():
    spend("lighter", 2.0)


def test_noisy():
    time.sleep(0.06)
    spend("noisy", 1.0)


def test_gone():
    spend("gone", 1.0)
"""

# The head: test_work 3x heavier, test_lighter halved, test_noisy's cost cycles through
# 0.5, 2 and 1 per call (its interval cannot reach the precision), test_gone removed.
HEAD_TESTS = """
import time

from costs import spend, wobbly


def test_same():
    spend("same", 2.0)


def test_work():
    spend("work", 3.0)


def test_lighter():
    spend("lighter", 1.0)


def test_noisy():
    time.sleep(0.06)
    spend("noisy", wobbly())
"""

NEW_TEST = "def test_new():\n    assert True\n"


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose commit is the base and whose work tree is the head."""
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "conftest.py").write_text(CONFTEST)
    (repo / "costs.py").write_text(COSTS.format(side="base"))
    (repo / "test_work.py").write_text(BASE_TESTS)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    # Uncommitted changes (tracked and untracked) are the head.
    (repo / "costs.py").write_text(COSTS.format(side="head"))
    (repo / "test_work.py").write_text(HEAD_TESTS)
    (repo / "test_new.py").write_text(NEW_TEST)
    return repo


def run_pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def by_test(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["nodeid"].split("::")[-1]: c for c in comparison["changes"]}


def expected_log(test: str, orders: list[str], iterations: int) -> list[str]:
    """The calls of one test, in order: the base's warm-up call (the base runs setup and
    one call before the head starts the test), the head's, then the rounds, AB or BA."""
    out = [f"base {test}", f"head {test}"]
    for order in orders:
        for side in ("head", "base") if order == "AB" else ("base", "head"):
            out += [f"{side} {test}"] * iterations
    return out


@pytest.mark.slow
def test_compare_ref_judges_each_common_test_interleaved(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        "--carbon-compare-fail=energy:10%",
        "--carbon-max-time=1.5",
        "--carbon-json=out.json",
        env={"CALL_LOG": str(log)},
    )
    out = result.stdout + result.stderr
    # A regression fails the session like a failed test; every test itself passed.
    assert result.returncode == 1, out
    assert "5 passed" in out
    comparison = json.loads((repo / "out.json").read_text())["comparison"]
    assert comparison["mode"] == "paired"
    changes = by_test(comparison)

    work = changes["test_work"]
    assert (work["status"], work["verdict"]) == ("regression", "regression")
    assert work["method"] == "paired"
    assert work["paired"]["ratio"] == 3.0 and work["interval"] == [3.0, 3.0]
    assert work["failing"] is True and work["threshold"] == "energy:10%"
    assert work["paired"]["reached"] is True and work["paired"]["pairs"] >= 6
    assert [f["nodeid"] for f in comparison["failures"]] == ["test_work.py::test_work"]

    same = changes["test_same"]
    assert (same["verdict"], same["paired"]["ratio"], same["failing"]) == ("no change", 1.0, False)
    lighter = changes["test_lighter"]
    assert (lighter["verdict"], lighter["paired"]["ratio"]) == ("improvement", 0.5)

    # Per-pair ratios 0.5, 2 and 1: the interval stays wide until the time cap.
    noisy = changes["test_noisy"]
    assert noisy["verdict"] == "inconclusive" and noisy["paired"]["reached"] is False
    assert noisy["paired"]["stopped"].startswith("time cap")
    assert noisy["interval"][0] <= 0.5 and noisy["interval"][1] >= 2.0

    # On one side only: listed, never compared.
    assert (changes["test_new"]["status"], changes["test_gone"]["status"]) == ("new", "missing")
    assert "paired" not in changes["test_new"] and "paired" not in changes["test_gone"]
    assert "1 test(s) only in the work tree, not compared: test_new.py::test_new" in out
    assert "1 test(s) only in HEAD, not compared: test_work.py::test_gone" in out
    assert "FAILED test_work.py::test_work: energy" in out

    # The two processes alternated round by round, AB then BA, as the JSON says.
    calls = log.read_text().splitlines()
    for name, change in changes.items():
        if "paired" not in change:
            continue
        test = name.removeprefix("test_")
        orders = change["paired"]["orders"]
        assert orders == ["AB", "BA"] * (len(orders) // 2) + ["AB"] * (len(orders) % 2)
        mine = [c for c in calls if c.endswith(f" {test}")]
        assert mine == expected_log(test, orders, change["paired"]["iterations"])
    assert not any(c.endswith(" gone") for c in calls)  # never run: only in the base

    # The worktree is gone.
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.slow
def test_a_selection_applies_to_both_sides(repo: Path, tmp_path: Path) -> None:
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        "--carbon-json=out.json",
        "-k",
        "same or lighter",
        env={"CALL_LOG": str(tmp_path / "log")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    changes = by_test(json.loads((repo / "out.json").read_text())["comparison"])
    # Deselected tests, here or in the base, are neither compared nor "missing".
    assert {n: c["verdict"] for n, c in changes.items()} == {
        "test_same": "no change",
        "test_lighter": "improvement",
    }


@pytest.mark.slow
def test_a_ref_that_does_not_resolve_is_a_usage_error(repo: Path) -> None:
    result = run_pytest(repo, "--carbon", "--carbon-compare-ref=no-such-branch")
    assert result.returncode == 4  # pytest's usage error
    assert "'no-such-branch' does not name a commit in" in result.stderr
    assert "git fetch origin main" in result.stderr
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.slow
def test_not_a_git_repository_is_a_usage_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "test_x.py").write_text("def test_x():\n    pass\n")
    result = run_pytest(
        plain,
        "--carbon",
        "--carbon-compare-ref=main",
        env={"GIT_CEILING_DIRECTORIES": str(tmp_path)},
    )
    assert result.returncode == 4
    assert "is not in a git repository" in result.stderr
    assert "--carbon-compare-ref=main" in result.stderr


def test_compare_ref_needs_carbon_and_no_xdist(repo: Path) -> None:
    result = run_pytest(repo, "--carbon-compare-ref=HEAD")
    assert result.returncode == 4 and "needs --carbon" in result.stderr


@pytest.mark.slow
def test_the_worktree_is_removed_on_interrupt(repo: Path, tmp_path: Path) -> None:
    # The head's test_work is interrupted (Ctrl-C) in its first measured round.
    (repo / "test_work.py").write_text(
        HEAD_TESTS.replace(
            'spend("work", 3.0)',
            'spend("work", 3.0)\n    CALLS.append(1)\n    if len(CALLS) == 2:\n'
            "        raise KeyboardInterrupt",
        )
        + "\nCALLS = []\n"
    )
    result = run_pytest(
        repo, "--carbon", "--carbon-compare-ref=HEAD", env={"CALL_LOG": str(tmp_path / "log")}
    )
    assert result.returncode == 2, result.stdout  # pytest's "interrupted"
    assert "KeyboardInterrupt" in result.stdout
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert (repo / ".git").is_dir() and not list((repo / ".git").glob("worktrees/*"))


@pytest.mark.slow
def test_the_base_plugin_refuses_to_run_by_hand(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    result = run_pytest(
        tmp_path, "-p", "pytest_carbon.compare.serve", env={"PYTEST_CARBON_COMPARE_FD": ""}
    )
    assert result.returncode == 4
    assert "base side of --carbon-compare-ref" in result.stderr


@pytest.mark.slow
def test_a_base_that_cannot_start_is_reported_with_its_output(repo: Path) -> None:
    # REF's conftest is broken (fixed in the work tree): the base pytest cannot start.
    (repo / "conftest.py").write_text("raise RuntimeError('broken in the base')\n")
    git(repo, "commit", "-q", "-am", "broken conftest")
    (repo / "conftest.py").write_text(CONFTEST)
    result = run_pytest(repo, "--carbon", "--carbon-compare-ref=HEAD")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "the base pytest did not start" in result.stderr
    assert "broken in the base" in result.stderr
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
