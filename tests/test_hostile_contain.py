"""The sandbox is a whitelist and its limits are out of reach (issue 19, item 4): hostile
answers of tests/hostile/contain_*.py run through the real sandbox. Each escape is
refused, or, where this machine lacks the mechanism, the doctor says it is missing and
why. Nothing of a run's cgroup stays on the host, even when the code made child groups."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
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
from pytest_carbon.sandbox import isolation as sandbox
from pytest_carbon.sandbox.child import seccomp
from pytest_carbon.sandbox.isolation import Limits, isolation
from pytest_carbon.sandbox.verify import verify

HOSTILE = Path(__file__).with_name("hostile")
MIB = 1024**2
EPERM, ENOSYS, EAFNOSUPPORT = 1, 38, 97


def hostile(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def run_hostile(name: str, *args: Any, **kw: Any) -> tuple[Any, Any]:
    """(what the probe returned, the result): its case expects None, so it fails and its
    answer comes back to be read."""
    r = verify(hostile(name), "run", [{"args": list(args), "expect": None}], None, **kw)
    assert not r.passed, "the probe's case must fail, so that its answer comes back"
    assert r.failed_case is not None and r.failed_case["got"] is not None, r.message
    return eval(r.failed_case["got"], {"__builtins__": {}}), r  # a repr of plain data


def missing(name: str) -> str | None:
    """The doctor's reason when protection ``name`` is missing here (checked to be
    reported, with that reason, by ``pytest-carbon sandbox``), else None."""
    iso = isolation()
    assert name in {p.name for p in iso.protections}, f"the doctor does not know {name}"
    reason = iso.missing.get(name)
    if reason is not None:
        assert reason.strip(), f"{name} is missing without a reason"
        report = doctor.survey()
        assert report["missing"][name] == reason and name not in report["active"]
        assert reason in doctor._text(report)
    return reason


def run_groups(run_id: str) -> list[str]:
    """Where the run's groups were (or are) on the host."""
    plan = isolation().cgroups
    if plan is None:
        return []
    parents = (plan.v2, plan.v1_memory, plan.v1_pids)
    return [os.path.join(p, cgroups.group_name(run_id)) for p in parents if p]


# -- the filter, instruction by instruction ------------------------------------------------
def run_filter(program: list[tuple[int, int, int, int]], arch: int, nr: int, arg0: int) -> int:
    """Run a seccomp program as the kernel would on (arch, nr, args[0]): its verdict."""
    data = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:
            acc = data[k]
        elif code == 0x06:
            return k
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf


@pytest.mark.parametrize("machine", sorted(seccomp.SYSCALLS))
def test_the_filter_denies_namespaces_and_mounts_and_allows_the_rest(machine: str) -> None:
    numbers = seccomp.SYSCALLS[machine]
    program = seccomp.seccomp_program(numbers)
    arch = numbers["audit_arch"]
    allow = seccomp.SECCOMP_RET_ALLOW

    def errno(k: int) -> int:
        return seccomp.SECCOMP_RET_ERRNO | k

    for name in seccomp.DENIED:
        assert run_filter(program, arch, numbers[name], 0) == errno(EPERM), name
    thread = 0x3D0F00  # CLONE_VM | FS | FILES | SIGHAND | THREAD | SYSVSEM | SETTLS | ...
    assert run_filter(program, arch, numbers["clone"], thread) == allow
    assert run_filter(program, arch, numbers["clone"], signal.SIGCHLD) == allow  # fork
    for flag in (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000):
        assert run_filter(program, arch, numbers["clone"], flag | 17) == errno(EPERM), hex(flag)
    assert run_filter(program, arch, numbers["clone3"], 0) == errno(ENOSYS)
    assert run_filter(program, arch, numbers["io_uring_setup"], 4) == errno(ENOSYS)
    assert run_filter(program, arch, numbers["socket"], 40) == errno(EAFNOSUPPORT)  # vsock
    assert run_filter(program, arch, numbers["socket"], 1) == allow  # AF_UNIX
    assert run_filter(program, arch, numbers["keyctl"], 1) == allow
    assert run_filter(program, arch, 0, 0) == allow  # read / io_setup
    assert run_filter(program, 0x40000003, 1, 0) == errno(EPERM)  # i386 ABI
    assert run_filter(program, arch, 0x40000000 | 1, 0) == errno(EPERM)  # x32


# -- namespaces and mounts -------------------------------------------------------------------
def test_nested_user_mount_and_cgroup_namespaces_are_refused() -> None:
    out, _ = run_hostile("contain_nested_unshare")
    reason = missing("seccomp-namespaces")
    if reason is not None:
        return
    assert out.pop("unshare(1)") != 0
    assert out == {
        "unshare user+mount+cgroup": EPERM,
        "unshare user": EPERM,
        "unshare mount": EPERM,
        "unshare cgroup": EPERM,
        "clone user": EPERM,
        "clone3 user": ENOSYS,  # so that the C library falls back to clone, checked
        "setns mnt": EPERM,
    }


def test_no_cgroup_hierarchy_or_other_filesystem_can_be_mounted() -> None:
    out, _ = run_hostile("contain_mount_cgroup")
    if missing("seccomp-namespaces") is not None:
        return
    assert set(out.values()) == {EPERM}, out
    assert set(out) >= {"unshare", "mount cgroup memory", "mount cgroup pids", "fsopen cgroup2"}


def test_the_run_cannot_raise_its_own_limits() -> None:
    limits = Limits(memory_bytes=256 * MIB, processes=16)
    r = verify(
        hostile("contain_raise_limits"),
        "run",
        [{"args": [4, 100, 60], "expect": None}],
        None,
        limits=limits,
        timeout_s=30,
    )
    if missing("cgroup-hidden") is not None or missing("cgroup-memory") is not None:
        return
    if r.failed_case is None or r.failed_case["got"] is None:
        # The kernel chose the runner itself for the memory limit: the run fails so.
        assert "memory limit" in r.message, r.message
        return
    out = eval(r.failed_case["got"], {"__builtins__": {}})
    assert out["written"] == [] and out["sys"] is False
    if missing("cgroup-pids") is None:
        assert 1 <= out["forked"] <= limits.processes, out
    assert out["held"] * 100 * MIB <= limits.memory_bytes, out


def test_threads_fork_multiprocessing_and_subprocess_still_work() -> None:
    code = textwrap.dedent(
        """\
        import concurrent.futures, multiprocessing, os, subprocess, sys, threading
        def run():
            box = []
            t = threading.Thread(target=box.append, args=(1,))
            t.start()
            t.join()
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            with multiprocessing.get_context("fork").Pool(2) as pool:
                squares = pool.map(abs, [-1, -2, -3])
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                doubled = list(ex.map(lambda x: 2 * x, [1, 2]))
            sh = subprocess.run(["sh", "-c", "echo hi"], capture_output=True, text=True)
            py = subprocess.run([sys.executable, "-c", "import ssl, sqlite3; print(2)"],
                                capture_output=True, text=True)
            spawned = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 3"], {})
            spawned = os.waitstatus_to_exitcode(os.waitpid(spawned, 0)[1])
            return [box, forked, squares, doubled, sh.stdout, py.stdout or py.stderr[-300:],
                    spawned]
        """
    )
    expect = [[1], 7, [1, 2, 3], [2, 4], "hi\n", "2\n", 3]
    r = verify(code, "run", [{"args": [], "expect": expect}], None, timeout_s=30)
    assert r.passed, r.message


# -- the run's cgroup ------------------------------------------------------------------------
def test_the_code_sees_no_cgroup_group_to_make_children_in() -> None:
    out, r = run_hostile("contain_child_cgroup")
    if missing("cgroup-hidden") is None:
        assert out == []
    assert run_groups(r.run_id) and not any(os.path.exists(g) for g in run_groups(r.run_id))


def test_child_groups_made_by_the_code_do_not_keep_the_runs_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without namespaces (no unshare(1)), the code sees the host's cgroup tree; as root
    # (the "none" mode) it makes child groups in its run's groups and stays in them.
    monkeypatch.setattr(sandbox, "_unshare", lambda: None)
    monkeypatch.setattr(sandbox, "_isolation_cache", {})
    iso = isolation()
    assert iso.mode in ("uid", "none")
    if iso.cgroups is None:
        pytest.skip(f"no cgroup here: {iso.missing.get('cgroup')}")
    out, r = run_hostile("contain_child_cgroup", timeout_s=20)
    groups = run_groups(r.run_id)
    assert groups
    if iso.mode == "none" and os.geteuid() == 0:
        assert any(g.startswith(tuple(groups)) for g in out), out  # the code made some
    for g in [*groups, *out]:
        assert not os.path.exists(g), g
    assert sandbox.run_processes(r.run_id) == []


def test_a_run_group_with_a_busy_child_group_is_removed() -> None:
    plan = isolation().cgroups
    if plan is None:
        pytest.skip(f"no cgroup here: {isolation().missing.get('cgroup')}")
    assert missing("cgroup-removable") is None
    cg = cgroups.RunCgroup(plan, f"test-{os.getpid()}-{time.monotonic_ns()}", 256 * MIB, 16)
    children = [os.path.join(d, "made-by-the-code", "deeper") for d in cg.dirs]
    procs = [os.path.join(c, "cgroup.procs") for c in children]
    for c in children:
        os.makedirs(c)

    def join() -> None:
        for p in procs:
            with open(p, "w") as f:
                f.write("0")

    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=join)
    try:
        assert cg.pids() == {sleeper.pid}
        cg.kill()
        assert cg.remove() == []
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
        cg.remove()
    assert cg.dirs == [] and not any(os.path.exists(d) for d in cg.procs_files + children)


def test_groups_left_by_a_pytest_that_is_gone_are_swept() -> None:
    plan = isolation().cgroups
    if plan is None:
        pytest.skip(f"no cgroup here: {isolation().missing.get('cgroup')}")
    gone = subprocess.Popen(["true"])
    gone.wait()
    parent = plan.v2 or plan.v1_memory or plan.v1_pids
    assert parent is not None
    tag = uuid.uuid4().hex
    stale = os.path.join(parent, f"{cgroups.PREFIX}{gone.pid}-{tag}")
    live = os.path.join(parent, f"{cgroups.PREFIX}{os.getpid()}-{tag}")
    for g in (stale, live):
        os.makedirs(os.path.join(g, "child"))
    try:
        removed = cgroups.sweep_stale(plan)  # and any other stale group of this branch
        assert stale in removed and live not in removed
        assert not os.path.exists(stale) and os.path.isdir(os.path.join(live, "child"))
    finally:
        for g in (stale, live):
            cgroups.remove_tree(g)
    assert not os.path.exists(live)


# -- host sockets, FIFOs and files outside the code's root ----------------------------------
@pytest.fixture
def host_places() -> Iterator[tuple[list[str], list[str], list[str], list[bytes]]]:
    """A listening UNIX socket, a FIFO with a reader and a secret file in a new directory
    under /var/tmp, /root and /home (where they exist): (sockets, fifos, secrets, what
    reached the sockets and FIFOs)."""
    received: list[bytes] = []
    sockets: list[str] = []
    fifos: list[str] = []
    secrets: list[str] = []
    with contextlib.ExitStack() as stack:
        fifo_fds = []
        for base in ("/var/tmp", "/root", "/home"):
            if not os.path.isdir(base) or not os.access(base, os.W_OK):
                continue
            d = tempfile.mkdtemp(prefix="pytest-carbon-host-", dir=base)
            stack.callback(subprocess.run, ["rm", "-rf", d], check=False)
            sock_path, fifo_path = os.path.join(d, "db.sock"), os.path.join(d, "agent.fifo")
            secret = os.path.join(d, "secret.txt")
            Path(secret).write_text("host secret")
            os.mkfifo(fifo_path)
            fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
            stack.callback(os.close, fd)
            fifo_fds.append(fd)
            server = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            server.bind(sock_path)
            server.listen()
            server.settimeout(0.1)
            received_here = stack.enter_context(accepting(server))
            stack.callback(received.extend, received_here)
            sockets.append(sock_path)
            fifos.append(fifo_path)
            secrets.append(secret)
        assert sockets, "no writable /var/tmp, /root or /home to put host sockets in"
        yield sockets, fifos, secrets, received
        for fd in fifo_fds:
            with contextlib.suppress(BlockingIOError):
                received.append(os.read(fd, 100))
    received[:] = [b for b in received if b]


def test_host_sockets_fifos_and_files_outside_tmp_are_out_of_reach(
    host_places: tuple[list[str], list[str], list[str], list[bytes]],
) -> None:
    sockets, fifos, secrets, received = host_places
    places = ["/", "/etc", "/home", "/root", "/var/lib", "/var/tmp", "/run", "/sys", "/mnt"]
    out, _ = run_hostile("contain_rendezvous", sockets, fifos, secrets, places)
    if missing("whitelist-root") is not None:
        return
    assert out["socket"] == dict.fromkeys(sockets, "FileNotFoundError")
    assert out["fifo"] == dict.fromkeys(fifos, "FileNotFoundError")
    assert out["secret"] == dict.fromkeys(secrets, "FileNotFoundError")
    # Only the way to what the root shows is there: /root holds the path to a Python
    # installed under it (pyenv), nothing else; /home, /var, /run, /sys are absent.
    root = isolation().notes["root"]
    shown = [*root["read-only"], *root["links"], *root["tmpfs"]]
    listing = out["listing"]
    assert set(listing.pop("/")) == {p.split("/")[1] for p in shown} | {"dev", "etc", "proc"}
    assert sorted(listing.pop("/etc")) == root["etc"]
    for place, listing in out["listing"].items():
        leads = {p[len(place) + 1 :].split("/")[0] for p in shown if p.startswith(place + "/")}
        if not leads:
            assert listing == "FileNotFoundError", (place, listing)
        else:
            assert set(listing) <= leads, (place, listing)
    assert received == []


def test_the_covered_fallback_still_hides_tmp_and_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Where no root can be built for the code, the namespaces mode shows the host's
    # filesystem read-only with /tmp, /run and /var/run covered (the previous design).
    if isolation().mode != "namespaces":
        pytest.skip(f"no namespaces here: {isolation().detail}")
    monkeypatch.setattr(sandbox, "ROOT", "covered")
    monkeypatch.setattr(sandbox, "_isolation_cache", {})
    iso = isolation()
    assert iso.mode == "namespaces"
    assert "whitelist-root" in iso.missing and "cgroup-hidden" in iso.missing
    assert {"private-tmp", "read-only-fs", "minimal-dev", "seccomp-namespaces"} <= set(iso.active)
    d = tempfile.mkdtemp(prefix="pytest-carbon-host-", dir="/tmp")
    try:
        secret = os.path.join(d, "secret.txt")
        Path(secret).write_text("host secret")
        out, _ = run_hostile("contain_rendezvous", [], [], [secret], ["/run", "/tmp"])
        assert out["secret"] == {secret: "FileNotFoundError"}
        assert out["listing"]["/run"] == []
    finally:
        subprocess.run(["rm", "-rf", d], check=False)


def test_a_root_that_cannot_be_built_falls_back_to_the_covered_host_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if isolation().mode != "namespaces":
        pytest.skip(f"no namespaces here: {isolation().detail}")
    # Showing all of "/" would show /tmp and /dev from the host: the runner refuses to
    # build such a root, undoes what it built and covers the host's filesystem instead.
    monkeypatch.setattr(sandbox, "SYSTEM_DIRS", ("/",))
    monkeypatch.setattr(sandbox, "_isolation_cache", {})
    iso = isolation()
    assert iso.mode == "namespaces"
    assert "lies inside /" in iso.missing["whitelist-root"], iso.missing
    assert {"private-tmp", "read-only-fs", "minimal-dev", "seccomp-namespaces"} <= set(iso.active)
    r = verify("def add(a, b):\n    return a + b\n", "add", [{"args": [1, 2], "expect": 3}], None)
    assert r.passed, r.message


def test_the_filter_holds_without_namespaces_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "_unshare", lambda: None)
    monkeypatch.setattr(sandbox, "_isolation_cache", {})
    assert isolation().mode in ("uid", "none")
    out, _ = run_hostile("contain_nested_unshare")
    if missing("seccomp-namespaces") is not None:
        return
    assert out.pop("unshare(1)") != 0
    assert out.pop("clone3 user") == ENOSYS
    assert set(out.values()) == {EPERM}, out  # as root, every one of them would work


def test_the_doctor_lists_the_new_protections() -> None:
    report = doctor.survey()
    names = set(report["active"]) | set(report["missing"])
    assert {"whitelist-root", "seccomp-namespaces", "cgroup-removable", "cgroup-hidden"} <= names
    for name, reason in report["missing"].items():
        assert reason.strip(), name
    if isolation().mode == "namespaces":
        assert "whitelist-root" in report["active"], report["missing"].get("whitelist-root")
        text = doctor._text(report)
        for path in isolation().notes["root"]["read-only"]:
            assert path in text
