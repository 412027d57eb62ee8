"""The per-test hooks (the call wrapper and the report hook) are registered only where a
record can arise: a run that can measure nothing calls none of the plugin's code per
test (plugin.register_per_test_hooks)."""

from __future__ import annotations

import pytest

# Says, in the summary, whether the plugin's per-test hooks were registered.
CONFTEST = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    hooks = config.pluginmanager.get_plugin("pytest-carbon-records") is not None
    terminalreporter.write_line(f"per-test hooks: {hooks}")
"""

PLAIN = "def test_a():\n    pass\n\ndef test_b():\n    pass\n"


def _run(pytester: pytest.Pytester, suite: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_hooks_suite=suite)
    return pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_a_run_that_can_measure_nothing_registers_no_per_test_hook(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, PLAIN)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["per-test hooks: False"])


@pytest.mark.parametrize("args", [["--carbon"], ["--carbon-json=r.json"]], ids=["carbon", "json"])
def test_measuring_or_a_report_registers_them_from_the_start(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    result = _run(pytester, PLAIN, "--carbon-idle=off", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["per-test hooks: True"])


def test_a_carbon_marker_among_the_collected_tests_registers_them(
    pytester: pytest.Pytester,
) -> None:
    suite = PLAIN + "\n@pytest.mark.carbon\ndef test_marked():\n    sum(range(1000))\n"
    result = _run(pytester, "import pytest\n" + suite)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "test_marked *",  # its row: the only test measured
            "outcomes: 3 passed (2 not measured: no carbon marker or fixture, and no --carbon)",
            "per-test hooks: True",
        ]
    )
    assert "test_a " not in result.stdout.str()


def test_the_carbon_fixture_asked_for_at_run_time_still_leaves_its_record(
    pytester: pytest.Pytester,
) -> None:
    """No collected test names the fixture: the first ``getfixturevalue("carbon")``
    registers the hooks during that test's call, and its record is still built."""
    suite = PLAIN + (
        "\ndef test_late(request):\n"
        "    request.getfixturevalue('carbon')(sum, range(1000))\n"
        "\ndef test_after():\n    pass\n"
    )
    result = _run(pytester, suite, "-v")
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "per-test hooks: True" in out
    assert "test_late" in out.split("pytest-carbon")[-1]  # a row of the summary
    assert "1 measured" in out
    # The tests before the hooks were not seen: no "did not run" claim about them.
    assert "did not run" not in out
