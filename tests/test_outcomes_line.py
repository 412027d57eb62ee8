"""The summary's outcome counts are pytest's, skipped tests without a call phase included."""

from __future__ import annotations

import pytest

from pytest_carbon.report.terminal import outcomes_line

SUITE = """
import pytest

def test_a():
    pass

def test_b():
    pass

@pytest.mark.skip(reason="no call phase")
def test_skipped_at_setup():
    pass

@pytest.mark.parametrize("i", range(3))
def test_skipif(i):
    pytest.skip("in the call")

@pytest.mark.xfail
def test_xfail():
    assert False
"""


def test_the_outcomes_line_counts_what_pytest_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--carbon", "--carbon-idle=off", "-p", "no:randomly")
    result.assert_outcomes(passed=2, skipped=4, xfailed=1)
    # One test was skipped at setup: pytest counts it, it has no record.
    result.stdout.fnmatch_lines(
        ["outcomes: 2 passed, 4 skipped, 1 xfailed (1 without a call phase, so without a record)"]
    )


def test_without_pytests_counts_the_records_are_counted() -> None:
    recs = [{"outcome": "passed"}, {"outcome": "skipped", "attempts": 2}]
    assert outcomes_line(recs) == "outcomes: 1 passed, 1 skipped; 1 test rerun (last attempt kept)"
