"""Benchmark integrity: the measurement loop cannot be remembered, forged or fooled.

Issue 12's gaming tricks, each either failing the measurement (incorrect, protocol
violation) or shown, by structural facts that cannot flake, to be measured like its
honest equivalent (fresh code and arguments for every call, every process counted, the
parent's clock). The energy ratios themselves are in benchmarks/bench_integrity.py:
ratios between real measurements are never asserted here.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from pytest_carbon.measure.meter import Meter
from pytest_carbon.sandbox.isolation import SandboxError, run_processes
from pytest_carbon.sandbox.measure import (
    BASELINE_ROUNDS,
    ProtocolViolation,
    Side,
    WorkloadCrashed,
    WorkloadIncorrect,
    WorkloadTimeout,
    compare,
    failure,
    same,
)

REF = "def f(xs):\n    return sorted(xs)\n"
CALLS = [([[3, 1, 2]], {}), ([[9, 8, 7, 6]], {})]


def side(code: str, meter: Meter, entry: str = "f") -> Side:
    return Side(
        "candidate",
        code,
        entry,
        meter=meter,
        key="t",
        round_timeout_s=10,
        total_timeout_s=60,
    )


def payload(calls: list = CALLS) -> list[dict]:
    return [{"args": a, "kwargs": k} for a, k in calls]


def assert_gone(run_id: str) -> None:
    assert run_processes(run_id) == []


# -- fresh code, fresh arguments, fresh process ------------------------------------------
PROBE = """
import functools, os, sys
_m = sys.modules.setdefault("_probe", type(sys)("_probe"))
_m.loads = getattr(_m, "loads", 0) + 1
_memo = {}

@functools.lru_cache(maxsize=None)
def _cached(t):
    return sum(t)

def f(xs):
    seen = list(xs)
    xs.pop()  # consume the input
    _memo[len(_memo)] = 1
    return [_m.loads, _cached(tuple(seen)), _cached.cache_info().hits, len(_memo), seen,
            os.getpid()]
"""


def test_every_call_gets_fresh_code_and_fresh_arguments_and_each_round_a_fresh_process() -> None:
    meter = Meter()
    s = side(PROBE, meter)
    try:
        pids = set()
        for _ in range(2):
            rnd, results = s.run_round(payload())
            assert rnd.calls == len(results) == 2
            for j, text in enumerate(results):
                loads, _total, hits, memo, seen, pid = json.loads(text)
                assert loads == j + 1  # the module was loaded anew for this call
                assert hits == 0  # so the lru_cache started empty ...
                assert memo == 1  # ... and so did the module-level dict
                assert seen == CALLS[j][0][0]  # its own input, untouched by anyone
                pids.add(pid)
        assert len(pids) == 2  # one worker process per round
    finally:
        s.close()
    assert_gone(s.run_id)


LEFTOVERS = """
import gc, glob, os
def f(token):
    # What an earlier round could have left: files in every writable place, SysV shared
    # memory, and strings in this process's memory (an inherited copy of the runner's).
    found = sorted(glob.glob("/tmp/meter-*") + glob.glob("meter-*")
                   + glob.glob("/dev/shm/meter-*"))
    strings = sorted({o for o in gc.get_objects() if isinstance(o, str)
                      and o.startswith("RESULT-") and o != "RESULT-" + token})
    shm = open("/proc/sysvipc/shm").read().splitlines()[1:]
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    for where in ("/tmp", ".", "/dev/shm"):
        try:
            with open(os.path.join(where, "meter-" + token), "w") as out:
                out.write(token)
        except OSError:
            pass
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.shmget(0x4D455452, 4096, 0o1666)  # IPC_CREAT | 0666
    except OSError:
        pass
    return {"found": found, "strings": strings, "shm": len(shm), "fds": fds,
            "token": "RESULT-" + token}
"""


def test_a_round_finds_nothing_an_earlier_round_left() -> None:
    from pytest_carbon.sandbox.isolation import isolation

    meter = Meter()
    s = side(LEFTOVERS, meter)
    try:
        for k in range(3):
            _, results = s.run_round(payload([([f"{k}-{j}"], {}) for j in range(2)]))
            first, second = (json.loads(t) for t in results)
            assert first["strings"] == [] and first["found"] == []
            # Within a round, what the first call left is there (one process).
            assert second["found"] and all(p.endswith("meter-" + f"{k}-0") for p in second["found"])
            if isolation().mode == "namespaces":
                assert first["shm"] == 0  # the previous round's segment was removed
            # Only stdout, stderr and the worker's own report pipe (and the descriptor
            # listing them): no descriptor reaches the runner's control channel.
            assert len(set(first["fds"]) - {1, 2, 3}) == 1
    finally:
        s.close()
    assert_gone(s.run_id)


def test_workers_are_pinned_with_their_runner() -> None:
    # Both sides' workers run on the CPU the comparison pinned, as the runner does: the
    # zygote that forks them is pinned too.
    code = "import os\ndef f(xs):\n    return sorted(os.sched_getaffinity(0))\n"
    s = side(code, Meter())
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        assert s.pin(cpu)
        _, results = s.run_round(payload())
    finally:
        s.close()
    assert [json.loads(t) for t in results] == [[cpu], [cpu]]


def test_the_round_count_and_durations_come_from_the_parent() -> None:
    meter = Meter()
    # The code patches the clock the worker could use: the parent's window is unaffected.
    code = "import time\ntime.perf_counter = lambda: 0.0\n" + REF
    s = side(code, meter)
    try:
        rnd, results = s.run_round(payload())
    finally:
        s.close()
    assert rnd.calls == len(results) == 2
    assert rnd.measurement.duration_s > 0
    assert 0 < rnd.window_s <= rnd.measurement.duration_s


# -- processes the code starts -------------------------------------------------------------
FORKED_WORKER = """
import os, time
_pid = os.fork()
if _pid == 0:  # a long-lived worker doing the real work, started at load time
    while True:
        pass
def f(xs):
    # Return once the worker has used 50 ms of CPU (5 clock ticks), however long a busy
    # machine takes to give it that: the CPU counted below is then there on any machine.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4:
        with open(f"/proc/{_pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if int(fields[11]) + int(fields[12]) >= 5:
            break
        time.sleep(0.005)
    return sorted(xs)
"""


def test_a_worker_that_outlives_the_call_is_killed_counted_and_reported() -> None:
    meter = Meter()
    s = side(FORKED_WORKER, meter)
    try:
        rnd, _ = s.run_round(payload())
    finally:
        s.close()
    assert rnd.killed >= 1
    # The code itself sleeps until its forked worker has used 50 ms of CPU; that CPU is
    # in the round: the worker was reaped by the runner before the window closed.
    assert rnd.runner_cpu_s >= 0.04
    assert s.result.killed >= 1
    s.result.finish("candidate", s.guard)
    assert any("outlived their round" in n for n in s.result.notes)
    assert_gone(s.run_id)


SIGCHLD_IGNORED = """
import os, signal
def f(xs):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel: uncounted
    if os.fork() == 0:
        sum(range(10**6))
        os._exit(0)
    return sorted(xs)
"""


def test_ignoring_sigchld_to_hide_children_fails_the_measurement() -> None:
    meter = Meter()
    s = side(SIGCHLD_IGNORED, meter)
    try:
        with pytest.raises(SandboxError, match="Operation not permitted"):
            s.run_round(payload())
    finally:
        s.close()
    assert_gone(s.run_id)


# -- results checked while measuring ---------------------------------------------------------
DETECTS_FRAME = """
import inspect
def f(xs):
    if any(fr.function == "worker_round" for fr in inspect.stack()):
        return []  # measured: skip the work
    return sorted(xs)
"""
DETECTS_MARKER = """
import os
def f(xs):
    if os.environ.get("PYTEST_CARBON_SANDBOX") and len(xs) > 3:
        return xs  # a guess at which inputs are the workload's
    return sorted(xs)
"""
FAKE_EQ = """
class Always(list):
    def __eq__(self, other):
        return True
def f(xs):
    return Always(sorted(xs))
"""


@pytest.mark.parametrize("code", [DETECTS_FRAME, DETECTS_MARKER, FAKE_EQ])
def test_answers_that_change_when_measured_are_incorrect(code: str) -> None:
    meter = Meter()
    with pytest.raises(WorkloadIncorrect) as info:
        compare(
            code,
            REF,
            "f",
            CALLS,
            meter=meter,
            key="x",
            precision=0.05,
            max_time_s=3,
            timeout_s=10,
        )
    case = info.value.case
    assert case["input"] in (0, 1) and case["expect"] == sorted(case["args"][0])
    assert failure(info.value)[0] is False
    assert_gone(info.value.run_id)


def test_plain_comparison_never_runs_candidate_code() -> None:
    assert same([1, 2.0, {"a": True}], [1, 2, {"a": True}])
    assert not same(True, 1)  # a bool is not a number here
    assert not same({"<type>": "__candidate__.Always", "repr": "[1]"}, [1])
    assert same(0.1 + 0.2, 0.3) and not same(0.31, 0.3)


# -- the protocol ------------------------------------------------------------------------
FORGER = """
import json, os
def f(xs):
    for fd in range(3, 64):  # forged replies, on every descriptor the code can reach
        for msg in ({"type": "ran", "calls": 10**6, "claimed_s": 0.0, "results": []},
                    {"type": "done", "seq": 2, "calls": 10**6, "cpu_s": 0}):
            try:
                os.write(fd, (json.dumps(msg) + "\\n").encode())
            except OSError:
                pass
    return sorted(xs)
"""


def test_forged_control_messages_are_a_protocol_violation() -> None:
    meter = Meter()
    s = side(FORGER, meter)
    try:
        with pytest.raises(ProtocolViolation, match="protocol violation"):
            s.run_round(payload())
    finally:
        s.close()
    assert_gone(s.run_id)


def test_a_message_out_of_turn_on_the_control_channel_is_a_protocol_violation() -> None:
    meter = Meter()
    s = side(REF, meter)
    try:
        s.run_round(payload())
        # As if the child had written one more message after its reply.
        s.child._ctl_buf += b'{"type": "done", "seq": 3, "calls": 1000000}\n'
        with pytest.raises(ProtocolViolation, match="expected 'prepared'"):
            s.run_round(payload())
    finally:
        s.close()
    assert_gone(s.run_id)


# -- interleaving -------------------------------------------------------------------------
def _costly(factor: int) -> str:
    """A workload whose cost is set by ``factor``, with the reference's answer."""
    return (
        f"def f(xs):\n    for _ in range({factor} * 200):\n        s = sorted(xs)\n    return s\n"
    )


@pytest.mark.slow  # the AB/BA loop itself: test_paired, scripted
def test_candidate_and_reference_alternate_ab_ba_until_the_time_cap() -> None:
    meter = Meter()
    ticks = itertools.count()
    # A scripted clock: one second per reading, so the 8 s cap ends the comparison after
    # a known number of pairs whatever the machine's speed.
    c = compare(
        _costly(3),
        _costly(1),
        "f",
        CALLS,
        meter=meter,
        key="order",
        precision=0.0,
        max_time_s=8,
        timeout_s=10,
        clock=lambda: float(next(ticks)),
    )
    assert c.orders == ["AB", "BA", "AB", "BA", "AB", "BA", "AB"]
    assert "time cap" in c.stopped
    assert len(c.candidate.rounds) == len(c.reference.rounds) == 7
    assert {r.calls for r in c.candidate.rounds} == {c.candidate.calls_per_round}
    assert {r.calls for r in c.reference.rounds} == {c.reference.calls_per_round}
    # Every result of every candidate round, calibration included, was compared.
    assert c.checked_calls >= sum(r.calls for r in c.candidate.rounds) + 1
    assert c.candidate.baseline.rounds == 2 * BASELINE_ROUNDS
    assert c.energy is not None and c.energy.pairs == 7
    comparison = c.reference_comparison()
    assert comparison is not None
    assert comparison["precision_target"] == 0.0 and comparison["stopped"] == c.stopped


FORGED_REPORT = """
import json, os, sys
def f(xs):
    # Forge the worker's report (it shares the worker's process, so it can): COUNT
    # results, none of them computed by a call.
    n = len(sys._getframe(1).f_locals["inputs"])
    report = {"type": "ran", "results": [json.dumps([1, 2, 3])] * COUNT}
    os.write(3, (json.dumps(report) + "\\n").encode())
    os._exit(0)
"""


def test_a_forged_report_cannot_add_calls() -> None:
    # A round's calls are the results that came back, each one for an input it was given:
    # 443 results for 2 inputs is a protocol violation, whatever the report says.
    meter = Meter()
    s = side(FORGED_REPORT.replace("COUNT", "443"), meter)
    try:
        with pytest.raises(ProtocolViolation, match="443 results came back for 2 inputs"):
            s.run_round(payload())
    finally:
        s.close()
    assert_gone(s.run_id)


def test_every_result_of_every_round_is_checked_calibration_included() -> None:
    # As many forged results as inputs: the first round (calibration, one input, [3, 1, 2])
    # happens to be right, the next has a second input whose answer is not [1, 2, 3].
    meter = Meter()
    with pytest.raises(WorkloadIncorrect) as info:
        compare(
            FORGED_REPORT.replace("COUNT", "n"),
            REF,
            "f",
            CALLS,
            meter=meter,
            key="forged",
            precision=0.05,
            max_time_s=3,
            timeout_s=10,
        )
    assert info.value.case["input"] == 1 and info.value.case["got"] == [1, 2, 3]
    assert failure(info.value)[0] is False
    assert_gone(info.value.run_id)


def test_a_crash_or_timeout_while_measured_is_not_correct() -> None:
    meter = Meter()
    crash = "def f(xs):\n    if len(xs) == 4:\n        raise ValueError('workload only')\n"
    crash += "    return sorted(xs)\n"
    with pytest.raises(WorkloadCrashed, match="workload only") as info:
        compare(
            crash,
            REF,
            "f",
            CALLS,
            meter=meter,
            key="crash",
            precision=0.05,
            max_time_s=3,
            timeout_s=10,
        )
    assert failure(info.value) == (False, None, "workload failed")
    hang = "import time\ndef f(xs):\n    if len(xs) == 4:\n        time.sleep(60)\n"
    hang += "    return sorted(xs)\n"
    with pytest.raises(WorkloadTimeout) as timed:
        compare(
            hang,
            REF,
            "f",
            CALLS,
            meter=meter,
            key="hang",
            precision=0.05,
            max_time_s=3,
            timeout_s=1,
        )
    assert failure(timed.value) == (False, None, "workload timed out")
    assert_gone(timed.value.run_id)


def test_a_failure_of_the_references_side_says_nothing_of_the_answer() -> None:
    meter = Meter()
    broken = "def f(xs):\n    raise RuntimeError('reference broken')\n"
    with pytest.raises(WorkloadCrashed, match="reference broken") as info:
        compare(
            REF,
            broken,
            "f",
            CALLS,
            meter=meter,
            key="ref",
            precision=0.05,
            max_time_s=3,
            timeout_s=10,
        )
    assert failure(info.value)[0] is None


def test_float_results_use_the_tasks_tolerance() -> None:
    assert not same(1.0, 1.001)
    assert same(1.0, 1.001, tol=0.01)
    assert same([{"x": 2.0}], [{"x": 2.005}], tol=0.01)


def test_the_runs_cgroup_cpu_time_is_read_where_the_sandbox_has_one(tmp_path: Path) -> None:
    from pytest_carbon.sandbox.measure import cgroup_cpu_s

    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")

    class WithCgroup:
        cgroup = str(tmp_path)

    class Without:
        pass

    assert cgroup_cpu_s(WithCgroup()) == pytest.approx(2.5)  # type: ignore[arg-type]
    assert cgroup_cpu_s(Without()) is None  # type: ignore[arg-type]
