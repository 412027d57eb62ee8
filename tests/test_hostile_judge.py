"""Hostile answers against the judge (issue 19, "judging happens outside"), each run
through the real sandbox, each asserting the verdict.

The candidate's process receives arguments and returns plain values; pytest's process
decides every case with the one equality rule, and the task's check runs in a process of
its own. Each answer of tests/hostile/judge_*.py tries one way around that.
"""

from __future__ import annotations

from pathlib import Path

from pytest_carbon.sandbox.verify import verify

HOSTILE = Path(__file__).with_name("hostile")


def hostile(name: str) -> str:
    return (HOSTILE / f"judge_{name}.py").read_text()


def test_an_answer_reading_the_expected_values_from_its_process_finds_none() -> None:
    # An expected value that appears in no argument: only the judge knows it.
    tests = [{"args": [1, 2], "expect": 3}, {"args": [20, 22], "expect": 1234567}]
    r = verify(hostile("read_stack"), "add", tests, None)
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["index"] == 0 and r.failed_case["got"] == "-1", r.message
    # Nor from the check, which runs elsewhere: its source never reaches the candidate.
    check = "def check(candidate):\n    assert candidate(40, 2) == 7654321\n"
    r = verify(hostile("read_stack"), "add", [], check)
    assert not r.passed and "7654321" in r.message and "is -1 (int)" in r.message, r.message


def test_a_forged_passed_on_the_control_pipe_during_the_check_is_a_protocol_violation() -> None:
    check = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    r = verify(hostile("forge_passed"), "add", [], check)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case.get("protocol") is True, r.message
    assert "Protocol violation" in r.message and "'result'" in r.message
    # And during the cases.
    r = verify(hostile("forge_passed"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed and r.failed_case is not None and r.failed_case.get("protocol") is True


def test_an_int_task_answered_with_a_float_off_by_millions_is_incorrect() -> None:
    n = 7
    r = verify(hostile("int_as_float"), "scaled", [{"args": [n], "expect": n * 10**15}], None)
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["difference"] == (
        f"got {float(n * 10**15) + 2.4e6!r} (float), expected {n * 10**15} (int)"
    )
    # The task's float tolerance does not apply to an int either.
    tests = [{"args": [n], "expect": n * 10**15, "tol": 1e7}]
    assert not verify(hostile("int_as_float"), "scaled", tests, None).passed


def test_an_answer_for_a_call_out_of_range_is_a_protocol_violation_not_a_crash() -> None:
    r = verify(hostile("case_index"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case.get("protocol") is True, r.message
    assert "1000000000" in r.message
    # Also when the check made the call.
    r = verify(hostile("case_index"), "add", [], "assert candidate(1, 2) == 3\n")
    assert not r.passed and r.failed_case is not None and r.failed_case.get("protocol") is True


def test_a_check_calling_abs_uses_its_own_not_the_answers() -> None:
    check = "def check(candidate):\n    assert abs(candidate(4.0) - 2.0) < 1e-6\n"
    r = verify(hostile("shadow_abs"), "half", [], check)
    assert not r.passed and r.failed_case is not None, r.message
    assert r.failed_case["line"] == 2
    assert "abs(candidate(4.0) - 2.0) is 2.0 (float)" in r.message, r.message
    # Bare assertions too, and the honest twin passes the same check.
    r = verify(hostile("shadow_abs"), "half", [], "assert abs(candidate(4.0) - 2.0) < 1e-6\n")
    assert not r.passed
    assert verify("def half(x):\n    return x / 2\n", "half", [], check).passed


def test_a_correct_answer_returning_a_tuple_is_judged_correct() -> None:
    check = (
        "def check(candidate):\n"
        "    assert candidate([3, 1, 2]) == (1, 3)\n"
        "    assert candidate((5, 4)) == (4, 5)\n"
        "    assert type(candidate([1])) is tuple\n"
    )
    tests = [{"args": [[3, 1, 2]], "expect": [1, 3]}]
    r = verify(hostile("tuple_answer"), "min_max", tests, check)
    assert r.passed, r.message
    # Its wrong twin returns a list: the check (which asks for a tuple) says where and what.
    wrong = "def min_max(xs):\n    return [min(xs), max(xs)]\n"
    r = verify(wrong, "min_max", tests, check)
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["assertion"] == "assert candidate([3, 1, 2]) == (1, 3)"
    assert r.failed_case["values"] == [
        "candidate([3, 1, 2]) is [1, 3] (list)",
        "(1, 3) is (1, 3) (tuple)",
    ]
    assert "line 2" in r.message
