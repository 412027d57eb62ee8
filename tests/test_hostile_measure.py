"""Answers that game the measurement (issue 19), through the real sandbox.

Each gamed answer in ``tests/hostile/meter_*.py`` is either judged incorrect (its record
would say ``correct: false``) or measured like its honest twin (the same file with
``CHEAT = False``: the same work and lookups that never hit): the gamed answer is
compared, interleaved, with its twin as the reference, so that both sides of every pair
see the same machine at the same moment and the load cancels; the ratio must lie within
0.8-1.25x (the tricks read 0.0012x to 0.6x before the meter left the candidate's
process). Short comparisons (a few seconds each), a generous band.

Tiers: the fast tier keeps one representative, the forged worker report (a verdict that
does not rest on a ratio); the comparisons against the twins and the workload-only
failures are in the slow tier (``-m slow``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_carbon.measure.meter import Meter
from pytest_carbon.sandbox.isolation import SandboxError, isolation, run_processes
from pytest_carbon.sandbox.measure import (
    ProtocolViolation,
    WorkloadCrashed,
    WorkloadTimeout,
    compare,
    failure,
)

HOSTILE = Path(__file__).with_name("hostile")
#: Six distinct inputs of about a millisecond each.
CALLS = [([20000 + 17 * j], {}) for j in range(6)]
BAND = (0.8, 1.25)


def hostile(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def twin(name: str) -> str:
    """The gamed answer's honest twin: the same file with ``CHEAT = False`` (the same work
    and the same lookups, which never find anything), or the plain honest answer."""
    source = hostile(name)
    if "CHEAT = True" not in source:
        return hostile("meter_honest")
    return source.replace("CHEAT = True", "CHEAT = False")


def measured_against_twin(name: str, calls: list = CALLS) -> float:
    """The paired energy ratio of the gamed answer to its honest twin: one short
    comparison, or, when that one lands outside the band, the median of three (a
    3-second comparison on a loaded 2-core machine read 0.795x once; the tricks this
    corpus defeats read 0.004-0.04x, far outside any noise, so a median cannot hide one).
    """
    first = _one_ratio(name, calls)
    if BAND[0] <= first <= BAND[1]:
        return first
    return sorted([first, _one_ratio(name, calls), _one_ratio(name, calls)])[1]


def _one_ratio(name: str, calls: list) -> float:
    c = compare(
        hostile(name),
        twin(name),
        "f",
        calls,
        meter=Meter(),
        key=name,
        precision=0.05,
        max_time_s=3,
        timeout_s=10,
    )
    assert c.energy is not None
    assert c.checked_calls >= sum(r.calls for r in c.candidate.rounds)
    for run_id in (c.candidate.run_id, c.reference.run_id):
        assert run_processes(run_id) == []
    return c.energy.ratio


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["meter_tmp_cache", "meter_sys_modules_cache", "meter_builtins_cache", "meter_sysv_cache"],
)
def test_a_cache_that_outlives_a_call_is_measured_like_its_honest_twin(name: str) -> None:
    if name == "meter_sysv_cache" and isolation().mode != "namespaces":
        pytest.skip("SysV IPC objects are the sandbox's own only in the namespaces mode")
    ratio = measured_against_twin(name)
    assert BAND[0] <= ratio <= BAND[1], f"{name}: {ratio:.3f}x its honest twin"


@pytest.mark.slow
def test_a_cache_on_a_single_input_workload_is_measured_like_its_honest_twin() -> None:
    # One input: one call per process, so even a builtins cache never hits.
    ratio = measured_against_twin("meter_builtins_cache", calls=[([30000], {})])
    assert BAND[0] <= ratio <= BAND[1], f"{ratio:.3f}x its honest twin"


@pytest.mark.slow
def test_the_previous_rounds_results_are_in_no_workers_memory() -> None:
    ratio = measured_against_twin("meter_inherited_memory")
    assert BAND[0] <= ratio <= BAND[1], f"{ratio:.3f}x its honest twin"


def test_a_forged_worker_report_is_judged_incorrect() -> None:
    with pytest.raises(SandboxError) as info:
        measured_against_twin("meter_forged_report")
    assert isinstance(info.value, ProtocolViolation)
    assert failure(info.value)[0] is False
    assert run_processes(info.value.run_id) == []


# The fast tier's crash and timeout in the workload: test_integrity's
# test_a_crash_or_timeout_while_measured_is_not_correct.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "error", "kind"),
    [
        ("meter_hangs_on_workload", WorkloadTimeout, "workload timed out"),
        ("meter_crashes_on_workload", WorkloadCrashed, "workload failed"),
    ],
)
def test_an_answer_that_fails_only_on_the_workload_is_not_correct(
    name: str, error: type, kind: str
) -> None:
    with pytest.raises(error) as info:
        compare(
            hostile(name),
            hostile("meter_honest"),
            "f",
            CALLS,
            meter=Meter(),
            key=name,
            precision=0.05,
            max_time_s=3,
            timeout_s=1,
        )
    assert failure(info.value) == (False, None, kind)
    assert run_processes(info.value.run_id) == []
