"""``--carbon-compare-ref``'s screen (groups first, then tests) and the swapped-process
interval (:func:`pytest_carbon.compare.paired.crossover`).

The unit tests script the rounds; the end-to-end ones run real repositories and both
real pytest processes, with a sensor that counts the tests' "cost units" (the conftest of
:mod:`test_compare_ref`), so that ratios are exact whatever the machine's load.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
from pathlib import Path

import pytest
from test_compare_ref import CONFTEST, COSTS, by_test, git, run_pytest

from pytest_carbon.compare import paired, screen

# -- the screen's decisions (scripted rounds) ----------------------------------------------


def ratio(low: float, high: float, pairs: int = 8) -> paired.PairedRatio:
    return paired.PairedRatio((low + high) / 2, low, high, pairs, 0.99, confidence=0.95)


def test_a_group_is_cleared_only_inside_both_bounds() -> None:
    assert screen.cleared(ratio(0.95, 1.05), 0.10)
    assert not screen.cleared(ratio(0.95, 1.12), 0.10)  # a +12% change is not excluded
    assert not screen.cleared(ratio(0.90, 1.05), 0.10)  # 0.90 < 1/1.1: an improvement
    assert screen.beyond(ratio(1.15, 1.3), 0.10) and screen.beyond(ratio(0.7, 0.85), 0.10)
    assert not screen.beyond(ratio(1.05, 1.3), 0.10)
    too_few = paired.PairedRatio(1.0, 0.99, 1.01, 4, 0.875, confidence=0.95)
    assert not screen.cleared(too_few, 0.10) and not screen.beyond(too_few, 0.10)


def rounds(values: list[float]) -> object:
    it = itertools.cycle(values)
    return lambda: {"energy": next(it)}


def pair(head: object, base: object) -> object:
    return lambda i: (head(), base())  # type: ignore[operator]


def test_an_unchanged_group_is_cleared_in_the_fewest_pairs() -> None:
    noise = random.Random(1)
    head = lambda: {"energy": 1.0 + noise.uniform(-0.02, 0.02)}  # noqa: E731
    base = lambda: {"energy": 1.0 + noise.uniform(-0.02, 0.02)}  # noqa: E731
    g = screen.screen_group("g", ["a", "b"], pair(head, base), {"energy": 0.1}, max_time_s=60)
    assert g.decision == screen.CLEARED and g.pairs == paired.pairs_needed(0.95) == 6


def test_a_changed_group_is_descended_into_and_a_noisy_one_at_the_cap() -> None:
    changed = screen.screen_group(
        "g", ["a"], pair(rounds([1.3]), rounds([1.0])), {"energy": 0.1}, max_time_s=60
    )
    assert changed.decision == screen.DESCEND and changed.stopped.startswith("an interval")
    assert changed.ratios["energy"].ratio == pytest.approx(1.3)
    noisy = screen.screen_group(
        "g",
        ["a"],
        pair(rounds([0.5, 2.0, 1.0]), rounds([1.0])),
        {"energy": 0.1},
        max_time_s=60,
    )
    assert noisy.decision == screen.DESCEND
    assert noisy.pairs == screen.GROUP_MAX_PAIRS and noisy.stopped.startswith("pair cap")
    # Every screened metric must be inside its bound for a clear.
    two = screen.screen_group(
        "g",
        ["a"],
        lambda i: ({"energy": 1.0, "duration": 1.3}, {"energy": 1.0, "duration": 1.0}),
        {"energy": 0.1, "duration": 0.1},
        max_time_s=60,
    )
    assert two.decision == screen.DESCEND


def judge_by(changed: set[str]) -> object:
    """A judge that clears a group unless it holds a changed test, recording the calls."""
    seen: list[str] = []

    def judge(name: str, ids: list[str]) -> screen.GroupResult:
        seen.append(name)
        decision = screen.DESCEND if changed & set(ids) else screen.CLEARED
        return screen.GroupResult(name, ids, decision)

    judge.seen = seen  # type: ignore[attr-defined]
    return judge


A = [f"a.py::t{i}" for i in range(6)]
B = [f"b.py::t{i}" for i in range(6)]
C = ["c.py::t1", "c.py::t2"]
IDS = A + B + C


def test_the_screen_stops_at_the_top_for_an_unchanged_suite() -> None:
    judge = judge_by(set())
    examine, groups = screen.screen(IDS, judge)  # type: ignore[arg-type]
    assert examine == set() and [g.name for g in groups] == ["the suite"]


def test_the_screen_descends_into_files_then_names_the_tests() -> None:
    judge = judge_by({"b.py::t2"})
    examine, groups = screen.screen(IDS, judge)  # type: ignore[arg-type]
    # a.py is cleared; b.py holds the change: its tests are examined alone; c.py has
    # fewer than MIN_GROUP tests: examined alone without a group round.
    assert screen.MIN_GROUP == 6
    assert examine == set(B) | set(C)
    assert judge.seen == ["the suite", "a.py", "b.py"]  # type: ignore[attr-defined]
    # A suite of one file goes from the suite to its tests.
    examine, groups = screen.screen(A, judge_by({"a.py::t1"}))  # type: ignore[arg-type]
    assert examine == set(A) and len(groups) == 1
    # Files under MIN_GROUP tests are pooled in order into groups of at least MIN_GROUP
    # (a short last pool joins the one before); only what changed is examined alone.
    small = [f"s{k}.py::t{i}" for k in range(5) for i in range(2)]  # 5 files of 2 tests
    judge = judge_by({"s1.py::t0"})
    examine, groups = screen.screen(A + small, judge)  # type: ignore[arg-type]
    pool_names = [g.name for g in groups[2:]]
    assert [g.name for g in groups[:2]] == ["the suite", "a.py"]
    assert pool_names == ["5 small files (s0.py ... s4.py)"]  # 6 tests, then 4 joined
    assert examine == set(small)
    judge = judge_by({"s4.py::t1"})
    examine, groups = screen.screen(A + small + B, judge)  # type: ignore[arg-type]
    assert [g.name for g in groups] == [
        "the suite",
        "a.py",
        "b.py",
        "5 small files (s0.py ... s4.py)",
    ]
    assert examine == set(small)
    # A suite under MIN_GROUP tests is not screened: every test examined alone.
    judge = judge_by(set())
    examine, groups = screen.screen(C + A[:3], judge)  # type: ignore[arg-type]
    assert examine == set(C + A[:3]) and groups == [] and judge.seen == []  # type: ignore[attr-defined]


def test_a_group_is_cut_into_chunks_of_the_least_round_length() -> None:
    ids = ["t1", "t2", "t3", "t4", "t5"]
    seconds = {"t1": 0.03, "t2": 0.03, "t3": 0.06, "t4": 0.01, "t5": 0.01}
    assert screen.chunks(ids, seconds, 0.05) == [["t1", "t2"], ["t3", "t4", "t5"]]
    assert screen.chunks(ids, dict.fromkeys(ids, 0.001), 0.05) == [ids]


def test_screen_repeats_size_a_round_to_the_least_length() -> None:
    assert screen.repeats_for(0.2, 1, 0.05) == 1
    assert screen.repeats_for(0.01, 1, 0.05) == 5
    assert screen.repeats_for(0.01, 2, 0.05) == 10
    assert screen.repeats_for(0.0, 1, 0.05) == screen.MAX_REPEATS


# -- a persistent per-process speed difference (scripted processes) -------------------------


class TwoProcesses:
    """Two processes, the first persistently ``slow`` x slower than the second whatever it
    runs; side B costs 1 per round, side A ``a_cost``; each round has ±3% noise."""

    def __init__(self, a_cost: float, slow: float = 1.5, seed: int = 7) -> None:
        self.cost = {"A": a_cost, "B": 1.0}
        self.factor = (slow, 1.0)
        self.rng = random.Random(seed)

    def measure(self, process: int, side: str) -> float:
        return self.cost[side] * self.factor[process] * self.rng.uniform(0.97, 1.03)


def test_fixed_processes_read_the_process_not_the_code() -> None:
    """What the swap is for: with A always in the slower process, unchanged code reads
    1.5x, a false regression."""
    p = TwoProcesses(a_cost=1.0)
    run = paired.interleave(lambda: p.measure(0, "A"), lambda: p.measure(1, "B"), max_time_s=60)
    assert run.result is not None
    assert paired.verdict(run.result, 0.10, 0.05) == paired.REGRESSION


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_swapped_processes_hold_for_unchanged_code(seed: int) -> None:
    p = TwoProcesses(a_cost=1.0, seed=seed)
    run = paired.crossover(p.measure, max_time_s=60)
    assert run.result is not None and run.reached
    assert run.result.contains_one
    assert paired.verdict(run.result, 0.10, 0.05) == paired.NO_CHANGE
    # Each unit: process 0 served A, then B (the orders say which process served A).
    assert run.orders[:4] == ["AB:A0", "AB:A1", "BA:A0", "BA:A1"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_swapped_processes_still_catch_a_real_change(seed: int) -> None:
    p = TwoProcesses(a_cost=1.3, seed=seed)
    run = paired.crossover(p.measure, max_time_s=60)
    assert run.result is not None
    assert run.result.low > 1.1 and run.result.ratio == pytest.approx(1.3, rel=0.05)
    assert paired.verdict(run.result, 0.10, 0.05) == paired.REGRESSION


# -- end to end: real repositories, both processes real ------------------------------------

FILE_A = """
import pytest

from costs import spend


@pytest.mark.parametrize("i", range(6))
def test_a(i):
    spend(f"a{i}", 1.0)
"""

FILE_B = """
from costs import spend


def test_b1():
    spend("b1", 1.0)


def test_b2():
    spend("b2", {b2})


def test_b3():
    spend("b3", 1.0)
"""


def screened_repo(tmp_path: Path, b2_head: float) -> Path:
    repo = tmp_path / "screened"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "conftest.py").write_text(CONFTEST)
    (repo / "costs.py").write_text(COSTS.format(side="x"))
    (repo / "test_a.py").write_text(FILE_A)
    (repo / "test_b.py").write_text(FILE_B.format(b2=1.0))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "test_b.py").write_text(FILE_B.format(b2=b2_head))
    return repo


def compare_ref(
    repo: Path, tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``pytest --carbon --carbon-compare-ref=HEAD`` in ``repo`` (JSON in out.json):
    the finished process and its output."""
    result = run_pytest(
        repo,
        "--carbon",
        "--carbon-compare-ref=HEAD",
        *extra,
        "--carbon-json=out.json",
        env={"CALL_LOG": str(tmp_path / "log")},
    )
    return result, result.stdout + result.stderr


@pytest.mark.slow  # a real compare-ref run (~5 s)
def test_an_unchanged_suite_stops_at_the_top(tmp_path: Path) -> None:
    repo = screened_repo(tmp_path, b2_head=1.0)
    result, out = compare_ref(repo, tmp_path, "--carbon-compare-fail=energy:10%")
    assert result.returncode == 0, out
    comparison = json.loads((repo / "out.json").read_text())["comparison"]
    assert [g["group"] for g in comparison["screen"]] == ["the suite"]
    top = comparison["screen"][0]
    assert top["decision"] == "cleared" and top["tests"] == 9
    assert top["ratios"]["energy"]["ratio"] == 1.0 and top["pairs"] == 6
    changes = by_test(comparison)
    assert {c["method"] for c in changes.values()} == {"screened"}
    assert {c["verdict"] for c in changes.values()} == {"no change"}
    assert comparison["failures"] == []
    assert "screen: the suite (9 tests, 6 pairs): energy 1x [1, 1]" in out
    assert "no test examined alone" in out


@pytest.mark.slow  # a real compare-ref run (~8 s)
def test_a_changed_test_is_named_down_to_itself(tmp_path: Path) -> None:
    repo = screened_repo(tmp_path, b2_head=3.0)
    result, out = compare_ref(repo, tmp_path, "--carbon-compare-fail=energy:10%")
    assert result.returncode == 1, out
    comparison = json.loads((repo / "out.json").read_text())["comparison"]
    groups = {g["group"]: g for g in comparison["screen"]}
    # The suite: 11 units against 9: descend; test_a.py unchanged: cleared; test_b.py
    # has fewer than 6 tests: its three tests are examined alone, without a group round.
    assert groups["the suite"]["decision"] == "descend"
    assert groups["the suite"]["ratios"]["energy"]["ratio"] == pytest.approx(11 / 9)
    assert groups["test_a.py"]["decision"] == "cleared"
    assert "test_b.py" not in groups
    changes = by_test(comparison)
    assert {changes[f"test_a[{i}]"]["method"] for i in range(6)} == {"screened"}
    for name in ("test_b1", "test_b2", "test_b3"):
        assert changes[name]["method"] == "paired", name
    assert changes["test_b2"]["verdict"] == "regression"
    assert changes["test_b2"]["paired"]["ratio"] == 3.0
    assert changes["test_b1"]["verdict"] == changes["test_b3"]["verdict"] == "no change"
    # Bonferroni over the tests examined alone (3), not over the whole suite.
    assert comparison["family"]["judgements"] == 3
    assert changes["test_b2"]["paired"]["confidence"] == pytest.approx(1 - 0.05 / 3)
    assert [f["nodeid"] for f in comparison["failures"]] == ["test_b.py::test_b2"]


@pytest.mark.slow  # a real compare-ref run (~5 s)
def test_a_test_that_fails_is_not_screened(tmp_path: Path) -> None:
    """A test that fails (here: in the base only) cannot be run in a group round: it is
    left out of the screen and examined alone, where its failure is reported."""
    repo = screened_repo(tmp_path, b2_head=1.0)
    base = FILE_B.format(b2=1.0).replace('spend("b3", 1.0)', 'raise AssertionError("old")')
    (repo / "test_b.py").write_text(base)
    git(repo, "commit", "-qam", "b3 fails in the base")
    (repo / "test_b.py").write_text(FILE_B.format(b2=1.0))
    result, out = compare_ref(repo, tmp_path)
    assert result.returncode == 0, out
    comparison = json.loads((repo / "out.json").read_text())["comparison"]
    assert comparison["screen"][0]["tests"] == 8
    changes = by_test(comparison)
    assert changes["test_b3"]["status"] == "unmeasured"
    assert "base: call failed" in changes["test_b3"]["detail"]
