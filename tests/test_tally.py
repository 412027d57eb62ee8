"""A tally run (plugin._TallyHooks): every collected test is a plain window on the edge
path, so the plugin registers its call wrapper alone, no report hook, and reads each
test's outcome and attempts from pytest's terminal reporter when the run is over
(CarbonSession.settle_tally). Its records must be the ones the report hook gives; and a
run that writes no report prints its summary from summary records
(CarbonSession.summary_records), which must print what the whole records print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Every outcome pytest has, a rerun (pytest-rerunfailures' marker) and a test that asks
# for the carbon fixture during its call (the report hook is registered from then on).
SUITE = """
import pytest

def test_pass():
    pass

def test_fail():
    assert 0

def test_skip_in_call():
    pytest.skip("no")

@pytest.mark.skip
def test_skip_at_setup():
    pass

@pytest.mark.xfail
def test_xfail():
    assert 0

@pytest.mark.xfail
def test_xpass():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("setup")

def test_setup_error(broken):
    pass

RUNS = [0]

@pytest.mark.flaky(reruns=2)
def test_flaky():
    RUNS[0] += 1
    assert RUNS[0] >= 2

def test_late_fixture(request):
    request.getfixturevalue("carbon")(sum, range(100))
"""

# The records SUITE leaves, (outcome, attempts) by test: none for the tests skipped or
# failed at setup (no call phase).
SUITE_RECORDS = {
    "test_pass": ("passed", 1),
    "test_fail": ("failed", 1),
    "test_skip_in_call": ("skipped", 1),
    "test_xfail": ("xfailed", 1),
    "test_xpass": ("xpassed", 1),
    "test_flaky": ("passed", 2),
    "test_late_fixture": ("passed", 1),
}

# Says which per-test hooks the run had, in a file (a run may have no terminal): the
# object registered for every test, and whether the report hook was registered on its
# own (beside a tally; _PerTestHooks holds one of its own).
CONFTEST = """
import json

def pytest_unconfigure(config):
    pm = config.pluginmanager
    per_test = pm.get_plugin("pytest-carbon-records")
    with open("hooks.json", "w") as f:
        json.dump({
            "per_test": type(per_test).__name__,
            "report_hook_alone": pm.get_plugin("pytest-carbon-reports") is not None,
        }, f)
"""


def _run(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_tally_suite=SUITE)
    result = pytester.runpytest(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--carbon", "--carbon-idle=off",
        "--carbon-json=out.json", *args,
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1, skipped=2, xfailed=1, xpassed=1, errors=1)
    report = json.loads((pytester.path / "out.json").read_text())
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    return report, hooks


def _facts(report: dict[str, Any]) -> dict[str, tuple[str, int, list[str]]]:
    return {
        r["nodeid"].split("::")[-1]: (r["outcome"], r["attempts"], sorted(r))
        for r in report["tests"]
    }


def test_a_tally_gives_the_report_hooks_records(pytester: pytest.Pytester) -> None:
    tally, tally_hooks = _run(pytester)
    # JUnit XML needs each test's figures on its report: the report hook from the start.
    full, full_hooks = _run(pytester, "--junitxml=out.xml")
    assert tally_hooks == {"per_test": "_TallyHooks", "report_hook_alone": True}
    assert full_hooks == {"per_test": "_PerTestHooks", "report_hook_alone": False}
    facts = _facts(tally)
    assert facts == _facts(full)
    assert {name: f[:2] for name, f in facts.items()} == SUITE_RECORDS
    assert tally["complete"] is True and full["complete"] is True
    assert tally["tests"][0]["energy_j"] > 0


def test_a_plain_suite_needs_no_report_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    assert 0\n")
    result = pytester.runpytest("-p", "no:randomly", "--carbon", "--carbon-idle=off")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["outcomes: 1 passed, 1 failed"])
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    assert hooks == {"per_test": "_TallyHooks", "report_hook_alone": False}


def test_without_the_terminal_reporter_the_report_hook_gives_the_records(
    pytester: pytest.Pytester,
) -> None:
    # -p no:terminal: nothing keeps the reports, so no tally: the report hook, as before.
    tally, _ = _run(pytester)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest(
        "-p", "no:randomly", "-p", "no:terminal", "--carbon", "--carbon-idle=off",
        "--carbon-json=out.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    assert hooks == {"per_test": "_PerTestHooks", "report_hook_alone": False}
    report = json.loads((pytester.path / "out.json").read_text())
    assert _facts(report) == _facts(tally)


# Prints the summary's parts from summary records and from whole records, in one run (so
# with the same readings), into files the test compares.
SUMMARY_CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter, config):
    from pytest_carbon.report import terminal as T
    from pytest_carbon.report.totals import compute
    from pytest_carbon.session import SESSION_KEY

    cs = config.stash[SESSION_KEY]
    counts, subtests = T.pytest_counts(terminalreporter)

    def render(records):
        t = compute(records)
        return "\\n".join(
            T.table_lines(records, 100, 20, t)
            + T.extra_total_lines(t)
            + [T.outcomes_line(records, counts, subtests=subtests)]
            + [T.legend_line(records, 100, t)]
            + T.caveat_lines(cs, records, True)
            + [str(T.equivalences_line(t))]
        )

    summary = cs.summary_records()
    assert cs._raw, "summary records must leave the raw windows raw"
    with open("from_summary.txt", "w") as f:
        f.write(render(summary))
    with open("from_records.txt", "w") as f:
        f.write(render(cs.records))
"""


@pytest.mark.parametrize(
    "args", [[], ["--carbon-embodied", "--carbon-water=1.8"]], ids=["plain", "embodied-water"]
)
def test_the_summary_from_summary_records_is_the_summary_from_records(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    pytester.makeconftest(SUMMARY_CONFTEST)
    pytester.makepyfile(test_tally_suite=SUITE)
    result = pytester.runpytest("-p", "no:randomly", "--carbon", "--carbon-idle=off", *args)
    result.assert_outcomes(passed=3, failed=1, skipped=2, xfailed=1, xpassed=1, errors=1)
    summary = (pytester.path / "from_summary.txt").read_text()
    assert summary == (pytester.path / "from_records.txt").read_text()
    assert "test_flaky" in summary and "1 test rerun" in summary
    if args:
        assert "embodied:" in summary and "water:" in summary


def test_an_interrupted_tests_window_is_dropped_and_the_rest_kept(
    pytester: pytest.Pytester,
) -> None:
    # The interrupted test's call is never reported: its window has no outcome, and is
    # dropped (as the report hook would have); what was measured before is written.
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        "def test_a():\n    pass\n\n"
        "def test_b():\n    raise KeyboardInterrupt\n\n"
        "def test_c():\n    pass\n"
    )
    # A subprocess: in process, the interrupt would stop this test run too.
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--carbon", "--carbon-idle=off", "--carbon-json=out.json"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    assert hooks["per_test"] == "_TallyHooks"
    report = json.loads((pytester.path / "out.json").read_text())
    assert [r["nodeid"].split("::")[-1] for r in report["tests"]] == ["test_a"]
    assert report["tests"][0]["outcome"] == "passed"
    assert report["complete"] is False


SUBTESTS = """
def test_sub(subtests):
    for i in range(3):
        with subtests.test(i=i):
            assert i != 1

def test_sub_ok(subtests):
    for i in range(2):
        with subtests.test(i=i):
            pass
"""


@pytest.mark.skipif(
    tuple(int(p) for p in pytest.__version__.split(".")[:2]) < (9, 0),
    reason="the subtests fixture is pytest's own from pytest 9",
)
@pytest.mark.parametrize("args", [[], ["--junitxml=out.xml"], ["-n", "2"]])
def test_a_test_whose_subtest_failed_is_recorded_as_failed(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    # pytest reports test_sub FAILED ("contains 1 failed subtest"): its own call report
    # passed, and pytest's subtests plugin turns it into a failure when the terminal asks
    # for its status, after the report hook ran. Every path (a tally, the report hook,
    # xdist) records what pytest says, never a subtest's report as the test's.
    pytester.makepyfile(test_subtests_suite=SUBTESTS)
    result = pytester.runpytest(
        "-p", "no:randomly", "--carbon", "--carbon-idle=off", "--carbon-json=out.json", *args
    )
    result.stdout.fnmatch_lines(["*FAILED*test_sub *contains 1 failed subtest*"])
    report = json.loads((pytester.path / "out.json").read_text())
    outcomes = {r["nodeid"].split("::")[-1]: r["outcome"] for r in report["tests"]}
    assert outcomes == {"test_sub": "failed", "test_sub_ok": "passed"}


def test_a_marker_added_at_run_time_takes_the_full_path_in_a_tally(
    pytester: pytest.Pytester,
) -> None:
    # Collected plain (a tally), but a fixture gives test_b a budget as it runs: the call
    # wrapper sees the marker, measures test_b on the full path and checks its budget;
    # the report hook is registered from then on.
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def budget(request):\n"
        "    request.applymarker(pytest.mark.carbon(max_energy_j=1e-12))\n\n"
        "def test_a():\n    pass\n\n"
        "def test_b(budget):\n    sum(range(100_000))\n\n"
        "def test_c():\n    pass\n"
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "--carbon", "--carbon-idle=off", "--carbon-json=out.json"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["carbon budget exceeded: energy_j = *> max_energy_j=1e-12 J*"])
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    assert hooks == {"per_test": "_TallyHooks", "report_hook_alone": True}
    report = json.loads((pytester.path / "out.json").read_text())
    outcomes = {r["nodeid"].split("::")[-1]: r["outcome"] for r in report["tests"]}
    assert outcomes == {"test_a": "passed", "test_b": "failed", "test_c": "passed"}


@pytest.mark.skipif(
    tuple(int(p) for p in pytest.__version__.split(".")[:2]) < (9, 0),
    reason="the subtests fixture is pytest's own from pytest 9",
)
def test_the_outcomes_line_counts_subtests_apart_from_tests(pytester: pytest.Pytester) -> None:
    # pytest's line: "2 failed, 1 passed, 4 subtests passed" (the failed subtest counts as
    # failed beside its test). Tests and subtests apart: no test is said to be without a
    # call phase because a subtest was counted as one.
    # -q: pytest counts passed subtests in its line only where it reports them, and the
    # outcomes line counts what pytest counts.
    pytester.makepyfile(test_subtests_suite=SUBTESTS)
    result = pytester.runpytest("-q", "-p", "no:randomly", "--carbon", "--carbon-idle=off")
    result.stdout.fnmatch_lines(
        [
            "outcomes: 1 passed, 1 failed; 5 subtests inside them: 4 passed, 1 failed",
            "*2 failed, 1 passed, 4 subtests passed in *",
        ]
    )


def test_a_meter_of_counters_leaves_the_tally_at_the_first_test(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # RAPL (a powercap tree written here) has no edge reader: the first test finds it, and
    # the run takes the per-test hooks from there on; every test still has its record.
    from powercap import server_tree

    server_tree(tmp_path / "powercap")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(
        "-p", "no:randomly", "--carbon", "--carbon-idle=off", "--carbon-sensors=rapl",
        f"--carbon-rapl-root={tmp_path / 'powercap'}", "--carbon-json=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1, skipped=2, xfailed=1, xpassed=1, errors=1)
    hooks = json.loads((pytester.path / "hooks.json").read_text())
    assert hooks == {"per_test": "_PerTestHooks", "report_hook_alone": False}
    report = json.loads((pytester.path / "out.json").read_text())
    assert {name: f[:2] for name, f in _facts(report).items()} == SUITE_RECORDS
    assert {r["method"] for r in report["tests"]} == {"attributed"}
