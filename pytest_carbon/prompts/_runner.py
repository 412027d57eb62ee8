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


def run_workload(job: dict[str, Any]) -> None:
    # ADAPTATION (suite branch, minimal; the `loop` rewrite supersedes it): a workload
    # with several `calls` is cycled through, one index running on through warm-up, batch
    # sizing and the window, so consecutive calls get distinct inputs.
    single = {"args": job["args"], "kwargs": job["kwargs"]}
    calls = [(c["args"], c["kwargs"]) for c in job.get("calls") or [single]]
    n = len(calls)
    args, kwargs = calls[0]
    try:
        _, fn = define(job)
        t0 = time.perf_counter()
        fn(*args, **kwargs)  # warm-up, outside the window
        warm_s = time.perf_counter() - t0
        # Calls under BATCH_TARGET_S are timed in batches, sized from a second call.
        batch = 1
        if warm_s < BATCH_TARGET_S:
            args, kwargs = calls[1 % n]
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
    i = 2
    try:
        while True:
            t0 = clock()
            for _ in range(batch):
                args, kwargs = calls[i % n]
                i += 1
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
        run_workload(job)
    flush_and_exit(0)


if __name__ == "__main__":
    main()
