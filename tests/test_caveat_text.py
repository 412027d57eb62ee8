"""Near-duplicate caveats under pytest-xdist are shown once (issue 23)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from pytest_carbon.report.caveat_text import RUN_CONCURRENT, TEST_CONCURRENT, merged
from pytest_carbon.report.markdown import render_markdown
from pytest_carbon.results.caveats import aggregate
from pytest_carbon.runner import CONCURRENT_NOTE
from pytest_carbon.session import CarbonSession

RUN_WARNING = (
    "tests ran concurrently (pytest-xdist): per-test energy is less precise; machine-wide "
    "counters are attributed by CPU-time share, and the estimate counts each test's own process"
)


def records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "nodeid": f"t.py::test_{i}",
            "outcome": "passed",
            "energy_j": 0.1,
            "method": "estimated",
            "warnings": [CONCURRENT_NOTE] + (["window too short"] if i == 0 else []),
        }
        for i in range(n)
    ]


def session_warning() -> str:
    """The start of the run's xdist warning as session.py writes it."""
    import inspect

    source = inspect.getsource(CarbonSession.__init__)
    start = source.index('"tests ran concurrently')
    return source[start + 1 :]


def test_the_texts_it_merges_are_the_ones_the_plugin_writes() -> None:
    assert CONCURRENT_NOTE.startswith(TEST_CONCURRENT)
    assert RUN_WARNING.startswith(RUN_CONCURRENT)
    assert session_warning().startswith(RUN_CONCURRENT)


def test_the_per_test_note_folds_into_the_run_warning() -> None:
    warnings, kinds = merged([RUN_WARNING], aggregate(records(6)))
    assert len(warnings) == 1 and warnings[0].startswith(RUN_WARNING)
    assert warnings[0].endswith("(6 tests measured while others ran)")
    assert [k["kind"] for k in kinds] == ["window too short"]
    # Without the run warning (a report from an older version), nothing is dropped.
    alone, kinds = merged([], aggregate(records(2)))
    assert alone == [] and {k["kind"] for k in kinds} == {CONCURRENT_NOTE, "window too short"}


def test_markdown_shows_one_concurrency_caveat() -> None:
    rep = {"tests": records(3), "warnings": [RUN_WARNING]}
    text = render_markdown(rep)
    assert text.count("concurrently") == 1 and TEST_CONCURRENT not in text
    assert "(3 tests measured while others ran)" in text


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist")
def test_under_xdist_the_summary_says_it_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.parametrize('i', range(4))\n"
        "def test_t(i):\n    sum(range(1000 * i))\n"
    )
    result = pytester.runpytest_subprocess("--carbon", "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    lines = [x for x in result.outlines if x.startswith("warning:")]
    assert len([x for x in lines if "concurrently" in x or TEST_CONCURRENT in x]) == 1, lines
    assert any(x.endswith("(4 tests measured while others ran)") for x in lines), lines
