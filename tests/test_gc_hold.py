"""The collector's pause at the end of a ``--carbon`` run (CarbonSession.hold_gc): from
the summary to pytest's own full collection at unconfigure, then restarted. The
records are let go before that collection has to walk them."""

from __future__ import annotations

import gc
import json

import pytest

# Records, in the inner run, whether the collector ran while hooks around the end ran.
CONFTEST = """
import gc
import json
import pytest

from pytest_carbon.session import SESSION_KEY

STATES = {}


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # pytester turns pytest's own collection at unconfigure off for in-process runs;
    # a real run has it.
    from _pytest.unraisableexception import gc_collect_iterations_key

    config.stash[gc_collect_iterations_key] = 1


def _write():
    with open("gc_states.json", "w") as f:
        json.dump(STATES, f)

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    STATES["after summary"] = gc.isenabled()
    cs = terminalreporter.config.stash[SESSION_KEY]

    def first_full_collection(phase, info):
        if phase == "start" and info["generation"] == 2 and "full" not in STATES:
            STATES["full"] = {"records kept": cs.has_records, "collector on": gc.isenabled()}

    gc.callbacks.append(first_full_collection)
    terminalreporter.config.add_cleanup(lambda: gc.callbacks.remove(first_full_collection))

def pytest_unconfigure(config):
    STATES["unconfigure"] = gc.isenabled()
    # Written when the run is over (after pytest's own collection at unconfigure).
    config.add_cleanup(_write)

def pytest_report_header(config):
    STATES["start"] = gc.isenabled()
"""


def _run(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)
    states: dict[str, object] = json.loads((pytester.path / "gc_states.json").read_text())
    return states


def test_the_collector_waits_from_the_summary_to_unconfigure_then_runs_again(
    pytester: pytest.Pytester,
) -> None:
    assert gc.isenabled()
    states = _run(pytester, "--carbon", "--carbon-idle=off")
    assert states["start"] is True
    assert states["after summary"] is False  # held: the records were built and read
    assert states["unconfigure"] is False
    # The first full collection after the summary is pytest's own, at unconfigure: the
    # records were let go before it, and no automatic one ran before it.
    assert states["full"] == {"records kept": False, "collector on": False}
    assert gc.isenabled()


def test_a_run_without_records_leaves_the_collector_alone(pytester: pytest.Pytester) -> None:
    states = _run(pytester)
    assert states["start"] and states["after summary"] and states["unconfigure"]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(pytester: pytest.Pytester) -> None:
    gc.disable()
    try:
        states = _run(pytester, "--carbon", "--carbon-idle=off")
        assert states["start"] is False and states["after summary"] is False
        assert not gc.isenabled()  # not turned on by the plugin's release
    finally:
        gc.enable()
