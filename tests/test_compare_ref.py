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

import cpu_burn
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
        # Not an xdist worker's environment: pytest-benchmark would disable itself.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
            **(env or {}),
        },
    )


def by_test(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["nodeid"].split("::")[-1]: c for c in comparison["changes"]}


def expected_log(
    test: str, orders: list[str], iterations: int, calibration: list[int]
) -> list[str]:
    """The calls of one test, in order: the base's warm-up call (the base runs setup and
    one call before the head starts the test), the head's, the calibration rounds (head
    then base, sizing the calls per round), then the rounds, AB or BA."""
    out = [f"base {test}", f"head {test}"]
    for n in calibration:
        out += [f"head {test}"] * n + [f"base {test}"] * n
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
        "--carbon-max-time=5",
        "--carbon-compare-screen=off",  # every test alone (the screen: test_compare_screen)
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
    # Four tests judged: each at 1 - 0.05/4 (Bonferroni), which needs 8 pairs at least.
    assert work["paired"]["confidence"] == pytest.approx(1 - 0.05 / 4)
    assert work["paired"]["reached"] is True and work["paired"]["pairs"] >= 8
    assert comparison["family"]["judgements"] == 4
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
        paired = change["paired"]
        assert mine == expected_log(test, orders, paired["iterations"], paired["calibration"])
    assert not any(c.endswith(" gone") for c in calls)  # never run: only in the base

    # The worktree is gone.
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.slow
def test_tests_left_when_the_budget_is_spent_are_inconclusive(repo: Path, tmp_path: Path) -> None:
    """--carbon-compare-budget bounds the whole comparison: a test reached with less than a
    second of it left is not examined (the base never runs it) and is inconclusive, never
    a regression, even the one that is 3x heavier; the warning says what to do."""
    log = tmp_path / "calls.log"
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        "--carbon-compare-fail=energy:10%",
        "--carbon-compare-screen=off",
        "--carbon-compare-budget=0.5",
        "--carbon-json=out.json",
        env={"CALL_LOG": str(log)},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    changes = by_test(json.loads((repo / "out.json").read_text())["comparison"])
    for name in ("test_same", "test_work", "test_lighter", "test_noisy"):
        assert changes[name]["status"] == "inconclusive", changes[name]
        assert "budget of 0.5 s was spent" in changes[name]["detail"]
    assert "4 test(s) the screen left to examine were not" in out
    assert not [line for line in log.read_text().splitlines() if line.startswith("base ")]


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


# -- every kind of test can be compared -------------------------------------------------------

FIXTURE_SUITE = (
    cpu_burn.SOURCE
    + """
import pytest


def parse(data):
    return sum(int(x) for x in data.split(","))


DATA = ",".join(str(i) for i in range(3000))


def test_call(carbon):
    assert carbon(parse, DATA) == sum(range(3000))


def test_blocks(carbon):
    with carbon.measure("load"):
        rows = DATA.split(",")
    with carbon.measure("sum"):
        assert sum(int(x) for x in rows) == sum(range(3000))


@pytest.mark.carbon(max_energy_j=1000.0)
def test_budget():
    burn(0.005)


def test_bench(benchmark):
    assert benchmark(parse, DATA) == sum(range(3000))


def test_tiny():
    burn(0.00005)
"""
)


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    """An unchanged repository whose tests use the carbon fixture, blocks, a budget and
    pytest-benchmark, measured by the real estimate sensor."""
    repo = tmp_path / "fixtures"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "test_kinds.py").write_text(FIXTURE_SUITE)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


@pytest.mark.slow  # two full compare-ref runs of a small repository (~15 s each)
@pytest.mark.parametrize("rounds", ["1", "3"])
def test_fixture_blocks_budget_and_benchmark_are_compared(fixture_repo: Path, rounds: str) -> None:
    result = run_pytest(
        fixture_repo,
        "--carbon",
        f"--carbon-rounds={rounds}",
        "--carbon-compare-ref=HEAD",
        "--carbon-min-time=0.02",
        "--carbon-max-time=3",
        "--benchmark-max-time=0.02",
        "--carbon-compare-screen=off",  # test_budget and test_tiny examined alone too
        "--carbon-json=out.json",
    )
    out = result.stdout + result.stderr
    assert "FixtureAlreadyUsed" not in out and "already used" not in out, out
    assert result.returncode == 0, out
    changes = by_test(json.loads((fixture_repo / "out.json").read_text())["comparison"])
    for name in ("test_call", "test_blocks", "test_budget", "test_bench"):
        assert changes[name]["method"] == "paired", (name, changes[name])
        assert changes[name]["paired"]["pairs"] >= 6
    # What the fixture measured is the metric: per call, or its blocks per run.
    assert changes["test_call"]["paired"]["source"] == "carbon fixture"
    assert changes["test_blocks"]["paired"]["source"] == "carbon fixture"
    assert changes["test_bench"]["paired"]["source"] == "call"
    # A tiny test (50 µs of CPU a call) is repeated until a round lasts about 50 ms on both
    # sides (the calibration rounds), not judged on rounds of a few calls. Sized in CPU
    # time, not left empty: an empty test reached the cap on calls per round (compare/ref.py
    # MAX_ITERATIONS, 10,000 calls = 41 ms here), so its rounds' length was the machine's
    # speed, and a machine 2.7x faster read under 15 ms (4x: too short to measure).
    records = {
        r["nodeid"].split("::")[-1]: r
        for r in json.loads((fixture_repo / "out.json").read_text())["tests"]
    }
    # The head's own records hold its --carbon-rounds (blocks: one sample per run).
    assert records["test_blocks"]["rounds"] == int(rounds)
    tiny = changes["test_tiny"]["paired"]
    from pytest_carbon.compare.ref import MAX_ITERATIONS

    assert 10 < tiny["iterations"] < MAX_ITERATIONS  # sized by calibration, not the cap
    # Rounds are sized for ~50 ms by calibration rounds; the machine's load between the
    # calibration and the rounds moves their length (34 ms seen under a full test run), so
    # the check is only that they are nowhere near the 4.9 ms rounds of old.
    lengths = [r["end_s"] - r["start_s"] for r in tiny["rounds"]]
    assert sorted(lengths)[len(lengths) // 2] >= 0.015


# -- the two sides are charged by one definition (scripted counters and clocks) -------------


class ScriptedMachine:
    """A 2-CPU machine that draws ``idle_w`` plus ``per_cpu_w`` per busy CPU, with a
    clock, a machine-wide counter, the test's CPU time and the machine's busy time that
    move only when the test says so."""

    def __init__(self, idle_w: float = 8.0, per_cpu_w: float = 12.0) -> None:
        self.idle_w, self.per_cpu_w = idle_w, per_cpu_w
        self.now_s, self.energy_j, self.own_cpu_s, self.busy_s = 1000.0, 0.0, 0.0, 0.0

    def work(self, cpu_s: float, neighbour_cpus: float = 0.0, stretch: float = 1.0) -> None:
        """The test uses ``cpu_s`` of CPU over ``stretch`` x that wall time, while a
        neighbour keeps ``neighbour_cpus`` CPUs busy."""
        wall = cpu_s * stretch
        others = neighbour_cpus * wall
        self.now_s += wall
        self.own_cpu_s += cpu_s
        self.busy_s += cpu_s + others
        self.energy_j += self.idle_w * wall + self.per_cpu_w * (cpu_s + others)


class MachineCounter:
    """A RAPL-like package counter over the scripted machine."""

    name = "scripted-rapl"
    method = "measured"
    components = ("cpu",)
    machine_wide = True
    update_period_s = 0.0
    poll_interval_s = None

    def __init__(self, machine: ScriptedMachine) -> None:
        self.machine = machine

    def read(self, pids: tuple[int, ...] = ()) -> Any:
        from pytest_carbon.measure.sensors.base import Reading

        return Reading(time_s=self.machine.now_s, energy_j={"cpu": self.machine.energy_j})

    def close(self) -> None:
        pass


class ModelSensor(MachineCounter):
    """The estimate's kind: the test's own CPU time x watts per core, no idle in it."""

    name = "scripted-estimate"
    method = "estimated"
    machine_wide = False
    dynamic_components = ("cpu",)
    watts_per_core = 3.1

    def read(self, pids: tuple[int, ...] = ()) -> Any:
        from pytest_carbon.measure.sensors.base import Reading

        cpu_j = self.machine.own_cpu_s * self.watts_per_core
        return Reading(time_s=self.machine.now_s, energy_j={"cpu": cpu_j})


class ScriptedItem:
    """What timed_round needs of a pytest item: a node id, a stash, runtest()."""

    fixturenames = ()

    def __init__(self, run: Any) -> None:
        self.nodeid = "test_x.py::test_x"
        self.stash: dict[Any, Any] = {}
        self._run = run

    def runtest(self) -> None:
        self._run()


def scripted_meter(kind: str, machine: ScriptedMachine, attribution: str) -> Any:
    from pytest_carbon.measure.meter import Meter

    sensor = MachineCounter(machine) if kind == "counter" else ModelSensor(machine)
    meter = Meter(
        [sensor],
        attribution=attribution,
        cpu_time=lambda pids: machine.own_cpu_s,
        machine_busy=lambda: machine.busy_s,
    )
    meter.cpus = 2
    return meter


HEAD_IDLE = {"cpu": 8.0}


@pytest.mark.parametrize("attribution", ["auto", "process", "machine"])
@pytest.mark.parametrize("kind", ["counter", "model"])
def test_the_head_and_the_base_charge_the_same_window_identically(
    kind: str, attribution: str
) -> None:
    """The same window (the same work on the same scripted machine) through the head's
    code and the base's: the base adopts the head's idle calibration from the plan, both
    run serve.timed_round, so every figure is identical to the last bit."""
    from pytest_carbon.compare.ref import fingerprint_differences
    from pytest_carbon.compare.serve import adopt_idle, timed_round
    from pytest_carbon.measure.idle import IdleEstimate

    machines = [ScriptedMachine(), ScriptedMachine()]
    head, base = (scripted_meter(kind, m, attribution) for m in machines)
    head.idle = IdleEstimate(HEAD_IDLE, {"cpu": 0.2}, "fit (scripted)", {"cpu": 12.0})
    # The base starts with no idle of its own (it never calibrates): before the plan its
    # figures differ from the head's, which is the bug this protocol closes.
    figures = []
    for meter, machine in ((head, machines[0]), (base, machines[1])):
        item = ScriptedItem(lambda m=machine: m.work(0.02, neighbour_cpus=0.7, stretch=1.6))
        figures.append(timed_round(item, meter, 5, "x"))
    if attribution != "machine" or kind == "model":
        assert figures[0]["energy_j"] != figures[1]["energy_j"]
    adopt_idle(base, head.idle.to_json())
    assert (
        fingerprint_differences(
            {**head.settings_fingerprint(), "idle": "auto"},
            {**base.settings_fingerprint(), "idle": "auto"},
        )
        == []
    )
    rounds = []
    for meter, machine, side in ((head, machines[0], "head"), (base, machines[1], "base")):
        item = ScriptedItem(lambda m=machine: m.work(0.02, neighbour_cpus=0.7, stretch=1.6))
        rounds.append(timed_round(item, meter, 5, side))
    keys = ("energy_j", "dynamic_energy_j", "duration_s", "cpu_time_s", "calls", "method")
    assert {k: rounds[0][k] for k in keys} == {k: rounds[1][k] for k in keys}
    assert rounds[0]["energy_j"] > 0


@pytest.mark.parametrize("kind", ["counter", "model"])
def test_a_neighbour_does_not_change_a_tests_energy(kind: str) -> None:
    """A 1.5 s CPU-bound test alone and beside a CPU-bound neighbour that doubles its wall
    time: the same energy (dynamic + idle per CPU x its CPU time); only the idle of the
    wall time, reported beside, grows."""
    from pytest_carbon.measure.idle import IdleEstimate

    out = []
    for neighbour, stretch in ((0.0, 1.0), (1.0, 2.0), (1.9, 2.5)):
        machine = ScriptedMachine()
        meter = scripted_meter(kind, machine, "auto")
        meter.idle = IdleEstimate(HEAD_IDLE, {"cpu": 0.2}, "fit (scripted)", {"cpu": 12.0})
        meter.begin("t")
        machine.work(1.5, neighbour_cpus=neighbour, stretch=stretch)
        out.append(meter.end("t"))
    energies = [m.total_energy_j for m in out]
    assert energies == pytest.approx([energies[0]] * 3, rel=1e-9)
    if kind == "counter":
        # The truth of the scripted machine: 12 W x 1.5 s dynamic, 8 W / 2 CPUs x 1.5 s.
        assert out[0].total_dynamic_energy_j == pytest.approx(18.0)
        assert energies[0] == pytest.approx(18.0 + 4.0 * 1.5)
    walls = [m.idle_wall_energy_j for m in out]
    assert walls == pytest.approx([8.0 * 1.5, 8.0 * 3.0, 8.0 * 3.75])


def test_differing_settings_are_named() -> None:
    from pytest_carbon.compare.ref import fingerprint_differences

    head = {"sensors": ["rapl", "estimate"], "attribution": "auto", "idle": "auto"}
    base = {"sensors": ["estimate"], "attribution": "process", "idle": "auto"}
    diff = fingerprint_differences(head, base)
    assert diff == [
        "attribution: head 'auto', base 'process'",
        "sensors: head ['rapl', 'estimate'], base ['estimate']",
    ]
    assert fingerprint_differences(head, {}) == [
        "the base did not report its sensors and attribution"
    ]


def test_the_heads_plugin_options_reach_the_base() -> None:
    from pytest_carbon.compare.ref import passed_options

    args = [
        "-p",
        "no:randomly",
        "-pno:cacheprovider",
        "--carbon",
        "-o",
        "xfail_strict=true",
        "--import-mode=importlib",
        "-x",
        "tests/",
        "-p",
        "pytest_carbon.compare.serve",
    ]
    assert passed_options(args) == [
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-o",
        "xfail_strict=true",
        "--import-mode=importlib",
    ]


@pytest.mark.slow
def test_a_base_measured_with_other_sensors_is_refused(repo: Path, tmp_path: Path) -> None:
    # The work tree's conftest measures with a renamed sensor: the two sides would not be
    # measured the same way, so the comparison refuses to run, naming the difference.
    (repo / "conftest.py").write_text(CONFTEST.replace('name = "cost"', 'name = "cost-v2"'))
    result = run_pytest(
        repo, "--carbon", "--carbon-compare-ref=HEAD", env={"CALL_LOG": str(tmp_path / "log")}
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "cannot be compared" in result.stderr
    assert "sensors: head ['cost-v2'" in result.stderr and "base ['cost'" in result.stderr
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.slow
def test_every_metric_is_gated_relative_or_absolute(repo: Path, tmp_path: Path) -> None:
    """`--carbon-compare-fail` means the same here as in the stored mode: dynamic energy,
    duration and an absolute energy threshold are judged, none ignored."""
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        "--carbon-compare-fail=dynamic_energy:10%",
        "--carbon-compare-fail=duration:500%",
        "--carbon-compare-fail=energy:1.5",
        "--carbon-max-time=4",
        "--carbon-json=out.json",
        env={"CALL_LOG": str(tmp_path / "log")},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "ignored" not in out
    comparison = json.loads((repo / "out.json").read_text())["comparison"]
    assert comparison["fail"] == ["dynamic_energy:10%", "duration:500%", "energy:1.5"]
    assert comparison["family"]["judgements"] == 4 * 3  # 4 common tests, 3 metrics
    failing = sorted((f["nodeid"].split("::")[-1], f["metric"]) for f in comparison["failures"])
    # test_work costs 3 J a call against 1 J: +200% dynamic energy, +2 J > 1.5 J.
    assert failing == [("test_work", "dynamic_energy"), ("test_work", "energy")]
    absolute = next(
        c
        for c in comparison["changes"]
        if c["nodeid"].endswith("test_work") and c["threshold"] == "energy:1.5"
    )
    assert absolute["paired"]["relative"] is False and absolute["paired"]["ratio"] == 2.0
    judged = {(c["nodeid"].split("::")[-1], c["metric"]) for c in comparison["changes"]}
    assert ("test_same", "duration") in judged and ("test_work", "duration") in judged


CPU_COSTS_CONFTEST = (
    CONFTEST
    + """

import os

if os.environ.get("PYTEST_CARBON_COMPARE_FD") and os.environ.get("PIN_BASE_TO_CPU0"):
    # The base process starts held on CPU 0 (as a scheduler may keep it there).
    os.sched_setaffinity(0, {0})
"""
)

CPU_COSTS_TESTS = """
import os

from costs import spend


def test_same_code():
    # The same code costs less where the process is held on CPU 0 (a persistent
    # per-process speed difference that follows where the scheduler keeps it).
    spend("same_code", 0.6 if os.sched_getaffinity(0) == {0} else 1.0)
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two CPUs to pin to",
)
def test_both_processes_run_on_one_cpu(tmp_path: Path) -> None:
    """Unchanged code whose speed depends on the CPU it runs on, with the base held on
    CPU 0: the two processes are pinned to one CPU while comparing, so the per-CPU
    difference cannot persist on one side (unpinned, the head reads 1/0.6 = 1.67x)."""
    repo = tmp_path / "cpus"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "conftest.py").write_text(CPU_COSTS_CONFTEST)
    (repo / "costs.py").write_text(COSTS.format(side="x"))
    (repo / "test_cpu.py").write_text(CPU_COSTS_TESTS)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        "--carbon-compare-fail=energy:10%",
        "--carbon-max-time=3",
        "--carbon-json=out.json",
        env={"CALL_LOG": str(tmp_path / "log"), "PIN_BASE_TO_CPU0": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    change = by_test(json.loads((repo / "out.json").read_text())["comparison"])["test_same_code"]
    assert change["paired"]["ratio"] == 1.0 and change["verdict"] == "no change"
    assert change["paired"]["cpu"] == max(os.sched_getaffinity(0))
