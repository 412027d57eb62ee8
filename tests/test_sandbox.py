"""The sandbox runs generated code in a contained child: verdicts, hostile code, workloads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from listener import accepting

from pytest_carbon.measure.meter import Meter
from pytest_carbon.sandbox import isolation as sandbox
from pytest_carbon.sandbox.isolation import (
    MARKER,
    Limits,
    SandboxError,
    isolation,
    kill_run,
    run_processes,
)
from pytest_carbon.sandbox.measure import WorkloadTimeout
from pytest_carbon.sandbox.verify import run_workload, verify

HOSTILE = Path(__file__).with_name("hostile")
SMALL = Limits(memory_bytes=256 * 1024**2)

ADD = "def add(a, b):\n    return a + b\n"


def hostile(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def assert_no_leftovers(run_id: str) -> None:
    assert run_id
    assert run_processes(run_id) == []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def require_containment() -> None:
    iso = isolation()
    if iso.mode == "none":
        pytest.skip(f"this machine offers no containment for this case: {iso.detail}")


# -- verdicts ------------------------------------------------------------------------------
def test_correct_code_passes_and_output_is_captured() -> None:
    code = "def add(a, b):\n    print('adding', a, b)\n    return a + b\n"
    r = verify(code, "add", [{"args": [1, 2], "expect": 3}, {"args": [-1, 1], "expect": 0}], None)
    assert r.passed, r.message
    assert r.failed_case is None and r.message == ""
    assert r.stdout == "adding 1 2\nadding -1 1\n"
    assert not r.timed_out and r.duration_s > 0
    assert r.isolation == isolation().mode
    assert_no_leftovers(r.run_id)


def test_wrong_answer_reports_the_first_failing_case() -> None:
    code = "def add(a, b):\n    return a * b\n"
    tests = [
        {"args": [2, 2], "expect": 4},
        {"args": [2, 3], "expect": 5},
        {"args": [1, 1], "expect": 2},
    ]
    r = verify(code, "add", tests, None)
    assert not r.passed
    assert r.failed_case == {
        "index": 1,
        "args": [2, 3],
        "kwargs": {},
        "expect": 5,
        "got": "6",
        "error": None,
        "difference": "got 6 (int), expected 5 (int)",
    }
    assert "Case 1" in r.message and "add(2, 3) returned 6, expected 5" in r.message


def test_exception_in_the_candidate_is_a_failure_with_its_traceback() -> None:
    code = "def inv(x):\n    return 1 / x\n"
    r = verify(code, "inv", [{"args": [2], "expect": 0.5}, {"args": [0], "expect": 0}], None)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case["index"] == 1
    assert r.failed_case["got"] is None
    assert "ZeroDivisionError" in r.failed_case["error"]
    assert "return 1 / x" in r.failed_case["error"]  # the candidate's own line is shown
    assert "raised ZeroDivisionError" in r.message


@pytest.mark.parametrize(
    ("code", "needle"),
    [("def add(a, b) return a\n", "SyntaxError"), ("def plus(a, b):\n    return a\n", "add")],
    ids=["syntax-error", "missing-entry-point"],
)
def test_code_that_cannot_be_defined_fails(code: str, needle: str) -> None:
    r = verify(code, "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case["define"] is True
    assert needle in r.failed_case["error"] and needle in r.message


@pytest.mark.parametrize(
    ("check", "passed"),
    [
        ("def check(candidate):\n    assert candidate(2, 3) == 5\n", True),
        ("def check(candidate):\n    assert candidate(2, 3) == 6, 'want six'\n", False),
        ("assert candidate(10, 5) == 15\nassert candidate('a', 'b') == 'ab'\n", True),
        ("assert candidate(10, 5) == 15\nassert candidate(1, 1) == 3\n", False),
    ],
    ids=["def-pass", "def-fail", "bare-pass", "bare-fail"],
)
def test_check_as_function_or_bare_assertions(check: str, passed: bool) -> None:
    r = verify(ADD, "add", [{"args": [1, 2], "expect": 3}], check)
    assert r.passed is passed, r.message
    if not passed:
        assert r.failed_case is not None and r.failed_case["check"] is True
        assert "AssertionError" in r.failed_case["error"]
        assert r.message.startswith("The check failed")


def test_check_runs_only_after_all_cases_pass() -> None:
    r = verify(ADD, "add", [{"args": [1, 2], "expect": 4}], "assert False, 'never reached'")
    assert r.failed_case is not None and r.failed_case["index"] == 0


def test_the_check_runs_with_the_references_globals_and_a_proxy_for_the_answer() -> None:
    reference = "def twice(x):\n    return 2 * x\n\ndef double(x):\n    return twice(x)\n"
    check = (
        "def check(candidate):\n"
        "    assert candidate(3) == twice(3)\n"  # a helper of the reference's
        "    assert double(4) == 8\n"  # the entry point's name is the answer too
    )
    answer = "def double(x):\n    return x + x\n"  # defines no `twice`
    assert verify(answer, "double", [], check, reference=reference).passed
    # `double` by name is the answer, not the reference's function.
    wrong = "def double(x):\n    return 8 if x == 3 else 0\n"
    r = verify(wrong, "double", [], "assert double(4) == 8\n", reference=reference)
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["values"] == ["double(4) is 0 (int)", "8 is 8 (int)"], r.message


def test_the_check_sees_the_answers_builtin_exceptions_and_their_failures() -> None:
    answer = "def inv(x):\n    if x == 0:\n        raise ValueError('zero')\n    return 1 / x\n"
    expecting = (
        "try:\n    candidate(0)\n    raise AssertionError('no error')\n"
        "except ValueError:\n    pass\n"
    )
    assert verify(answer, "inv", [], expecting).passed
    r = verify(answer, "inv", [], "assert candidate(0) == 0\n")
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["call"] == "candidate(0)" and "ValueError: zero" in r.message, r.message
    r = verify("import sys\ndef inv(x):\n    sys.exit(3)\n", "inv", [], expecting)
    assert not r.passed and "calling sys.exit is a failure" in r.message, r.message


@pytest.mark.slow  # waits out its 3 s deadline
def test_an_answer_that_hangs_in_a_call_of_the_check_times_out_naming_it() -> None:
    answer = "def f(x):\n    while x == 7:\n        pass\n    return x\n"
    r = verify(answer, "f", [{"args": [1], "expect": 1}], "assert candidate(7) == 7\n", timeout_s=3)
    assert not r.passed and r.timed_out
    assert r.failed_case is not None and r.failed_case["call"] == "f(7)", r.message
    assert "during the check, in f(7)" in r.message


@pytest.mark.parametrize(
    ("case", "passed"),
    [
        ({"args": [0.1, 0.2], "expect": 0.3}, True),  # rel 1e-9 by default
        ({"args": [0.1, 0.2], "expect": 0.3000001}, False),
        ({"args": [0.1, 0.2], "expect": 0.3001, "tol": 1e-3}, True),
        ({"args": [0.1, 0.2], "expect": 0.302, "tol": 1e-3}, False),
        ({"args": [[0.1], [0.2]], "expect": [0.1, 0.2]}, True),  # lists concatenate
        ({"args": [1, 2], "expect": 3.0}, True),  # an int answer equals a float expectation
        # ... only when the float is exactly that integer: tol is for floats only.
        ({"args": [1, 2], "expect": 3.0001, "tol": 1e-3}, False),
        ({"args": [1.0, 2], "expect": 3.0001, "tol": 1e-3}, True),
        ({"args": [float("nan"), 1.0], "expect": float("nan")}, True),
    ],
)
def test_float_tolerance(case: dict[str, Any], passed: bool) -> None:
    r = verify(ADD, "add", [case], None)
    assert r.passed is passed, r.message


def test_a_bool_does_not_match_a_float() -> None:
    r = verify("def f():\n    return True\n", "f", [{"args": [], "expect": 1.0}], None)
    assert not r.passed and r.failed_case is not None and r.failed_case["got"] == "True"


def test_tuples_compare_equal_to_lists_and_kwargs_are_passed() -> None:
    code = "def pair(a, *, b):\n    return (a, (b, {'k': (1, 2)}))\n"
    r = verify(
        code, "pair", [{"args": [1], "kwargs": {"b": 2}, "expect": [1, [2, {"k": [1, 2]}]]}], None
    )
    assert r.passed, r.message


def test_bad_test_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="test case 0 has no 'expect'"):
        verify(ADD, "add", [{"args": [1, 2]}], None)
    with pytest.raises(ValueError, match="unknown keys"):
        verify(ADD, "add", [{"args": [1, 2], "expect": 3, "want": 3}], None)
    with pytest.raises(ValueError, match="identifier"):
        verify(ADD, "add me", [], None)
    with pytest.raises(ValueError, match="JSON/YAML values"):
        verify(ADD, "add", [{"args": [object()], "expect": 3}], None)


def test_environment_is_scrubbed_and_hash_seed_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_CARBON_SECRET_PROBE", "leak")
    code = "import os\ndef env():\n    return [sorted(os.environ), hash('pytest-carbon')]\n"
    seeded = subprocess.run(
        [sys.executable, "-c", "print(hash('pytest-carbon'))"],
        env={"PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    names = sorted([*sandbox.ENV_ALLOW, "HOME", "TMPDIR", MARKER])
    r = verify(code, "env", [{"args": [], "expect": [names, int(seeded.stdout)]}], None)
    assert r.passed, r.message


def test_working_directory_is_private_and_removed() -> None:
    code = (
        "import os\n"
        "def where():\n"
        "    open('scratch.txt', 'w').write('x')\n"
        "    print(os.getcwd())\n"
        "    return os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR']\n"
    )
    r = verify(code, "where", [{"args": [], "expect": True}], None)
    assert r.passed, r.message
    workdir = r.stdout.strip()
    assert "pytest-carbon-sandbox-" in workdir
    assert not os.path.exists(workdir)


def test_file_size_limit() -> None:
    code = "def big():\n    open('big.bin', 'wb').write(b'x' * (2 * 1024 * 1024))\n    return 1\n"
    limits = Limits(file_bytes=1024 * 1024)
    r = verify(code, "big", [{"args": [], "expect": 1}], None, limits=limits)
    assert not r.passed
    assert "File too large" in r.message


def test_kill_run_sweeps_marked_processes_outside_any_namespace() -> None:
    # The fallback for machines without namespaces: find a run's processes by its marker.
    run_id = uuid.uuid4().hex
    proc = subprocess.Popen(
        ["sleep", "30"], env={"PATH": "/usr/bin:/bin", MARKER: run_id}, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 5
        while proc.pid not in run_processes(run_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run_processes(run_id) == [proc.pid]
        kill_run(run_id)
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert run_processes(run_id) == []
    finally:
        proc.kill()
        proc.wait()


def test_fallback_without_namespaces_still_sweeps_escaped_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on a machine without unshare(1): the uid mode (root, interpreter readable by
    # uid 65534) or no containment; a setsid grandchild must still be found and killed.
    monkeypatch.setattr(sandbox, "_unshare", lambda: None)
    monkeypatch.setattr(sandbox, "_isolation_cache", {})
    iso = isolation()
    assert iso.mode in ("uid", "none") and not iso.network_cut
    assert "no unshare" in iso.detail or iso.mode == "uid"
    r = verify(ADD, "add", [{"args": [1, 2], "expect": 3}], None)
    assert r.passed and r.isolation == iso.mode and not r.network_cut
    t0 = time.monotonic()
    r = verify(hostile("detached_grandchild"), "run", [{"args": [], "expect": 1}], None)
    assert r.passed, r.message
    assert time.monotonic() - t0 < 30  # not the grandchild's 60 s sleep (half: a busy machine)
    assert_no_leftovers(r.run_id)


def test_isolation_is_probed_and_described() -> None:
    iso = isolation()
    assert iso.mode in ("namespaces", "uid", "none")
    assert iso.detail
    if iso.mode == "namespaces":
        assert iso.network_cut and iso.notes.get("read_only") and iso.notes.get("caps_dropped")
        for name in ("user", "pid", "net", "ipc", "mnt"):
            assert f"{name}-namespace" in iso.active, iso.missing
        assert {"read-only-fs", "minimal-dev", "private-tmp"} <= set(iso.active)
    # Every protection is either active or missing with a reason; "rlimits" always holds.
    assert "rlimits" in iso.active
    assert all(reason.strip() for reason in iso.missing.values())
    assert set(iso.active).isdisjoint(iso.missing)


# -- hostile code ------------------------------------------------------------------------------
def test_infinite_loop_times_out_and_is_killed() -> None:
    r = verify(hostile("infinite_loop"), "run", [{"args": [], "expect": 1}], None, timeout_s=1)
    assert not r.passed and r.timed_out
    assert r.failed_case is not None and r.failed_case["index"] == 0
    assert "timed out after 1 s" in r.message
    assert r.duration_s < 30  # killed, not left looping (a wide bound: a busy machine)
    assert_no_leftovers(r.run_id)


def test_memory_bomb_is_reported() -> None:
    r = verify(hostile("memory_bomb"), "run", [{"args": [], "expect": 1}], None, limits=SMALL)
    assert not r.passed and not r.timed_out
    assert "MemoryError" in r.message or "killed" in r.message
    assert_no_leftovers(r.run_id)


def test_fork_bomb_is_contained() -> None:
    r = verify(hostile("fork_bomb"), "run", [{"args": [], "expect": 1}], None, timeout_s=1.5)
    assert not r.passed
    assert_no_leftovers(r.run_id)
    # pytest can still start processes.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_files_outside_the_sandbox_survive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_containment()
    canaries = [
        tmp_path / "pytest_carbon_canary.txt",
        Path(f"/tmp/pytest_carbon_canary_{uuid.uuid4().hex}"),
    ]
    tree = tmp_path / "pytest_carbon_canary_dir"
    tree.mkdir()
    canaries.append(tree / "keep.txt")
    for c in canaries:
        c.write_text("still here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        r = verify(hostile("delete_outside"), "run", [{"args": [], "expect": 0}], None)
        assert all(c.read_text() == "still here" for c in canaries)
        assert r.passed, r.message + r.stdout  # it deleted nothing
        assert_no_leftovers(r.run_id)
    finally:
        canaries[1].unlink(missing_ok=True)


def test_the_api_key_never_reaches_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    require_containment()
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    # /proc/<pid>/environ shows a process's environment at exec: a decoy started with
    # the key is what a process scan could find.
    decoy = subprocess.Popen(["sleep", "30"], env={"OPENAI_API_KEY": secret})
    try:
        r = verify(hostile("read_secret"), "run", [{"args": [], "expect": 0}], None)
        assert secret not in r.stdout and secret not in r.stderr
        assert "OPENAI_API_KEY" not in r.stdout
        assert r.passed, r.message  # it found the key nowhere
        assert_no_leftovers(r.run_id)
    finally:
        decoy.kill()
        decoy.wait()


def test_the_code_cannot_kill_pytest_or_other_processes() -> None:
    require_containment()
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "pytest-decoy"])
    try:
        r = verify(hostile("kill_parent"), "run", [{"args": [], "expect": 1}], None)
        # Under another uid the kill fails (EPERM) and the code returns; in a pid
        # namespace its parent is pid 0, so it kills its own group and the run fails.
        assert r.passed or "SIGKILL" in r.message, r.message
        assert "'killed'" not in r.stdout  # no kill of a pytest process succeeded
        assert alive(os.getpid()) and alive(decoy.pid)
        assert_no_leftovers(r.run_id)
    finally:
        decoy.kill()
        decoy.wait()


def test_huge_output_is_capped_without_hanging() -> None:
    limits = Limits(output_bytes=64 * 1024)
    r = verify(hostile("huge_output"), "run", [{"args": [], "expect": 1}], None, limits=limits)
    assert r.passed, r.message
    for text in (r.stdout, r.stderr):
        assert text.startswith("y" * 1000)
        assert len(text) < 64 * 1024 + 200
        assert "more bytes of" in text
    assert r.duration_s < 15
    assert_no_leftovers(r.run_id)


def test_a_detached_grandchild_does_not_outlive_the_run() -> None:
    t0 = time.monotonic()
    r = verify(hostile("detached_grandchild"), "run", [{"args": [], "expect": 1}], None)
    assert r.passed, r.message
    assert time.monotonic() - t0 < 30  # nobody waited for its 60 s sleep (half of it: load)
    assert_no_leftovers(r.run_id)


def test_a_detached_grandchild_without_the_marker_is_killed_too() -> None:
    if isolation().mode != "namespaces":
        pytest.skip("only a pid namespace finds a descendant that cleared its environment")
    r = verify(hostile("detached_no_marker"), "run", [{"args": [], "expect": 1}], None)
    assert r.passed, r.message
    left = []
    for pid in sandbox._proc_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"61.4937" in f.read() and alive(int(pid)):
                    left.append(int(pid))
        except OSError:
            continue
    assert left == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [("sys_exit", "sys.exit"), ("os_exit", "without reporting a result")],
)
def test_exiting_instead_of_answering_is_a_failure(name: str, needle: str) -> None:
    r = verify(hostile(name), "run", [{"args": [], "expect": None}], None)
    assert not r.passed
    assert needle in r.message
    assert_no_leftovers(r.run_id)


def test_sys_exit_in_check_is_a_failure() -> None:
    r = verify(ADD, "add", [], "import sys\nsys.exit(0)\n")
    assert not r.passed and r.failed_case is not None
    assert r.failed_case == {"check": True, "error": r.failed_case["error"]}
    assert "sys.exit" in r.message


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("recursion_error", ("RecursionError",)),
        pytest.param(
            "recursion_segfault",
            ("SIGSEGV", "RecursionError", "MemoryError"),
            marks=pytest.mark.slow,  # recursing until the stack is gone: seconds of CPU
        ),
    ],
)
def test_recursion_crash_is_reported(name: str, needles: tuple[str, ...]) -> None:
    r = verify(hostile(name), "run", [{"args": [], "expect": 1}], None, timeout_s=10)
    assert not r.passed and not r.timed_out
    assert any(n in r.message for n in needles), r.message
    assert_no_leftovers(r.run_id)


def test_socket_to_localhost_is_blocked_when_the_network_is_cut() -> None:
    if not isolation().network_cut:
        pytest.skip("no network namespace here: the code can reach 127.0.0.1 (documented)")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        with accepting(server) as received:
            r = verify(
                hostile("socket_localhost"), "run", [{"args": [port], "expect": "sent"}], None
            )
    assert not r.passed
    assert r.failed_case is not None and "OSError" in r.failed_case["got"]
    assert received == []


# -- workloads -----------------------------------------------------------------------------
def test_workload_rounds_time_and_energy_split() -> None:
    meter = Meter()
    w = run_workload(ADD, "add", [1, 2], {}, min_time_s=0.05, timeout_s=10, meter=meter, key="w")
    m = w.measurement
    assert m.duration_s >= 0.05
    # One input: one call per process (never served twice to one process), so a round of
    # a sub-microsecond call is as many fresh workers as fit in the round.
    assert w.batch_size >= 1 and w.rounds >= len(w.per_call_energy_j)
    assert len(w.per_call_energy_j) == len(w.per_call_duration_s) >= 2  # one per round
    assert w.rounds >= w.batch_size  # every call made in the windows
    # Per-call figures are the parent's window divided by the round's calls.
    assert all(0 < d < m.duration_s for d in w.per_call_duration_s)
    assert all(e > 0 for e in w.per_call_energy_j)
    assert set(m.method.values()) == {"estimated"}
    assert_no_leftovers(w.run_id)


WORK = "def work(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n"


def _calibrate_n(target_cpu_s: float) -> int:
    ns: dict[str, Any] = {}
    exec(WORK, ns)
    n = 200_000
    t0 = time.process_time()
    ns["work"](n)
    dt = max(time.process_time() - t0, 1e-4)
    return max(int(n * target_cpu_s / dt), 10_000)


def test_the_childs_cpu_time_is_in_the_window() -> None:
    meter = Meter()
    call_cpu_s = 0.03
    n = _calibrate_n(call_cpu_s)
    w = run_workload(WORK, "work", [n], {}, min_time_s=0.2, timeout_s=30, meter=meter, key="s")
    # The worker of each round is reaped before its window closes: its CPU time, read by
    # the estimate from /proc, is the windows' (this process mostly waits). CPU time, not
    # wall time: a loaded machine stretches the windows, not the work's CPU seconds.
    assert w.rounds >= 2
    assert w.measurement.cpu_time_s > 0.5 * w.rounds * call_cpu_s
    assert w.measurement.energy_j["cpu"] > 0


def test_interpreter_start_up_is_outside_the_window() -> None:
    meter = Meter()
    with meter.measure("whole") as whole:
        w = run_workload(
            ADD, "add", [1, 2], {}, min_time_s=0.001, timeout_s=10, meter=meter, key="in"
        )
    outer = whole.measurement
    assert outer is not None
    # The whole call (interpreter start-up, definition, warm-up, tear-down) costs tens of
    # ms of CPU; the window over a 1 ms loop of a trivial function at most one 10 ms tick.
    assert outer.cpu_time_s > 0.015
    # CPU time, not energy or wall time: a loaded machine stretches the calibrated round
    # but not the CPU the interpreter's start-up costs, which the window must leave out.
    assert outer.cpu_time_s - w.measurement.cpu_time_s > 0.015
    assert w.measurement.duration_s < 0.5 * outer.duration_s


def test_workload_that_raises_is_a_sandbox_error_and_closes_the_window() -> None:
    meter = Meter()
    code = "def f(x):\n    if x == 3:\n        raise ValueError('boom')\n    return x\n"
    with pytest.raises(SandboxError, match="during the workload") as info:
        run_workload(
            code,
            "f",
            [],
            {},
            calls=[([1], {}), ([2], {}), ([3], {})],
            min_time_s=5,
            timeout_s=10,
            meter=meter,
            key="bad",
        )
    assert "ValueError: boom" in str(info.value)
    meter.begin("bad")  # the window was closed: it can be opened again
    meter.end("bad")
    with pytest.raises(SandboxError, match="ZeroDivisionError"):
        run_workload(
            "def f():\n    1 / 0\n",
            "f",
            [],
            {},
            min_time_s=0.1,
            timeout_s=10,
            meter=meter,
            key="bad",
        )


def test_workload_timeout_is_reported_as_a_timeout_with_nothing_left() -> None:
    meter = Meter()
    code = "import time\ndef f(x):\n    if x == 2:\n        time.sleep(60)\n    return x\n"
    with pytest.raises(WorkloadTimeout, match="timed out after 1 s") as info:
        run_workload(
            code,
            "f",
            [],
            {},
            calls=[([1], {}), ([2], {})],
            min_time_s=1,
            timeout_s=1,
            meter=meter,
            key="slow",
        )
    assert_no_leftovers(info.value.run_id)
    meter.begin("slow")
    meter.end("slow")
