"""The sandbox's escape-proofing (issue 12): each escape of the hostile corpus is blocked,
or, where this machine lacks the mechanism, the doctor says it is missing and why.
Verdicts are on plain data only; the code's control characters never reach a terminal.
Nothing is left behind: no process, IPC object, file, key or cgroup."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from listener import accepting

from pytest_carbon.cli import sandbox as doctor
from pytest_carbon.sandbox import cgroup as cgroups
from pytest_carbon.sandbox.child import plain
from pytest_carbon.sandbox.isolation import Child, Limits, isolation
from pytest_carbon.sandbox.safe_text import escape_controls, has_controls
from pytest_carbon.sandbox.verify import verify

HOSTILE = Path(__file__).with_name("hostile")
SYSCALLS = {"x86_64": {"add_key": 248, "keyctl": 250}, "aarch64": {"add_key": 217, "keyctl": 219}}


def hostile(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def got(r: Any) -> Any:
    """The value a hostile probe returned (it is built to fail its case: expect None)."""
    assert not r.passed, "the probe's case must fail, so that its answer comes back"
    assert r.failed_case is not None and r.failed_case["got"] is not None, r.message
    return eval(r.failed_case["got"], {"__builtins__": {}})  # a repr of plain data


def probe(name: str, *args: Any, entry: str = "run", **kw: Any) -> Any:
    return verify(hostile(name), entry, [{"args": list(args), "expect": None}], None, **kw)


def missing_or(name: str) -> str | None:
    """The doctor's reason when protection ``name`` is missing here, else None."""
    iso = isolation()
    assert name in {p.name for p in iso.protections}, f"the doctor does not know {name}"
    return iso.missing.get(name)


def assert_reported_missing(name: str, reason: str) -> None:
    """Where the machine lacks a mechanism, the doctor must say so, with the reason."""
    assert reason.strip(), f"{name} is missing without a reason"
    report = doctor.survey()
    assert report["missing"][name] == reason
    assert name not in report["active"]
    assert name in doctor._text(report) and reason in doctor._text(report)


# -- keyrings ------------------------------------------------------------------------------
def _keyctl_numbers() -> dict[str, int]:
    numbers = SYSCALLS.get(os.uname().machine)
    if numbers is None:
        pytest.skip(f"no keyctl system call numbers known for {os.uname().machine}")
    return numbers


@pytest.fixture
def parent_key() -> Iterator[tuple[int, str, str]]:
    """A secret in pytest's session keyring; invalidated afterwards (nothing left)."""
    numbers = _keyctl_numbers()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    desc, secret = f"pytest-carbon-{uuid.uuid4().hex}", f"secret-{uuid.uuid4().hex}"
    serial = libc.syscall(
        ctypes.c_long(numbers["add_key"]),
        b"user",
        desc.encode(),
        secret.encode(),
        ctypes.c_size_t(len(secret)),
        ctypes.c_int(-3),  # KEY_SPEC_SESSION_KEYRING
    )
    if serial < 0:
        pytest.skip(f"this kernel refuses keys: {os.strerror(ctypes.get_errno())}")
    try:
        yield int(serial), desc, secret
    finally:
        libc.syscall(ctypes.c_long(numbers["keyctl"]), 21, ctypes.c_long(serial))  # INVALIDATE


def test_a_key_of_pytests_session_cannot_be_read(parent_key: tuple[int, str, str]) -> None:
    serial, desc, secret = parent_key
    out = got(probe("keyring_read", serial, desc))
    text = json.dumps(out)
    session, user = missing_or("session-keyring"), missing_or("user-keyring")
    if session is None and user is None:
        assert secret not in text, out
        assert set(out) == {"by-serial", "session", "user", "user-session"}
    else:
        for name, reason in (("session-keyring", session), ("user-keyring", user)):
            if reason is not None:
                assert_reported_missing(name, reason)


def test_the_runner_joins_a_fresh_session_keyring() -> None:
    _keyctl_numbers()
    notes = isolation().notes
    assert isinstance(notes.get("keyring"), int) and notes["keyring"] > 0, notes.get("keyring")
    assert "session-keyring" in isolation().active


# -- host sockets, FIFOs, devices, vsock ------------------------------------------------
@pytest.fixture
def host_rendezvous() -> Iterator[tuple[str, str, list[bytes]]]:
    """A listening UNIX socket and a FIFO in /tmp, where host services put theirs."""
    d = tempfile.mkdtemp(prefix="pytest-carbon-host-", dir="/tmp")
    sock_path, fifo_path = os.path.join(d, "service.sock"), os.path.join(d, "service.fifo")
    os.mkfifo(fifo_path)
    fifo_fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)  # a reader: opens would work
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen()
    server.settimeout(0.1)
    try:
        with accepting(server) as received:
            yield sock_path, fifo_path, received
            with contextlib.suppress(BlockingIOError):
                received.append(os.read(fifo_fd, 100))
    finally:
        server.close()
        os.close(fifo_fd)
        for p in (sock_path, fifo_path):
            os.unlink(p)
        os.rmdir(d)


def test_host_unix_sockets_and_fifos_are_out_of_reach(
    host_rendezvous: tuple[str, str, list[bytes]],
) -> None:
    sock_path, fifo_path, received = host_rendezvous
    out = got(probe("unix_connect", sock_path, fifo_path))
    reason = missing_or("private-tmp")
    if reason is not None:
        assert_reported_missing("private-tmp", reason)
        return
    assert out == {"socket": "FileNotFoundError", "fifo": "FileNotFoundError"}
    assert received == []


def test_host_devices_cannot_be_opened() -> None:
    out = got(probe("host_devices"))
    reason = missing_or("minimal-dev")
    if reason is not None:
        assert_reported_missing("minimal-dev", reason)
        return
    for path in ("/dev/kmsg", "/dev/tty1", "/dev/kvm", "/dev/mem", "/dev/sda", "/dev/vda"):
        assert out[path] != "opened", (path, out)
    nodes = set(out["listing"]) - {"fd", "stdin", "stdout", "stderr", "shm"}
    assert nodes <= {"null", "zero", "urandom", "random"}, out["listing"]


def test_the_minimal_dev_still_works() -> None:
    code = textwrap.dedent(
        """\
        import os
        def run():
            with open("/dev/null", "w") as f:
                f.write("x")
            with open("/dev/zero", "rb") as f:
                zeros = f.read(4)
            return [len(os.urandom(8)), list(zeros)]
        """
    )
    r = verify(code, "run", [{"args": [], "expect": [8, [0, 0, 0, 0]]}], None)
    assert r.passed, r.message


def test_vsock_is_blocked() -> None:
    out = got(probe("vsock_connect"))
    reason = missing_or("vsock-blocked")
    if reason is not None:
        assert_reported_missing("vsock-blocked", reason)
        return
    assert out.startswith("OSError: [Errno 97]"), out  # EAFNOSUPPORT, from the filter


def test_io_uring_cannot_go_around_the_filter() -> None:
    if "vsock-blocked" in isolation().missing:
        assert_reported_missing("vsock-blocked", isolation().missing["vsock-blocked"])
        return
    code = textwrap.dedent(
        """\
        import ctypes
        def run():
            libc = ctypes.CDLL(None, use_errno=True)
            params = ctypes.create_string_buffer(120)
            fd = libc.syscall(425, 4, params)  # io_uring_setup(4 entries, params)
            return [fd, ctypes.get_errno()]
        """
    )
    assert got(verify(code, "run", [{"args": [], "expect": None}], None)) == [-1, 38]  # ENOSYS


# -- SysV IPC -------------------------------------------------------------------------------
def _shm_keys() -> set[int]:
    with open("/proc/sysvipc/shm") as f:
        next(f)
        return {int(line.split()[0]) for line in f if line.strip()}


def test_sysv_shared_memory_is_private_and_gone_after_the_run() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    host_key, own_key = (int.from_bytes(os.urandom(3), "little") + 1 for _ in range(2))
    host_id = libc.shmget(host_key, 4096, 0o1000 | 0o2000 | 0o600)  # IPC_CREAT | IPC_EXCL
    assert host_id >= 0, os.strerror(ctypes.get_errno())
    try:
        before = _shm_keys()
        out = got(probe("sysv_shm", host_key, own_key))
        reason = missing_or("ipc-namespace")
        if reason is not None:
            assert_reported_missing("ipc-namespace", reason)
            leaked = libc.shmget(own_key, 0, 0o600)
            if leaked >= 0:
                libc.shmctl(leaked, 0, None)  # IPC_RMID: the test leaves nothing either
            return
        assert out == {"host_visible": False, "left_one": True}
        assert _shm_keys() == before  # the run's segment died with its namespace
        assert libc.shmget(own_key, 0, 0o600) < 0
    finally:
        libc.shmctl(host_id, 0, None)


# -- the run's cgroup ----------------------------------------------------------------------
MIB = 1024**2


@pytest.mark.slow  # fast tier: test_sandbox's memory bomb
def test_forked_children_share_one_memory_limit() -> None:
    limits = Limits(memory_bytes=256 * MIB)
    r = probe("fork_memory", 5, 120, limits=limits, timeout_s=20)
    reason = missing_or("cgroup-memory")
    if reason is not None:
        assert_reported_missing("cgroup-memory", reason)
        return
    if r.failed_case is not None and r.failed_case["got"] is not None:
        held = int(r.failed_case["got"])
        assert held * 120 * MIB <= limits.memory_bytes, r.message
    else:  # the kernel chose the runner itself: the run fails, saying why
        assert "memory limit" in r.message, r.message


def test_the_child_lives_in_its_cgroup_which_is_removed_at_the_end() -> None:
    iso = isolation()
    if "cgroup" in iso.missing:
        assert_reported_missing("cgroup", iso.missing["cgroup"])
        return
    code = textwrap.dedent(
        """\
        import os, signal, time
        def run():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(60)
                os._exit(0)
            signal.sigtimedwait({signal.SIGUSR1}, 30)  # until the test has looked
            return sum(i * i for i in range(200000))
        """
    )
    job = {"mode": "verify", "code": code, "entry_point": "run"}
    child = Child(job, iso, Limits(), timeout_s=40)
    members: set[int] = set()
    try:
        assert child.expect("defined")
        child.send({"type": "call", "id": 0, "args": [], "kwargs": plain.encode_plain({})})
        assert child.cgroup is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(os.path.join(child.cgroup, "cgroup.procs")) as f:
                members = {int(p) for p in f.read().split()}
            # The detached grandchild (its own session) joins the runner there.
            if len(members - {child.proc.pid, child.code_pid()}) >= 1:
                break
            time.sleep(0.02)
        assert child.code_pid() in members
        assert len(members - {child.proc.pid, child.code_pid()}) >= 1, members
        os.kill(child.code_pid(), signal.SIGUSR1)
        # The answer comes back to be judged here, as plain data.
        assert child.expect("value") == {
            "type": "value",
            "id": 0,
            "value": sum(i * i for i in range(200000)),
        }
    finally:
        child.close()
    assert not os.path.exists(child.cgroup)
    assert child.cgroup_cpu_usec is not None and child.cgroup_cpu_usec > 0
    assert all(not os.path.exists(f"/proc/{pid}") or _zombie(pid) for pid in members)
    # This run's groups only: other tests (xdist) may hold live groups of their own.
    if iso.cgroups:
        mine = [g for g in cgroups.leftover_groups(iso.cgroups) if g.endswith(child.run_id)]
        assert mine == []


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def test_the_doctor_lists_every_protection_with_a_reason(capsys: pytest.CaptureFixture) -> None:
    assert doctor.main([]) == 0
    text = capsys.readouterr().out
    iso = isolation()
    for p in iso.protections:
        assert p.name in text and p.detail
    assert doctor.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == iso.mode
    assert set(report["active"]) | set(report["missing"]) == {p.name for p in iso.protections}
    assert doctor.main(["--strict"]) == (1 if report["missing"] else 0)
    capsys.readouterr()


def test_results_carry_the_active_protections() -> None:
    r = verify("def add(a, b):\n    return a + b\n", "add", [{"args": [1, 2], "expect": 3}], None)
    assert r.passed and r.protections == isolation().active
    assert "rlimits" in r.protections


def test_the_cli_lists_the_sandbox_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_carbon.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sandbox" in out


# -- verdicts on plain data ------------------------------------------------------------------
def test_an_int_subclass_equal_to_everything_is_judged_incorrect() -> None:
    r = verify(hostile("fake_eq"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    assert "returned a subclass of int" in r.message, r.message
    # Its __repr__ (which says "3") is not called either.
    assert "Always" in r.message and r.failed_case["got"] != "3"  # type: ignore[index]


def test_the_check_sees_plain_data_only() -> None:
    r = verify(hostile("fake_eq"), "add", [], "assert candidate(1, 2) == 3\n")
    assert not r.passed
    assert "subclass of int" in r.message, r.message
    r = verify(
        hostile("fake_eq"), "add", [], "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    )
    assert not r.passed and "subclass of int" in r.message


@pytest.mark.parametrize(
    "value",
    [(1, [2, (3,)]), {1: "a", None: True, "k": 1.5, (1, 2): {3}}, float("inf"), None, b"x"],
)
def test_plain_data_round_trips_keeping_tuples(value: Any) -> None:
    data = json.loads(json.dumps(plain.encode_plain(value)))
    back = plain.decode_plain(data)
    assert back == value and type(back) is type(value)


class _Str(str):
    pass


class _List(list):  # type: ignore[type-arg]
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


class _Float(float):
    pass


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (_Str("x"), "a subclass of str"),
        (_List(), "a subclass of list"),
        (_Dict(), "a subclass of dict"),
        ([1, {"a": _Float(1.0)}], "a subclass of float"),
        (object(), "a builtins.object"),
        ({1: [object()]}, "a builtins.object"),
    ],
)
def test_plain_rejects_anything_else_naming_it(value: Any, needle: str) -> None:
    with pytest.raises(plain.NotPlain, match=needle.replace(".", r"\.")):
        plain.encode_plain(value)


# -- safe output -------------------------------------------------------------------------------
def test_escape_controls_writes_them_visibly() -> None:
    text = "a\x1b[2J\x1b]0;t\x07\r\nb\tc\x9b\u202ed"
    safe = escape_controls(text)
    assert safe == "a\\x1b[2J\\x1b]0;t\\x07\\r\nb\tc\\x9b\\u202ed"
    assert not has_controls(safe) and has_controls(text)


def test_captured_output_and_messages_are_escaped() -> None:
    r = verify(hostile("ansi_output"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    for text in (r.stdout, r.stderr, r.message):
        assert not has_controls(text), repr(text)
    assert "\\x1b]0;pwned\\x07\\r" in r.stdout and "41 passed" in r.stdout
    assert "\\x9b2J\\u202eevil" in r.stderr


def test_a_failing_items_output_reaches_the_terminal_escaped(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    variant = textwrap.indent(hostile("ansi_output"), "    ")
    (pytester.path / "prompts" / "t.yaml").write_text(
        "id: t\nprompt: add\nentry_point: add\n"
        "reference: |\n  def add(a, b):\n      return a + b\n"
        "tests:\n  - {args: [1, 2], expect: 3}\n"
        "workload: {args: [1, 2], min_time_s: 0.01}\n"
        f"variants:\n  ansi: |\n{variant}"
    )
    # In-process: what pytest prints is the same, without an interpreter to start.
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--color=no", "prompts/", "--carbon-model=variant:ansi"
    )
    result.assert_outcomes(failed=1)
    out = "\n".join(result.outlines + result.errlines)
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned" in out


# -- nothing left behind -------------------------------------------------------------------
LITTER = textwrap.dedent(
    """\
    import ctypes, os, tempfile
    def add(a, b):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget(SHM_KEY, 1 << 20, 0o1000 | 0o600)
        with open(os.path.join(tempfile.gettempdir(), "litter.txt"), "w") as f:
            f.write("x")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execve("/bin/sleep", ["sleep", "TOKEN"], {})
            os._exit(0)
        return a + b
    """
)


def _processes_with(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{name}/cmdline", "rb") as f:
                if token.encode() in f.read().split(b"\0") and not _zombie(int(name)):
                    found.append(int(name))
    return found


@pytest.mark.slow
def test_nothing_stays_behind_after_a_pytest_run(pytester: pytest.Pytester) -> None:
    """A pytest run whose candidate litters (a SysV segment, a file in its temp dir, a
    detached grandchild with no environment) in verify and in the workload. The run is
    started in a group of its own, so that what it leaves is told apart from what other
    pytest runs on this machine are doing."""
    iso = isolation()
    shm_key = int.from_bytes(os.urandom(3), "little") + 1
    token = f"{61 + int.from_bytes(os.urandom(2), 'little') / 1e5:.5f}"
    code = LITTER.replace("SHM_KEY", str(shm_key)).replace("TOKEN", token)
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "t.yaml").write_text(
        "id: t\nprompt: add\nentry_point: add\n"
        "reference: |\n  def add(a, b):\n      return a + b\n"
        "tests:\n  - {args: [1, 2], expect: 3}\n"
        "workload: {args: [1, 2], min_time_s: 0.01}\n"
        f"variants:\n  litter: |\n{textwrap.indent(code, '    ')}"
    )
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    group = None
    if iso.cgroups is not None:
        group = cgroups.RunCgroup(iso.cgroups, f"test-{uuid.uuid4().hex}", 8 * 1024**3, 4096)
    join = group.procs_files if group else []

    def enter() -> None:
        for procs in join:
            with open(procs, "w") as f:
                f.write("0")

    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--carbon"]
            + ["--carbon-idle=off", "prompts/", "--carbon-model=variant:litter", "-q"],
            cwd=pytester.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=enter,
        )
        # It passes, or (when a round asks for more calls than the process limit allows
        # live litter) fails as a workload error; either way it ran, and left nothing.
        ran = "1 passed" in proc.stdout or (
            "1 failed" in proc.stdout and "Resource temporarily unavailable" in proc.stdout
        )
        assert proc.returncode in (0, 1) and ran, proc.stdout + proc.stderr
        assert _processes_with(token) == []
        assert list(tmp.iterdir()) == []  # the sandboxes' directories, and the litter
        if group is not None:
            assert group.pids() == set()  # no process of that pytest run at all
            for d in group.dirs:  # no group left by its runs or probes
                assert [n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))] == []
    finally:
        if group is not None:
            group.kill()
            group.remove()
    libc = ctypes.CDLL(None, use_errno=True)
    leaked = libc.shmget(shm_key, 0, 0o600)
    if leaked >= 0:
        libc.shmctl(leaked, 0, None)  # IPC_RMID: this test leaves nothing either
    if "ipc-namespace" in iso.active:
        assert leaked < 0, "the run's SysV segment outlived it"
    else:
        assert_reported_missing("ipc-namespace", iso.missing["ipc-namespace"])


def _describe_key(serial: int) -> int:
    """0 when key ``serial`` exists (and is visible to us), else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(256)
    number = _keyctl_numbers()["keyctl"]
    n = libc.syscall(ctypes.c_long(number), 6, ctypes.c_long(serial), buf, ctypes.c_long(256))
    return 0 if n >= 0 else ctypes.get_errno()


@pytest.mark.slow  # waits for the kernel's keyring collection
def test_the_runs_session_keyring_dies_with_it() -> None:
    job = {"mode": "verify", "code": "def f():\n    return 1\n", "entry_point": "f"}
    child = Child(job, isolation(), Limits(), timeout_s=20)
    try:
        assert child.expect("defined")
        serial = child.setup.get("keyring")
        assert isinstance(serial, int) and serial > 0, child.setup
        assert _describe_key(serial) == 0  # visible to us while the run lives
    finally:
        child.close()
    deadline = time.monotonic() + 5
    while _describe_key(serial) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel collects unreferenced keyrings asynchronously
    assert _describe_key(serial) != 0


def test_generated_code_is_shown_escaped() -> None:
    from pytest_carbon.prompts.collect import numbered

    shown = numbered("def f():\n    return '\x1b]0;title\x07'\r\n")
    assert not has_controls(shown) and "\\x1b]0;title\\x07" in shown


def test_a_run_whose_cgroup_cannot_be_made_goes_on_without_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dataclasses import replace

    from pytest_carbon.sandbox import isolation as iso_mod

    iso = isolation()
    # A parent that vanished since the probe: mkdir fails for real.
    gone = replace(iso, cgroups=cgroups.CgroupPlan(v2=str(tmp_path / "gone")))
    monkeypatch.setattr(iso_mod, "isolation", lambda: gone)
    monkeypatch.setattr("pytest_carbon.sandbox.verify.isolation", lambda: gone)
    r = verify("def add(a, b):\n    return a + b\n", "add", [{"args": [1, 2], "expect": 3}], None)
    assert r.passed, r.message
    assert not any(p.startswith("cgroup") for p in r.protections)
    assert "rlimits" in r.protections


def test_the_runners_own_functions_patched_by_the_code_judge_nothing() -> None:
    r = verify(hostile("patch_judge"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case["got"] == "-1", r.message


def test_a_forged_verdict_on_the_control_channel_is_a_protocol_violation() -> None:
    r = verify(hostile("forge_verdict"), "add", [{"args": [1, 2], "expect": 3}], None)
    assert not r.passed
    assert r.failed_case is not None and r.failed_case.get("protocol") is True
    assert "Protocol violation" in r.message and "'result'" in r.message
