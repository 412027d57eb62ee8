"""The script run inside the sandbox child: set up containment, define the code, run it.

Standard library only: it runs under ``python -I`` in a scrubbed environment, possibly as
another user, and must not import pytest_carbon. It is copied into the sandbox directory
and started as ``python -I _runner.py CTL_OUT_FD CTL_IN_FD``; the job (code, cases,
limits) is read from ``job.json`` beside it and the file is removed before any generated
code runs.

The protocol with the parent is JSON lines on the two control fds, never stdout or stderr
(generated code may print). Messages the runner sends: ``setup`` (containment applied),
``case`` (about to run case i), ``result`` (verify), ``ready`` / ``done`` / ``result``
(workload), ``error`` (the code failed), ``setup_error`` (containment could not be
applied: the parent treats it as a sandbox failure). The runner never trusts its own
exit: after its last message it calls ``os._exit`` so that threads left by the code do
not keep it alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import linecache
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, cast

# Mount flags from <sys/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_STRICTATIME = 1 << 24
MS_RELATIME = 1 << 21
_LOCKED_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Smallest pid_max the kernel accepts (RESERVED_PIDS + 1).
PID_MAX_MIN = 301
#: Calls shorter than this are timed in batches, so timing overhead stays small.
BATCH_TARGET_S = 1e-3
#: Longest repr of a value sent back to the parent.
REPR_CHARS = 2000
#: Largest returned value sent to the parent to be judged (its JSON).
GOT_BYTES = 8 * 1024**2
#: The device nodes the code gets in the namespaces mode; the rest of the host's /dev
#: (kmsg, ttys, kvm, disks) is not there.
DEV_NODES = ("null", "zero", "urandom", "random")
#: Directories where host services put their UNIX sockets and FIFOs (docker, systemd,
#: D-Bus, X11, ssh-agent, tmux): covered by an empty tmpfs in the namespaces mode.
RENDEZVOUS_DIRS = ("/tmp", "/run", "/var/run")
#: Linux system call numbers and seccomp constants, per machine (x86_64, aarch64).
_SYSCALLS = {
    "x86_64": {"keyctl": 250, "socket": 41, "io_uring_setup": 425, "audit_arch": 0xC000003E},
    "aarch64": {"keyctl": 219, "socket": 198, "io_uring_setup": 425, "audit_arch": 0xC00000B7},
}
KEYCTL_JOIN_SESSION_KEYRING = 1
AF_VSOCK = 40
EAFNOSUPPORT = 97
ENOSYS = 38
MNT_DETACH = 2
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
#: Namespaces whose identity the runner reports, so the parent can check they differ.
NAMESPACES = ("user", "mnt", "pid", "net", "ipc")

_out_fd = -1
_in_fd = -1
_in_buf = b""


def send(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, default=repr) + "\n").encode()
    while data:
        n = os.write(_out_fd, data)
        data = data[n:]


def recv() -> dict[str, Any]:
    global _in_buf
    while b"\n" not in _in_buf:
        chunk = os.read(_in_fd, 65536)
        if not chunk:
            flush_and_exit(3)
        _in_buf += chunk
    line, _in_buf = _in_buf.split(b"\n", 1)
    msg: dict[str, Any] = json.loads(line)
    return msg


def flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


# -- containment (namespace mode) ------------------------------------------------------
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unescape(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit() and len(path[i + 1 : i + 4]) == 3:
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, set[str]]]:
    result = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            result.append((_unescape(fields[4]), set(fields[5].split(","))))
    return result


def contain(job: dict[str, Any]) -> dict[str, Any]:
    """In the new user, mount, pid and network namespaces (we are pid 1 and the namespace's
    root): cap the number of processes, give the code a private size-limited tmpfs as its
    working directory and /dev/shm, make every other mount read-only, and drop every
    capability so none of it can be undone."""
    libc = _libc()
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    notes: dict[str, Any] = {}
    # A per-namespace pid_max (Linux >= 6.14) bounds the number of processes even where
    # RLIMIT_NPROC does not apply (root). Best effort: older kernels share the host's.
    try:
        with open("/proc/sys/kernel/pid_max", "w") as f:
            f.write(str(max(PID_MAX_MIN, int(job["processes"]) + 1)))
        notes["pid_max"] = max(PID_MAX_MIN, int(job["processes"]) + 1)
    except OSError as exc:
        notes["pid_max"] = f"not set: {exc}"

    workdir = os.getcwd()
    # Best effort, each undone if it fails: a machine that refuses them keeps the other
    # protections of this mode, and the doctor reports these two as missing.
    try:
        notes["dev"] = _minimal_dev(libc)
    except OSError as exc:
        notes["dev"] = f"not set: {exc}"
    try:
        notes["covered"] = _cover_rendezvous(libc, int(job["tmpfs_bytes"]))
    except OSError as exc:
        notes["covered"] = f"not set: {exc}"
    # Our working directory may lie under a directory just covered: recreate its path.
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    size = f"size={int(job['tmpfs_bytes'])},mode=0700".encode()
    for target in (workdir, "/dev/shm"):
        if not os.path.isdir(target):
            continue
        _check(
            libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, size),
            f"mount tmpfs on {target}",
        )
    os.chdir(workdir)  # enter the tmpfs just mounted over our old working directory

    private = {workdir, "/dev/shm"}
    if isinstance(notes["covered"], list) and "/tmp" in notes["covered"]:
        private.add("/tmp")  # our own empty tmpfs, size-limited
    for mountpoint, opts in _mounts():
        if mountpoint in private or "ro" in opts:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name, bit in _LOCKED_FLAGS.items():
            if name in opts:
                flags |= bit
        # A shadowed or vanished mount point cannot be reached by the code either.
        libc.mount(None, mountpoint.encode(), None, flags, None)
    writable = [
        mp
        for mp, _ in _mounts()
        if mp not in private and os.path.exists(mp) and not os.statvfs(mp).f_flag & 1
    ]
    if writable:
        raise OSError(f"could not make these mounts read-only: {', '.join(writable)}")

    # No new privileges, an empty bounding set (exec as uid 0 regains nothing) and empty
    # capability sets: the code cannot remount, raise pid_max or re-enter namespaces.
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    with open("/proc/self/status") as f:
        eff = next(line for line in f if line.startswith("CapEff:")).split()[1]
    if int(eff, 16):
        raise OSError(f"capabilities still effective: {eff}")
    notes["read_only"] = True
    notes["caps_dropped"] = True
    return notes


def _minimal_dev(libc: ctypes.CDLL) -> list[str]:
    """Replace /dev by a tmpfs holding only :data:`DEV_NODES`, bind-mounted from the host
    (a tmpfs mounted in a user namespace cannot hold device nodes of its own)."""
    fds = {}
    for name in DEV_NODES:
        with contextlib.suppress(OSError):
            fds[name] = os.open(f"/dev/{name}", os.O_PATH)
    mounted: list[str] = []
    try:
        _check(
            libc.mount(b"tmpfs", b"/dev", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=1m,mode=0755"),
            "mount tmpfs on /dev",
        )
        mounted.append("/dev")
        for name, fd in fds.items():
            target = f"/dev/{name}"
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
            _check(
                libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND, None),
                f"bind-mount {target}",
            )
            mounted.append(target)
        os.mkdir("/dev/shm", 0o1777)
        for link, to in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(to, f"/dev/{link}")
    except OSError:
        for target in reversed(mounted):  # back to the host's /dev, read-only later
            libc.umount2(target.encode(), MNT_DETACH)
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    return sorted(fds)


def _cover_rendezvous(libc: ctypes.CDLL, tmpfs_bytes: int) -> list[str]:
    """An empty tmpfs over each of :data:`RENDEZVOUS_DIRS` (once per real directory:
    /var/run is usually a link to /run). /tmp stays writable (size-limited), the others
    become read-only with the rest of the filesystem."""
    done: list[str] = []
    try:
        for target in RENDEZVOUS_DIRS:
            real = os.path.realpath(target)
            if real in done or not os.path.isdir(real):
                continue
            opts = f"size={tmpfs_bytes},mode=1777" if real == "/tmp" else "size=1m,mode=0755"
            flags = MS_NOSUID | MS_NODEV
            _check(
                libc.mount(b"tmpfs", real.encode(), b"tmpfs", flags, opts.encode()),
                f"mount tmpfs on {real}",
            )
            done.append(real)
    except OSError:
        for real in reversed(done):
            libc.umount2(real.encode(), MNT_DETACH)
        raise
    return done


def fresh_keyring() -> int:
    """Join a new anonymous session keyring, so no key of pytest's session is possessed
    by the code (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)); its serial, > 0."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(f"no keyctl system call number known for {os.uname().machine}")
    syscall = _libc().syscall
    syscall.restype = ctypes.c_long
    serial = int(syscall(ctypes.c_long(numbers["keyctl"]), KEYCTL_JOIN_SESSION_KEYRING, None))
    if serial < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    return serial


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def block_vsock() -> None:
    """A seccomp filter failing ``socket(AF_VSOCK, ...)`` with EAFNOSUPPORT: no namespace
    or mount hides the hypervisor's vsock. ``io_uring_setup`` fails with ENOSYS (io_uring
    creates sockets without the ``socket`` system call), and foreign system-call ABIs
    (x32, 32-bit compatibility calls) are refused outright, so that nothing goes around
    the filter."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(f"no seccomp filter for {os.uname().machine}")
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    # Offsets into struct seccomp_data: nr 0, arch 4, args[0] (low half) 16.
    # Jumps are relative: the target is the next instruction's index plus jt or jf.
    program = [
        (ld, 0, 0, 4),  # 0: arch
        (jeq, 0, 8, numbers["audit_arch"]),  # 1: foreign ABI -> 10
        (ld, 0, 0, 0),  # 2: nr
        (jge, 5, 0, 0x40000000),  # 3: x32 -> 9
        (jeq, 6, 0, numbers["io_uring_setup"]),  # 4: -> 11
        (jeq, 0, 2, numbers["socket"]),  # 5: else -> 8
        (ld, 0, 0, 16),  # 6: args[0], the address family
        (jeq, 1, 0, AF_VSOCK),  # 7: -> 9, else 8
        (ret, 0, 0, SECCOMP_RET_ALLOW),  # 8
        (ret, 0, 0, SECCOMP_RET_ERRNO | EAFNOSUPPORT),  # 9
        (ret, 0, 0, SECCOMP_RET_ERRNO | 1),  # 10: EPERM
        (ret, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),  # 11
    ]
    filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
    prog = _SockFprog(len(program), filters)
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _check(
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
        "PR_SET_SECCOMP",
    )


def harden() -> dict[str, Any]:
    """What every mode gets, whatever the machine: a fresh session keyring and the vsock
    filter; plus the namespaces we run in, for the parent to compare with its own."""
    notes: dict[str, Any] = {}
    try:
        notes["keyring"] = fresh_keyring()
    except OSError as exc:
        notes["keyring"] = f"not set: {exc}"
    try:
        block_vsock()
        notes["vsock_blocked"] = True
    except OSError as exc:
        notes["vsock_blocked"] = f"not set: {exc}"
    ns = {}
    for name in NAMESPACES:
        with contextlib.suppress(OSError):
            ns[name] = os.stat(f"/proc/self/ns/{name}").st_ino
    notes["namespaces"] = ns
    return notes


# -- comparison ------------------------------------------------------------------------
class NotPlain(TypeError):
    """A candidate returned something that is not plain JSON data; the message names it
    as a noun phrase ("a subclass of int (m.Fake)"), to follow "returned"."""


#: Exact types that are plain data. Subclasses are refused: their methods (``__eq__``,
#: ``__hash__``, ``__iter__``) are the candidate's code and must not run in a judgement.
_SCALARS = (type(None), bool, int, float, str)
_BASES = (bool, int, float, str, list, tuple, dict)
PLAIN_TYPES = "exactly None, bool, int, float, str, list, tuple or dict"


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def plain(value: object, _depth: int = 0) -> object:
    """``value`` as plain JSON data, built by the interpreter's own types only: tuples
    become lists, dict keys become strings the way JSON writes them. Anything else
    (subclasses of the built-in types included) raises :class:`NotPlain` naming it.
    Only ``type(x) is ...`` tests and the built-in types' own methods run here, never a
    method of the candidate."""
    if _depth > 200:
        raise NotPlain("a value nested more than 200 levels deep")
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls is list or cls is tuple:
        return [plain(v, _depth + 1) for v in cast("list[Any]", value)]
    if cls is dict:
        out = {}
        for k, v in cast("dict[Any, Any]", value).items():
            if type(k) is str:
                key = k
            elif type(k) in _SCALARS:
                key = json.dumps(k)
            else:
                raise NotPlain(f"a dict with a key of type {_type_name(k)}")
            out[key] = plain(v, _depth + 1)
        return out
    for base in _BASES:
        if isinstance(value, base):
            raise NotPlain(f"a subclass of {base.__name__} ({_type_name(value)})")
    raise NotPlain(f"a {_type_name(value)}")


def normalise(value: object) -> object:
    """Kept for callers of the old name: :func:`plain`."""
    return plain(value)


def matches(got: object, expect: object, tol: float) -> bool:
    """Equality of two plain values (see :func:`plain`), except that floats match within
    rel 1e-9 or the case's absolute ``tol``. Both sides must be plain: anything else does
    not match, and no method of a non-built-in type is ever called."""
    if isinstance(expect, float) or (type(got) is float and type(expect) is int):
        if type(got) not in (int, float) or type(expect) not in (int, float):
            return False
        g, e = float(cast(float, got)), float(cast(float, expect))
        if math.isnan(e) and math.isnan(g):
            return True
        return math.isclose(g, e, rel_tol=1e-9, abs_tol=tol)
    if type(expect) is list and type(got) is list:
        return len(got) == len(expect) and all(
            matches(g, e, tol) for g, e in zip(got, expect, strict=True)
        )
    if type(expect) is dict and type(got) is dict:
        return got.keys() == expect.keys() and all(matches(got[k], expect[k], tol) for k in expect)
    if type(got) not in _SCALARS or type(expect) not in _SCALARS:
        return False
    # bool is not int here: True must not pass for 1.
    if (type(got) is bool) != (type(expect) is bool):
        return False
    return bool(got == expect)


def short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the verdict
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    if len(text) > REPR_CHARS:
        text = text[:REPR_CHARS] + f"... [{len(text) - REPR_CHARS} more characters]"
    return text


def tb_tail(exc: BaseException, lines: int = 12) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the code called sys.exit({exc.code!r})"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- jobs --------------------------------------------------------------------------------
def define(job: dict[str, Any]) -> tuple[dict[str, Any], Callable[..., Any]]:
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": __builtins__}
    code = compile(job["code"], "<candidate>", "exec")
    # Tracebacks show the candidate's lines.
    linecache.cache["<candidate>"] = (
        len(job["code"]),
        None,
        job["code"].splitlines(True),
        "<candidate>",
    )
    exec(code, namespace)
    fn = namespace.get(job["entry_point"])
    if not callable(fn):
        raise LookupError(f"the code defines no function {job['entry_point']!r}")
    return namespace, fn


def run_verify(job: dict[str, Any]) -> None:
    try:
        namespace, fn = define(job)
    except BaseException as exc:
        send({"type": "result", "passed": False, "stage": "define", "error": tb_tail(exc)})
        return
    for i, case in enumerate(job["tests"]):
        send({"type": "case", "index": i})
        try:
            got = fn(*case.get("args", []), **case.get("kwargs", {}))
        except BaseException as exc:
            send(
                {
                    "type": "result",
                    "passed": False,
                    "stage": "case",
                    "index": i,
                    "error": tb_tail(exc),
                    "exit": isinstance(exc, SystemExit),
                }
            )
            return
        try:
            value = plain(got)
        except NotPlain as exc:
            # No repr of the value: that too would be the candidate's code.
            got_text = f"{exc}, not plain data ({PLAIN_TYPES})"
            send({"type": "result", "passed": False, "stage": "case", "index": i, "got": got_text})
            return
        # The parent judges the value (pytest_carbon/prompts/judge.py), out of reach of
        # the candidate, and says whether to go on.
        size = len(json.dumps(value))
        if size > GOT_BYTES:
            text = f"a value of {size} bytes of JSON, more than the sandbox passes back"
            send({"type": "result", "passed": False, "stage": "case", "index": i, "got": text})
            return
        send({"type": "got", "index": i, "value": value})
        if recv().get("type") != "next":
            return
    if job.get("check"):
        send({"type": "case", "index": "check"})
        scope = dict(namespace)

        # The check compares what the candidate returns: as plain data, so that its
        # assertions run the built-in types' ``==``, never the candidate's.
        def candidate(*a: Any, **kw: Any) -> object:
            got = fn(*a, **kw)
            try:
                return plain(got)
            except NotPlain as exc:
                raise NotPlain(f"the candidate returned {exc}, not plain data") from None

        scope["candidate"] = candidate
        try:
            exec(compile(job["check"], "<check>", "exec"), scope)
            checker = scope.get("check")
            if callable(checker) and checker is not namespace.get("check"):
                checker(candidate)
        except BaseException as exc:
            send(
                {
                    "type": "result",
                    "passed": False,
                    "stage": "check",
                    "error": tb_tail(exc),
                    "exit": isinstance(exc, SystemExit),
                }
            )
            return
    send({"type": "result", "passed": True})


def run_workload(job: dict[str, Any]) -> None:
    args, kwargs = job["args"], job["kwargs"]
    try:
        _, fn = define(job)
        t0 = time.perf_counter()
        fn(*args, **kwargs)  # warm-up, outside the window
        warm_s = time.perf_counter() - t0
        # Calls under BATCH_TARGET_S are timed in batches, sized from a second call.
        batch = 1
        if warm_s < BATCH_TARGET_S:
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            one_s = max(time.perf_counter() - t0, 1e-7)
            batch = max(1, min(int(BATCH_TARGET_S / one_s), 1_000_000))
    except BaseException as exc:
        send({"type": "error", "stage": "warm-up", "error": tb_tail(exc)})
        return
    send({"type": "ready", "batch": batch})
    if recv().get("type") != "go":
        return
    min_time_s = float(job["min_time_s"])
    durations: list[float] = []
    total = 0.0
    clock = time.perf_counter
    try:
        while True:
            t0 = clock()
            for _ in range(batch):
                fn(*args, **kwargs)
            dt = clock() - t0
            durations.append(dt)
            total += dt
            if total >= min_time_s:
                break
    except BaseException as exc:
        send(
            {
                "type": "error",
                "stage": "workload",
                "error": tb_tail(exc),
                "rounds": len(durations) * batch,
            }
        )
        return
    send({"type": "done", "rounds": len(durations) * batch})
    if recv().get("type") != "fin":  # the parent closes its window before we go on
        return
    send({"type": "result", "batch": batch, "durations_s": durations})


def main() -> None:
    global _out_fd, _in_fd
    _out_fd, _in_fd = int(sys.argv[1]), int(sys.argv[2])
    with open("job.json") as f:
        job = json.load(f)
    os.remove("job.json")
    linecache.getlines(__file__)  # keep our source for tracebacks once the tmpfs hides it
    notes: dict[str, Any] = {}
    if job.get("contain"):
        try:
            notes = contain(job)
        except BaseException as exc:
            send({"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
            flush_and_exit(2)
    notes.update(harden())
    send({"type": "setup", **notes})
    if job["mode"] == "probe":
        send({"type": "result", "version": sys.version, "uid": os.getuid()})
    elif job["mode"] == "verify":
        run_verify(job)
    else:
        run_workload(job)
    flush_and_exit(0)


if __name__ == "__main__":
    main()
