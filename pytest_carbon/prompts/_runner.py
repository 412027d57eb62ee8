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
from typing import Any

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


# -- comparison ------------------------------------------------------------------------
def normalise(value: object) -> object:
    """Tuples become lists, recursively, so candidates may return either."""
    if isinstance(value, (tuple, list)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def matches(got: object, expect: object, tol: float) -> bool:
    """``==``, except that floats match within rel 1e-9 or the case's absolute ``tol``."""
    if isinstance(expect, float) or (
        isinstance(got, float) and isinstance(expect, int) and not isinstance(expect, bool)
    ):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        if math.isnan(expect) and math.isnan(got):
            return True
        return math.isclose(got, expect, rel_tol=1e-9, abs_tol=tol)
    if isinstance(expect, list) and isinstance(got, list):
        return len(got) == len(expect) and all(
            matches(g, e, tol) for g, e in zip(got, expect, strict=True)
        )
    if isinstance(expect, dict) and isinstance(got, dict):
        return got.keys() == expect.keys() and all(matches(got[k], expect[k], tol) for k in expect)
    try:
        return bool(got == expect)
    except Exception:
        return False


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
        tol = float(case.get("tol", 0.0) or 0.0)
        if not matches(normalise(got), case["expect"], tol):
            send(
                {
                    "type": "result",
                    "passed": False,
                    "stage": "case",
                    "index": i,
                    "got": short_repr(got),
                }
            )
            return
    if job.get("check"):
        send({"type": "case", "index": "check"})
        scope = dict(namespace)
        scope["candidate"] = fn
        try:
            exec(compile(job["check"], "<check>", "exec"), scope)
            checker = scope.get("check")
            if callable(checker) and checker is not namespace.get("check"):
                checker(fn)
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


# -- measured workload (bench mode) -----------------------------------------------------
# The runner never runs candidate code itself: each round it forks a fresh worker that
# loads the code anew for every call, so nothing the code remembers survives a call.
# The runner (trusted) relays one reply per request to the parent, reaps everything the
# worker started, and keeps the round's results until the parent asks for a sample.
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
#: (audit arch, rt_sigaction syscall number) per machine, for the SIGCHLD guard.
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 13), "aarch64": (0xC00000B7, 134)}
#: Largest total of pre-decoded arguments one round may hold, in JSON bytes.
ROUND_INPUT_BYTES = 64 * 1024**2


def plain_result(value: object, depth: int = 0) -> object:
    """The value as plain JSON data: exact builtin types only, so that no type the code
    defined (an ``int`` whose ``__eq__`` is always true) reaches the judgement. Anything
    else becomes ``{"<type>": name, "repr": ...}``, which never equals a plain value."""
    if depth > 200:
        return {"<type>": "too deep"}
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        return value if math.isfinite(value) else {"<float>": repr(value)}  # type: ignore[arg-type]
    if t is list or t is tuple:
        return [plain_result(v, depth + 1) for v in value]  # type: ignore[attr-defined]
    if t is dict:
        out = {}
        for k, v in value.items():  # type: ignore[attr-defined]
            kt = type(k)
            if not (k is None or kt is str or kt is int or kt is float or kt is bool):
                return {"<type>": "dict with a non-plain key", "repr": short_repr(k)}
            out[k if kt is str else json.dumps(k)] = plain_result(v, depth + 1)
        return out
    if t is set or t is frozenset:
        items = [plain_result(v, depth + 1) for v in value]  # type: ignore[attr-defined]
        return {"<set>": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if t is bytes:
        return {"<bytes>": value.hex()}  # type: ignore[attr-defined]
    return {"<type>": f"{t.__module__}.{t.__qualname__}", "repr": short_repr(value)}


def _guard_sigchld() -> str:
    """Forbid ignoring SIGCHLD (or SA_NOCLDWAIT) in this process and its children: the
    kernel reaps such children itself and their CPU time is then counted nowhere."""
    libc = _libc()
    arch = _SECCOMP_ARCH.get(os.uname().machine)
    if arch is None:
        return f"unavailable on {os.uname().machine}"

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    ld, jeq, ret = 0x20, 0x15, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    prog = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 0, 5, arch[0]),
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jeq, 0, 3, arch[1]),
        (ld, 0, 0, 16),  # args[0], low half
        (jeq, 0, 1, int(signal_sigchld())),
        (ret, 0, 0, eperm),
        (ret, 0, 0, allow),
    ]
    filters = (SockFilter * len(prog))(*[SockFilter(*f) for f in prog])
    fprog = SockFprog(len(prog), filters)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _check(
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0),
        "PR_SET_SECCOMP",
    )
    return "active"


def signal_sigchld() -> int:
    import signal

    return int(signal.SIGCHLD)


def call_candidate(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _worker(
    code: Any, entry_point: str, texts: list[str], n: int, report_fd: int, go_fd: int
) -> None:
    """One round, in a fresh process: decode fresh arguments, wait for go, then per call
    load the code into a new namespace and call it. Never returns."""
    os.close(_out_fd)  # the code must not be able to speak to the parent
    os.close(_in_fd)

    def report(msg: dict[str, Any]) -> None:
        data = (json.dumps(msg, default=repr) + "\n").encode()
        while data:
            data = data[os.write(report_fd, data) :]

    try:
        guard = _guard_sigchld()
    except OSError as exc:
        guard = f"not applied: {exc}"
    inputs = [json.loads(texts[j % len(texts)]) for j in range(n)]
    report({"type": "prepared", "guard": guard})
    if not os.read(go_fd, 1):
        os._exit(3)
    builtins = __builtins__
    clock = time.perf_counter
    durations = 0.0
    results: list[str] = []
    j = 0
    try:
        for j in range(n):
            case = inputs[j]
            inputs[j] = None
            t0 = clock()
            namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
            exec(code, namespace)
            fn = namespace.get(entry_point)
            if not callable(fn):
                raise LookupError(f"the code defines no function {entry_point!r}")
            got = call_candidate(fn, case["args"], case["kwargs"])
            durations += clock() - t0
            results.append(json.dumps(plain_result(got), sort_keys=True))
    except BaseException as exc:
        report({"type": "error", "index": j, "error": tb_tail(exc)})
        flush_and_exit(0)
    report({"type": "ran", "calls": n, "claimed_s": durations, "results": results})
    flush_and_exit(0)


def _read_line(fd: int, pid: int) -> tuple[bytes, int | None]:
    """A line from the worker's report pipe; stops early when the worker has exited (a
    descendant may hold the pipe open). Returns (line or b"", exit status or None)."""
    import select

    buf = b""
    status: int | None = None
    while b"\n" not in buf:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            buf += chunk
        elif status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        else:
            break
    return buf.split(b"\n", 1)[0], status


def _sweep_round(contained: bool) -> tuple[int, float]:
    """Kill every process the round left behind and reap it (its CPU time joins ours).
    Returns (processes killed, CPU seconds of everything reaped)."""
    import signal

    killed = 0
    cpu_s = 0.0
    me = os.getpid()
    for _ in range(50):
        alive = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2 :].split()
            if fields[0] == b"Z":
                continue  # reaped below
            if contained or int(fields[1]) == me:
                alive.append(int(name))
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed += len(alive)
        while True:
            try:
                pid, _, ru = os.wait4(-1, 0 if alive else os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            cpu_s += ru.ru_utime + ru.ru_stime
        if not alive:
            break
    return killed, cpu_s


def run_bench(job: dict[str, Any]) -> None:
    """Serve rounds: ``prepare`` (fork a worker, decode its arguments), ``go`` (run the
    round; reply ``done`` once the worker and all it started are reaped), ``sample``
    (results of chosen calls of the last round), ``quit``. One reply per request."""
    libc = _libc()
    contained = bool(job.get("contain"))
    try:
        code = compile(job["code"], "<candidate>", "exec")
    except BaseException as exc:
        send({"type": "error", "stage": "define", "error": tb_tail(exc)})
        return
    linecache.cache["<candidate>"] = (
        len(job["code"]),
        None,
        job["code"].splitlines(True),
        "<candidate>",
    )
    texts = [
        json.dumps({"args": c.get("args", []), "kwargs": c.get("kwargs", {})}) for c in job["calls"]
    ]
    largest = max(len(t) for t in texts)
    # Other processes of the same user cannot open our fds through /proc, nor trace us.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if not contained:  # in a pid namespace we are pid 1: orphans come to us anyway
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    send({"type": "ready", "inputs": len(texts), "max_calls": max(1, ROUND_INPUT_BYTES // largest)})
    results: list[str] = []
    worker: tuple[int, int, int] | None = None  # pid, report fd, go fd
    while True:
        msg = recv()
        kind, seq = msg.get("type"), msg.get("seq")
        if kind == "prepare" and worker is None:
            n = int(msg["n"])
            r, w = os.pipe()
            gr, gw = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(r)
                    os.close(gw)
                    _worker(code, job["entry_point"], texts, n, w, gr)
                finally:
                    os._exit(4)
            os.close(w)
            os.close(gr)
            line, status = _read_line(r, pid)
            if not line:
                os.close(r)
                os.close(gw)
                killed, _ = _sweep_round(contained)
                send(
                    {
                        "type": "error",
                        "seq": seq,
                        "stage": "prepare",
                        "error": "the worker failed to start",
                    }
                )
                return
            worker = (pid, r, gw)
            send({"type": "prepared", "seq": seq, "guard": json.loads(line).get("guard")})
        elif kind == "go" and worker is not None:
            pid, r, gw = worker
            worker = None
            os.write(gw, b"g")
            os.close(gw)
            line, status = _read_line(r, pid)
            os.close(r)
            cpu_s = 0.0
            if status is None:
                with contextlib.suppress(ChildProcessError):
                    _, status, ru = os.wait4(pid, 0)
                    cpu_s += ru.ru_utime + ru.ru_stime
            killed, swept_cpu_s = _sweep_round(contained)
            cpu_s += swept_cpu_s
            try:
                report = json.loads(line) if line else {}
            except ValueError:
                report = {}
            if not isinstance(report, dict):
                report = {}
            reply: dict[str, Any] = {"type": "done", "seq": seq, "killed": killed, "cpu_s": cpu_s}
            if report.get("type") == "ran":
                results = [str(x) for x in report.get("results", [])]
                reply["calls"] = report.get("calls")
                reply["claimed_s"] = report.get("claimed_s")
            elif report.get("type") == "error":
                reply["error"] = str(report.get("error"))
                reply["index"] = report.get("index")
            elif line:  # something else wrote on the worker's report pipe
                reply["protocol"] = line[:200].decode("utf-8", "replace")
            else:
                reply["error"] = f"the worker ended without reporting (wait status {status})"
            send(reply)
        elif kind == "sample":
            picked = {str(i): results[i] for i in msg.get("indices", []) if 0 <= i < len(results)}
            send({"type": "sample", "seq": seq, "results": picked})
        else:  # quit, or a request out of order
            return


def main() -> None:
    global _out_fd, _in_fd
    _out_fd, _in_fd = int(sys.argv[1]), int(sys.argv[2])
    with open("job.json") as f:
        job = json.load(f)
    os.remove("job.json")
    linecache.getlines(__file__)  # keep our source for tracebacks once the tmpfs hides it
    if job.get("contain"):
        try:
            notes = contain(job)
        except BaseException as exc:
            send({"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
            flush_and_exit(2)
        send({"type": "setup", **notes})
    if job["mode"] == "probe":
        send({"type": "result", "version": sys.version, "uid": os.getuid()})
    elif job["mode"] == "verify":
        run_verify(job)
    else:
        run_bench(job)
    flush_and_exit(0)


if __name__ == "__main__":
    main()
