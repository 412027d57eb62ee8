"""Run LLM-generated code in a contained child process: verify its answers, measure its workload.

Threat model (docs/sandbox.md has it in full). Nothing the candidate's process does or
says is trusted: the code may loop, exhaust memory, fork without end, print without end,
crash the interpreter, read what it can open, look for host sockets and FIFOs, try to
leave its namespaces, mount filesystems, raise its cgroup limits, or write forged
messages, by mistake or because it was written against this sandbox. It must never run
in pytest's process, never see pytest's environment (``OPENAI_API_KEY``), never harm the
host, and never leave a process or a cgroup group behind.

Always, whatever the machine allows:

* a separate interpreter (``sys.executable -s -P -B``: ``-I`` without ``-E``, so that
  our ``PYTHONHASHSEED=0`` takes effect; the environment is already scrubbed, so ``-E``
  would only ignore our own settings) in a new session and process group, with a
  temporary working directory that is also ``HOME`` and ``TMPDIR``, removed afterwards;
* an environment of :data:`ENV_ALLOW` and a per-run marker only (no other variable);
* ``setrlimit`` in ``preexec_fn``: address space, CPU seconds, file size, processes, open
  files, no core files; and ``PR_SET_PDEATHSIG`` so the child dies with pytest;
* output read through pipes with a selector, kept up to ``Limits.output_bytes`` per
  stream and drained beyond it (no deadlock, no memory growth); the protocol uses two
  extra pipes (``pass_fds``), never stdout;
* at the end of every run (passed, failed, timed out): SIGKILL to the process group,
  the run's cgroup killed as one (below), then a sweep of ``/proc`` for processes whose
  environment carries the run's marker (stopped first, so a fork bomb cannot outrun the
  sweep, then killed);
* in the runner, before any generated code: a new anonymous session keyring
  (``keyctl(JOIN_SESSION_KEYRING)``), so no key of pytest's session is possessed, and a
  seccomp filter (``child.seccomp.seccomp_program``, with no_new_privs) that fails unshare,
  setns, clone with a namespace flag, clone3 (ENOSYS: the C library falls back to clone),
  mount and the rest of the mount API, and ``socket(AF_VSOCK)`` (a VM's channel to its
  host, which no namespace cuts);
* where the machine allows one, a control group per run (:mod:`.cgroup`), joined before
  exec so every descendant is in it: ``memory.max`` and ``pids.max`` for the whole tree
  (five forked children share one memory budget), its CPU time in ``cpu.stat``
  (``Child.cgroup``), ``cgroup.kill`` at the end, removed afterwards.

Best mode, ``namespaces`` (used when ``unshare --user`` works, as root or not: it does on
this machine): the child runs under ``unshare --user --map-root-user --mount --net --ipc
--pid --fork --kill-child --mount-proc``. The runner, pid 1 of a new pid namespace and
root of its user namespace, caps the namespace's ``pid_max`` (Linux >= 6.14;
``RLIMIT_NPROC`` is not enforced for a user namespace created by root) and its limits on
nested namespaces (0), enters a cgroup namespace rooted at the run's group, builds the
code's root filesystem and moves into it (``child.containment.whitelist_root``, ``pivot_root``): a
tmpfs holding only Python's installation and the system's programs and libraries
(read-only binds), a few files in ``/etc``, ``/dev`` with ``null``, ``zero``,
``urandom`` and ``random``, a ``/proc`` of its own, and the run's own size-limited tmpfs
for ``/tmp``, ``/dev/shm`` and the working directory. Then it drops every capability
(bounding set included) with ``no_new_privs``. So:

* no host path but those exists for the code: no ``/home``, ``/root``, ``/var``,
  ``/run``, ``/sys``, hence no host UNIX socket, FIFO or file there, and no cgroup
  filesystem (it can neither read other runs' ``cpu.stat`` nor write its own limits);
* nothing can be written but the run's own tmpfs;
* pytest and every other host process are invisible (own ``/proc``, ``getppid() == 0``);
* there is no network, not even 127.0.0.1 (a new network namespace whose loopback is
  down); abstract UNIX sockets are cut with it;
* a descendant cannot escape: when pid 1 exits or is killed the kernel kills the whole
  namespace, whatever ``setsid``, double fork or environment clearing it tried;
* SysV IPC objects and POSIX message queues are the namespace's own;
* no nested namespace and no mount (seccomp): the limits cannot be raised.

Where the root cannot be built (``pivot_root`` refused), or with ``ROOT = "covered"``,
the namespaces mode falls back to the previous design: the host's filesystem, every
mount read-only, an empty tmpfs over ``/tmp``, ``/run`` and ``/var/run``; the doctor
then reports ``whitelist-root`` and ``cgroup-hidden`` missing, with the reason.

Not contained even then: reading the files the root shows (Python's installation, the
system's libraries), CPU and memory pressure within the limits, the kernel's own attack
surface through the allowed system calls, a key whose permissions let its owning user
read it, and a candidate written against this runner could subvert ``check`` code run
in its process. The test cases themselves are judged in pytest's process, on the JSON
that crossed the pipe (:mod:`.judge`).

Every protection, active or missing with the machine's reason, is listed by
:func:`isolation` (``Isolation.protections``) and ``pytest-carbon sandbox``; results carry
the active ones (``protections``).

Fallbacks, recorded in every result (``isolation``, ``network_cut``):

* ``uid`` (root where user namespaces are unavailable, and only if the interpreter works
  for that user): ``setuid(65534)`` in ``preexec_fn``. Root-owned files cannot be written,
  pytest cannot be signalled (EPERM) nor its environment read, and ``RLIMIT_NPROC``
  counts the sandbox user's processes (set to those already running plus
  ``Limits.processes``). The network is not cut. On this machine the interpreter lives
  under ``/root`` (mode 700), so user 65534 cannot run it and this mode is refused.
* ``none``: limits, process-group kill and the marker sweep only. Files of the invoking
  user and pytest itself are NOT protected; use a container.

The keyring, the seccomp filter and the cgroup do not depend on the mode: they apply in
the fallbacks too wherever the kernel allows them. The run's groups are removed with any
child group the code made in them (:func:`.cgroup.remove_tree`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import io
import json
import marshal
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_carbon.sandbox import cgroup as cgroups
from pytest_carbon.sandbox.child import containment as _child_containment
from pytest_carbon.sandbox.protections import Protection, protections
from pytest_carbon.sandbox.safe_text import escape_controls
from pytest_carbon.sandbox.wire_limits import (
    MAX_MESSAGE_BYTES,
    READ_SLICE_BYTES,
    WireLimitError,
    clip_display,
    decode_message,
    overflow_reason,
)

#: The only variables the child sees (plus HOME, TMPDIR and the run marker).
ENV_ALLOW = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}
#: Environment variable carrying the run's id: how a run's processes are found in /proc.
MARKER = "PYTEST_CARBON_SANDBOX"
#: The unprivileged user the ``uid`` mode runs as.
SANDBOX_UID = 65534
UNSHARE_ARGS = (
    "--user",
    "--map-root-user",
    "--mount",
    "--net",
    "--ipc",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
)
#: How long a child that has reported its result may take to exit before it is killed.
EXIT_GRACE_S = 2.0
#: The child package (``child/``), run in the sandbox as one zipapp file (:func:`child_app`).
CHILD_DIR = Path(__file__).with_name("child")
#: The zipapp's name in a run's directory.
CHILD_APP = "child.pyz"
#: The code's root filesystem in the namespaces mode: "whitelist" (a root built for it,
#: see ``child.containment.whitelist_root``) or "covered" (the host's, read-only, with /tmp, /run
#: and /var/run covered: the fallback when the first cannot be built).
ROOT = "whitelist"
#: Host directories shown to the code, read-only, besides Python's installation (a
#: directory that does not exist here is left out; links are recreated as links). One list,
#: the child's default, sent in the job so that a test can change it here.
SYSTEM_DIRS = _child_containment.SYSTEM_DIRS
#: Fields of the runner's messages that are shown to people (tracebacks, reprs).
_DISPLAY_KEYS = ("error", "got")
_PR_SET_PDEATHSIG = 1


class SandboxError(Exception):
    """The sandbox itself failed, or the code was killed or raised during a workload."""

    #: The run's marker (see :func:`run_processes`), when a run had started.
    run_id: str = ""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    ``memory_bytes``: address space (RLIMIT_AS) of each process. ``cpu_s``: CPU seconds of
    each process (RLIMIT_CPU); None derives it from the timeout (its ceiling + 1).
    ``file_bytes``: largest file written (RLIMIT_FSIZE); the namespaces mode also bounds
    the whole working directory to ``max(64 MiB, 4 x file_bytes)`` of tmpfs.
    ``processes``: RLIMIT_NPROC above the processes the sandbox's user already runs
    (the kernel counts a user's processes, not a tree's); in the namespaces mode also the
    pid namespace's pid_max (at least the kernel's minimum, 301).
    ``open_files``: RLIMIT_NOFILE. ``output_bytes``: stdout and stderr kept, each.
    """

    memory_bytes: int = 2 * 1024**3
    cpu_s: int | None = None
    file_bytes: int = 16 * 1024**2
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Isolation:
    """How runs are contained on this machine, decided once per process by probing.

    ``protections``: every protection we know of, active or missing with the reason
    (see :func:`protections`); ``cgroups``: where runs' control groups go, or None."""

    mode: str  # namespaces | uid | none
    network_cut: bool
    detail: str
    uid: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    protections: tuple[Protection, ...] = ()
    cgroups: cgroups.CgroupPlan | None = None

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the protections in force, as carried in results."""
        return tuple(p.name for p in self.protections if p.active)

    @property
    def missing(self) -> dict[str, str]:
        """Protection name -> why it is not in force here."""
        return {p.name: p.detail for p in self.protections if not p.active}


_isolation_cache: dict[tuple[int, str], Isolation] = {}


@functools.cache
def child_app() -> bytes:
    """The child package (:data:`CHILD_DIR`) as one zipapp: ``child/*.py``, each with its
    compiled form (an unchecked hash-based ``.pyc``, so a run does not compile the runner
    again: ``python -I`` of a zipapp already imports ``runpy``, which a plain script did
    not need), and a ``__main__.py`` that runs ``child.__main__.main``. The code's file
    names are ``child.pyz/child/NAME.py``, relative to the run's directory, where the
    runner starts. Built once per process, in memory (nothing is read back from a shared
    directory another user could write), with fixed timestamps: the same sources give
    the same bytes. Each run writes it into its directory as :data:`CHILD_APP` and starts
    ``python -I child.pyz CTL_OUT CTL_IN``; an interpreter with another bytecode format
    ignores the ``.pyc`` files and compiles the sources."""
    members = {"__main__.py": b"from child.__main__ import main\n\nmain()\n"}
    for path in sorted(CHILD_DIR.glob("*.py")):
        source = path.read_bytes()
        code = compile(source, f"{CHILD_APP}/child/{path.name}", "exec", dont_inherit=True)
        members[f"child/{path.name}"] = source
        members[f"child/{path.name}c"] = (
            importlib.util.MAGIC_NUMBER
            + (1).to_bytes(4, "little")  # hash-based, unchecked (PEP 552)
            + importlib.util.source_hash(source)
            + marshal.dumps(code)
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def isolation() -> Isolation:
    """The strongest containment that works here (probed by running the runner once)."""
    key = (os.geteuid(), sys.executable)
    cached = _isolation_cache.get(key)
    if cached is None:
        cached = _isolation_cache[key] = _probe()
    return cached


def _unshare() -> str | None:
    """util-linux's unshare(1), looked up in the system directories only."""
    return shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")


def _probe() -> Isolation:
    plan = cgroups.probe()
    usable = plan if plan.v2 or plan.v1_memory or plan.v1_pids else None
    joined = None
    try:
        iso = _probe_mode(usable)
    except SandboxError as exc:
        if usable is None:
            raise
        joined = f"the child could not join the run's cgroup: {exc}"
        usable = None
        iso = _probe_mode(None)
    iso = replace(iso, cgroups=usable)
    return replace(iso, protections=protections(iso, plan, joined))


def _probe_mode(plan: cgroups.CgroupPlan | None) -> Isolation:
    reasons = []
    unshare = _unshare()
    if unshare is None:
        reasons.append("no unshare(1) from util-linux")
    else:
        candidate = Isolation(
            "namespaces", True, f"{unshare} {' '.join(UNSHARE_ARGS)}", cgroups=plan
        )
        try:
            notes = _run_probe(candidate)
            own_root = isinstance(notes.get("root"), dict)
            return Isolation(
                "namespaces",
                True,
                "user, mount, pid, network, IPC and cgroup namespaces; "
                + ("a root filesystem of its own" if own_root else "the host's filesystem")
                + ", read-only; minimal /dev; no capabilities; seccomp",
                notes=notes,
            )
        except SandboxError as exc:
            reasons.append(f"namespaces unavailable: {exc}")
    if os.geteuid() == 0:
        candidate = Isolation("uid", False, "", uid=SANDBOX_UID, cgroups=plan)
        try:
            notes = _run_probe(candidate)
            if notes.get("version") == sys.version:
                return Isolation(
                    "uid",
                    False,
                    f"runs as uid {SANDBOX_UID}; network not cut",
                    uid=SANDBOX_UID,
                    notes={**notes, "reasons": reasons},
                )
            reasons.append(
                f"uid {SANDBOX_UID} runs another Python ({notes.get('version')!r}): "
                f"it cannot read {sys.executable}'s installation"
            )
        except SandboxError as exc:
            reasons.append(f"uid {SANDBOX_UID} cannot run {sys.executable}: {exc}")
    plain_notes: dict[str, Any] = {"reasons": reasons}
    with contextlib.suppress(SandboxError):  # for what the runner does in every mode
        plain_notes.update(_run_probe(Isolation("none", False, "", cgroups=plan)))
    return Isolation(
        "none", False, "limits and process kill only; " + "; ".join(reasons), notes=plain_notes
    )


def _run_probe(iso: Isolation) -> dict[str, Any]:
    child = Child({"mode": "probe"}, iso, Limits(), timeout_s=10.0)
    try:
        msg = child.expect("result")
        return {**child.setup, **{k: v for k, v in msg.items() if k != "type"}}
    finally:
        child.close()


# -- the child process --------------------------------------------------------------------
def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _count_user_processes(uid: int) -> int:
    n = 0
    for name in _proc_pids():
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                n += 1
        except OSError:
            continue
    return n


def _rlimits(limits: Limits, timeout_s: float, uid: int) -> list[tuple[int, int]]:
    cpu_s = limits.cpu_s if limits.cpu_s is not None else math.ceil(timeout_s) + 1
    # The kernel counts all of a user's processes against RLIMIT_NPROC.
    nproc = _count_user_processes(uid) + limits.processes
    wanted = [
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_CPU, cpu_s, cpu_s + 1),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NPROC, nproc, nproc),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    out = []
    for res, soft, hard in wanted:
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        out.append((res, soft, hard))
    return out  # type: ignore[return-value]


def _make_preexec(rlimits: list[Any], uid: int | None, join: tuple[str, ...] = ()) -> Any:
    prctl = _libc_prctl()

    def preexec() -> None:  # runs in the forked child, before exec: keep it minimal
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for procs in join:  # "0" moves the writer: every descendant is born inside
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for res, soft, hard in rlimits:
            resource.setrlimit(res, (soft, hard))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return preexec


class Child:
    """One sandboxed runner: spawn, talk over the control pipes, drain output, clean up.

    ``cgroup``: the run's cgroup v2 directory (every process of the run is in it from
    before exec; ``cpu.stat`` there counts the CPU time of the whole tree), or None where
    the machine offers none. It exists until :meth:`close`, which kills what is in it,
    keeps its final ``usage_usec`` in ``cgroup_cpu_usec`` and removes it.
    ``oom_kills``: processes the kernel killed for the run's memory limit (after close).
    ``cgroup_error``: why this run has no cgroup although the machine offers one.
    """

    def __init__(self, job: dict[str, Any], iso: Isolation, limits: Limits, timeout_s: float):
        self.iso = iso
        self.limits = limits
        self.timeout_s = timeout_s
        self.run_id = uuid.uuid4().hex
        self.timed_out = False
        self.setup: dict[str, Any] = {}
        self.closed = False
        self.returncode: int | None = None
        self._out: dict[int, bytearray] = {}
        self._dropped: dict[int, int] = {}
        self._ctl_buf = bytearray()
        #: Why the control pipe was closed to the child: a bound of :mod:`.wire_limits`.
        self.wire_error: str | None = None
        self._ctl_eof = False
        self._code_pid: int | None = None
        self.duration_s = 0.0
        self.cgroup: str | None = None
        self.cgroup_cpu_usec: int | None = None
        self.oom_kills = 0
        self.cgroup_error: str | None = None
        self._cg: cgroups.RunCgroup | None = None
        self.dir = tempfile.mkdtemp(prefix="pytest-carbon-sandbox-")
        try:
            if iso.cgroups is not None:
                # The runner and, in the namespaces mode, unshare(1) and its fork: 2 more.
                try:
                    self._cg = cgroups.RunCgroup(
                        iso.cgroups, self.run_id, limits.memory_bytes, limits.processes + 2
                    )
                    self.cgroup = self._cg.path
                except OSError as exc:  # the probe could; this run cannot: go on without
                    self.cgroup_error = f"the run's cgroup could not be created: {exc}"
            self._start(job)
        except BaseException:
            self._remove_cgroup()
            self._cleanup_dir()
            raise

    def _start(self, job: dict[str, Any]) -> None:
        job = {
            **job,
            "contain": self.iso.mode == "namespaces",
            "root": ROOT,
            # A program's toolchain (sandbox/languages.py) adds its directories, read-only.
            "system_dirs": [*SYSTEM_DIRS, *job.get("mounts", ())],
            "processes": self.limits.processes,
            "tmpfs_bytes": max(64 * 1024**2, 4 * self.limits.file_bytes),
        }
        with open(os.path.join(self.dir, CHILD_APP), "wb") as app:
            app.write(child_app())
        try:
            text = json.dumps(job, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"test data must be JSON/YAML values: {exc}") from None
        with open(os.path.join(self.dir, "job.json"), "w") as f:
            f.write(text)
        uid = self.iso.uid
        if uid is not None:
            for p in (self.dir, *(os.path.join(self.dir, n) for n in os.listdir(self.dir))):
                os.chown(p, uid, uid)
        os.chmod(self.dir, 0o700)

        ctl_r, child_w = os.pipe()
        child_r, ctl_w = os.pipe()
        argv = [sys.executable, "-s", "-B"]
        if sys.version_info >= (3, 11):
            argv.append("-P")
        argv += [CHILD_APP, str(child_w), str(child_r)]
        if self.iso.mode == "namespaces":
            argv = [_unshare() or "unshare", *UNSHARE_ARGS, "--", *argv]
        env = {**ENV_ALLOW, "HOME": self.dir, "TMPDIR": self.dir, MARKER: self.run_id}
        rlimits = _rlimits(self.limits, self.timeout_s, uid if uid is not None else os.geteuid())
        self.t0 = time.perf_counter()
        self.deadline = time.monotonic() + self.timeout_s
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(child_w, child_r),
                cwd=self.dir,
                env=env,
                start_new_session=True,
                preexec_fn=_make_preexec(
                    rlimits, uid, tuple(self._cg.procs_files) if self._cg else ()
                ),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (ctl_r, child_w, child_r, ctl_w):
                os.close(fd)
            raise SandboxError(f"could not start the sandbox ({argv[0]}): {exc}") from exc
        os.close(child_w)
        os.close(child_r)
        self._ctl_r, self._ctl_w = ctl_r, ctl_w
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._streams = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr"}
        self._sel = selectors.DefaultSelector()
        for fd in self._streams:
            os.set_blocking(fd, False)
            self._out[fd] = bytearray()
            self._dropped[fd] = 0
            self._sel.register(fd, selectors.EVENT_READ)
        os.set_blocking(ctl_r, False)
        self._sel.register(ctl_r, selectors.EVENT_READ)

    # -- protocol --------------------------------------------------------------------
    def recv(self, within: float | None = None) -> dict[str, Any] | None:
        """The next control message; None when the child is gone or the deadline passed.

        The deadline is absolute: bytes that trickle in never extend it. ``within``: wait
        at most that many seconds from now (never past the run's :attr:`deadline`). Raises
        SandboxError, naming the bound, when the child broke one of :mod:`.wire_limits`
        (a message over ``MAX_MESSAGE_BYTES``, or nested deeper than
        ``MAX_MESSAGE_DEPTH``): checked before the message is decoded.
        """
        deadline = self.deadline
        if within is not None:
            deadline = min(deadline, time.monotonic() + within)
        while True:
            if self.wire_error is not None:
                raise SandboxError(self.wire_error)
            end = self._ctl_buf.find(b"\n")
            if end >= 0:
                line = bytes(self._ctl_buf[:end])
                del self._ctl_buf[: end + 1]
                try:
                    msg = decode_message(line)
                except WireLimitError as exc:
                    self.wire_error = str(exc)
                    continue
                except ValueError:
                    continue  # garbage written to our fd by the code: not a message
                if isinstance(msg, dict):
                    # Tracebacks and reprs are text chosen by the code, for people to
                    # read; values meant for comparison are left exactly as sent.
                    for shown in _DISPLAY_KEYS:
                        if isinstance(msg.get(shown), str):
                            msg[shown] = clip_display(escape_controls(msg[shown]))
                    if msg.get("type") == "setup":
                        self.setup = {k: v for k, v in msg.items() if k != "type"}
                        continue
                    return msg
                continue
            if self._ctl_eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                return None
            # Wake now and then: an escaped descendant may hold our pipe open after the
            # runner died (only outside the namespaces mode).
            events = self._sel.select(timeout=min(remaining, 0.1))
            if not events and self.proc.poll() is not None:
                self._read_ctl()
                if b"\n" not in self._ctl_buf:
                    self._ctl_eof = True
            for key, _ in events:
                fd = int(key.fd)
                if fd == self._ctl_r:
                    self._read_ctl()
                else:
                    self._read_stream(fd)

    def message_waiting(self) -> bool:
        """Whether a whole message has already come and not been taken by :meth:`recv`."""
        return b"\n" in self._ctl_buf

    def expect(self, *types: str) -> dict[str, Any]:
        """The next message, which must be of one of ``types``; else SandboxError."""
        try:
            msg = self.recv()
        except SandboxError:
            self.close()
            raise
        if msg is not None and msg.get("type") in types:
            return msg
        if msg is not None and msg.get("type") == "setup_error":
            self.close()
            raise SandboxError(f"could not contain the code: {msg.get('error')}")
        if msg is not None and msg.get("type") == "error":
            self.close()
            raise SandboxError(
                f"the code raised during the {msg.get('stage')}:\n{msg.get('error')}"
                + self.output_hint()
            )
        self.close()
        raise SandboxError(self.stop_reason() + self.output_hint())

    def send(self, msg: dict[str, Any]) -> None:
        try:
            os.write(self._ctl_w, (json.dumps(msg) + "\n").encode())
        except OSError as exc:
            raise SandboxError(f"the sandboxed process is gone: {exc}") from None

    def code_pid(self) -> int:
        """Host pid of the process running the code (the runner, under unshare's fork)."""
        if self._code_pid is None:
            pid = self.proc.pid
            if self.iso.mode == "namespaces":
                pid = child_of(self.proc.pid) or pid
            self._code_pid = pid
        return self._code_pid

    def _read_ctl(self) -> None:
        """Read what the control pipe holds, at most ``READ_SLICE_BYTES`` per call (the
        caller then looks at its deadline again). Past ``MAX_MESSAGE_BYTES`` unread, the
        pipe is closed to the child: nothing more is read, and ``wire_error`` says why."""
        if self.wire_error is not None:
            return
        taken = 0
        while taken < READ_SLICE_BYTES:
            try:
                chunk = os.read(self._ctl_r, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._ctl_eof = True
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(self._ctl_r)
                return
            taken += len(chunk)
            self._ctl_buf += chunk
            if len(self._ctl_buf) > MAX_MESSAGE_BYTES:
                self.wire_error = overflow_reason(self._ctl_buf)
                self._ctl_buf.clear()
                self._ctl_eof = True
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(self._ctl_r)
                return

    def _read_stream(self, fd: int) -> bool:
        """Read what is there; keep up to the cap, count the rest. False at EOF."""
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(fd)
            return False
        buf = self._out[fd]
        room = self.limits.output_bytes - len(buf)
        if room > 0:
            buf += chunk[:room]
        self._dropped[fd] += max(len(chunk) - max(room, 0), 0)
        return True

    # -- ending ----------------------------------------------------------------------
    def close(self) -> None:
        """Let the child exit (briefly), kill whatever of the run remains, drain, clean up."""
        if self.closed:
            return
        self.closed = True
        try:
            grace = min(EXIT_GRACE_S, max(self.deadline - time.monotonic(), 0.0))
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                if time.monotonic() >= self.deadline:
                    self.timed_out = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self._cg is not None:
                self._cg.kill()
            kill_run(self.run_id)
            self.returncode = self.proc.wait()
            self.duration_s = time.perf_counter() - self.t0
            self._drain(time.monotonic() + 1.0)
        finally:
            self._remove_cgroup()
            self._sel.close()
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
            for fd in (self._ctl_r, self._ctl_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._cleanup_dir()

    def _drain(self, until: float) -> None:
        open_fds = [fd for fd in self._streams if fd in self._sel.get_map()]
        while open_fds and time.monotonic() < until:
            for key, _ in self._sel.select(timeout=max(until - time.monotonic(), 0)):
                fd = int(key.fd)
                if fd == self._ctl_r:
                    self._read_ctl()
                elif not self._read_stream(fd):
                    open_fds.remove(fd)

    @property
    def protections(self) -> tuple[str, ...]:
        """The protections active for this run: the machine's, less the cgroup ones when
        this run's group could not be created."""
        if self.cgroup_error is None:
            return self.iso.active
        return tuple(p for p in self.iso.active if not p.startswith("cgroup"))

    def _remove_cgroup(self) -> None:
        cg = self._cg
        if cg is None:
            return
        self._cg = None
        with contextlib.suppress(OSError, ValueError):
            self.cgroup_cpu_usec = cg.cpu_usec()
        with contextlib.suppress(OSError, ValueError):
            self.oom_kills = cg.oom_kills()
        cg.kill()
        cg.remove()

    def _cleanup_dir(self) -> None:
        def retry(func: Any, path: str, _exc: Any) -> None:
            # The code may have removed permissions on its own files.
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(path), 0o700)
                os.chmod(path, 0o700)
                func(path)

        shutil.rmtree(self.dir, onerror=retry)

    def output(self, name: str) -> str:
        for fd, stream in self._streams.items():
            if stream == name:
                text = escape_controls(self._out[fd].decode("utf-8", "replace"))
                if self._dropped[fd]:
                    text += f"\n[pytest-carbon: {self._dropped[fd]} more bytes of {name} dropped]"
                return text
        return ""

    def output_hint(self) -> str:
        tail = self.output("stderr").strip()[-1500:]
        return f"\nstderr (tail):\n{tail}" if tail else ""

    def stop_reason(self) -> str:
        """Why the child stopped without reporting (after close())."""
        if self.timed_out:
            return f"timed out after {self.timeout_s:g} s (the run's processes were killed)"
        rc = self.returncode
        if self.oom_kills:
            return (
                f"the run's memory limit ({self.limits.memory_bytes / 1024**2:g} MiB for all "
                f"its processes) was reached: the kernel killed {self.oom_kills} process(es)"
            )
        if rc is not None and rc < 0:
            return _signal_reason(-rc)
        if rc is not None and rc > 128 and rc - 128 < signal.NSIG:
            return _signal_reason(rc - 128)
        return (
            f"the process exited with status {rc} without reporting a result "
            "(os._exit, or the interpreter itself failed)"
        )

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signal_reason(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    hint = {
        "SIGXCPU": "it exceeded its CPU-time limit",
        "SIGSEGV": "the interpreter crashed (deep recursion in C code?)",
        "SIGKILL": "killed (out of memory, or by the code itself)",
        "SIGXFSZ": "it wrote a file larger than the file-size limit",
    }.get(name, "")
    return f"the process was killed by {name}" + (f": {hint}" if hint else "")


def _proc_pids() -> list[str]:
    with os.scandir("/proc") as it:
        return [e.name for e in it if e.name.isdigit()]


def child_of(ppid: int) -> int | None:
    for name in _proc_pids():
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == ppid:
            return int(name)
    return None


def run_processes(run_id: str | None = None) -> list[int]:
    """Pids of live processes started by sandbox runs (by ``run_id``, or by any run)."""
    needle = f"{MARKER}={run_id}\0".encode() if run_id else f"{MARKER}=".encode()
    me = os.getpid()
    found = []
    for name in _proc_pids():
        if int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if (b"\0" + env).find(b"\0" + needle) >= 0:
            found.append(int(name))
    return found


def kill_run(run_id: str, rounds: int = 50) -> None:
    """Kill every process carrying ``run_id``: stop them all first (a stopped process
    cannot fork), rescanning until no new one appears, then SIGKILL them."""
    stopped: set[int] = set()
    for _ in range(rounds):
        new = [pid for pid in run_processes(run_id) if pid not in stopped]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
