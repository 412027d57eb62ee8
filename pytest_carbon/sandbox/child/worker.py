"""A side's zygote and its round workers.

This module runs on its own: the runner hands its source to ``python -c`` (see
:func:`.bench.worker_program`), in a fresh interpreter that imports nothing of the
runner. So it uses the standard library only, and no relative import.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import traceback

PR_SET_DUMPABLE = 4
WORKER_REPORT_FD = 3


# -- entry points: a function, or a class's method (``Solution.divideArray``) -------------
def entry_point_ok(entry_point: object) -> bool:
    """Whether ``entry_point`` is a function name (``f``) or ``Class.method``: two
    identifiers, neither private (``__init__`` is no entry point)."""
    if not isinstance(entry_point, str):
        return False
    parts = entry_point.split(".")
    if len(parts) == 1:
        return entry_point.isidentifier()
    return len(parts) == 2 and all(p.isidentifier() and not p.startswith("_") for p in parts)


def resolve_entry(namespace: dict[str, object], entry_point: str) -> object:
    """The callable that one call of the task runs, from a namespace the code was loaded
    into. A function name gives the function; ``Class.method`` gives a callable that
    instantiates the class afresh (no argument) and calls the method on that instance:
    the instantiation is part of every call, as on LeetCode, so no state a call leaves on
    an instance reaches the next one. Raises LookupError when the code defines neither."""
    name, dot, method = entry_point.partition(".")
    if not dot:
        fn = namespace.get(entry_point)
        if not callable(fn):
            raise LookupError(f"the code defines no function {entry_point!r}")
        return fn
    cls = namespace.get(name)
    if not isinstance(cls, type):
        raise LookupError(f"the code defines no class {name!r}")
    if not callable(getattr(cls, method, None)):
        raise LookupError(f"the class {name!r} defines no method {method!r}")

    def call(*args: object, **kwargs: object) -> object:
        return getattr(cls(), method)(*args, **kwargs)

    call.__name__ = method
    return call


def bench_zygote() -> None:  # pragma: no cover - runs in its own interpreter
    """The fork server of one side, a fresh interpreter started once per comparison: it
    reads the code and entry point from fd 0, compiles the code (never runs it), then for
    each request on its socket (fd 3, with two pipe ends per worker attached) forks the
    round's workers through an intermediate process that exits at once, so that they are
    the runner's children. It never sees an input or a result: what a worker inherits from it
    is the interpreter, the compiled code and nothing else. Never returns."""
    import linecache
    import os
    import socket

    buf = b""
    while b"\n" not in buf:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            os._exit(3)
        buf += chunk
    job = json.loads(buf.split(b"\n", 1)[0])
    del buf
    null = os.open(os.devnull, os.O_RDONLY)  # fd 0 stays taken: received fds are above 3
    os.dup2(null, 0)
    os.close(null)
    sock = socket.socket(fileno=WORKER_REPORT_FD)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no other process of ours may read us
    guard = worker_guard_sigchld(libc)  # inherited by every worker
    source, entry_point = job["code"], job["entry_point"]
    del job
    linecache.cache["<candidate>"] = (len(source), None, source.splitlines(True), "<candidate>")
    try:
        code = compile(source, "<candidate>", "exec")
    except BaseException as exc:
        sock.sendall((json.dumps({"type": "error", "error": worker_tb(exc)}) + "\n").encode())
        os._exit(0)
    sock.sendall((json.dumps({"type": "zygote", "guard": guard}) + "\n").encode())
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 16, 256)
        if not msg or not fds or len(fds) % 2:
            os._exit(0)
        middle = os.fork()
        if middle == 0:
            for k in range(0, len(fds), 2):
                if os.fork() == 0:
                    sock.close()
                    os.dup2(fds[k], 0)
                    os.dup2(fds[k + 1], WORKER_REPORT_FD)
                    for fd in fds:  # no other worker's pipes: each has only its own
                        if fd not in (0, WORKER_REPORT_FD):
                            os.close(fd)
                    worker_round(libc, code, entry_point, guard)
            os._exit(0)
        os.waitpid(middle, 0)
        for fd in fds:
            os.close(fd)
        sock.sendall(b"f")


def worker_round(libc: ctypes.CDLL, code: object, entry_point: str, guard: str) -> None:
    """One round, in a freshly forked worker: read the round's inputs (distinct, each
    served once) from fd 0, join a fresh session keyring, report ``prepared`` on fd 3,
    wait for go (one byte on fd 0), then per call load the code into a new namespace and
    call it; report every result as plain JSON text. Never returns."""
    import os
    import sys

    def report(msg: dict[str, object]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            data = data[os.write(WORKER_REPORT_FD, data) :]

    def leave(status: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    try:
        buf = b""
        while b"\n" not in buf:
            chunk = os.read(0, 1 << 20)
            if not chunk:
                leave(3)
            buf += chunk
        line, rest = buf.split(b"\n", 1)
        inputs = json.loads(line)["inputs"]
        del buf, line
        keyring = worker_fresh_keyring(libc)
        report({"type": "prepared", "pid": os.getpid(), "guard": guard, "keyring": keyring})
        if not rest and not os.read(0, 1):
            leave(3)
        os.close(0)
    except BaseException as exc:  # ours, not the code's: say why on stderr
        with contextlib.suppress(Exception):
            sys.stderr.write(f"pytest-carbon worker: {worker_tb(exc)}\n")
        leave(4)
    builtins = __builtins__
    results: list[str] = []
    j = 0
    try:
        for j in range(len(inputs)):
            case = inputs[j]
            inputs[j] = None
            namespace: dict[str, object] = {"__name__": "__candidate__", "__builtins__": builtins}
            exec(code, namespace)  # type: ignore[arg-type]
            fn = resolve_entry(namespace, entry_point)  # a class: a fresh instance per call
            got = fn(*case["args"], **case["kwargs"])  # type: ignore[operator]
            results.append(json.dumps(plain_result(got), sort_keys=True))
    except BaseException as exc:
        report({"type": "error", "index": j, "error": worker_tb(exc)})
        leave(0)
    report({"type": "ran", "results": results})
    leave(0)


def worker_tb(exc: BaseException, lines: int = 12) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the code called sys.exit({exc.code!r})"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


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
                return {"<type>": "dict with a non-plain key", "repr": worker_repr(k)}
            out[k if kt is str else json.dumps(k)] = plain_result(v, depth + 1)
        return out
    if t is set or t is frozenset:
        items = [plain_result(v, depth + 1) for v in value]  # type: ignore[attr-defined]
        return {"<set>": sorted(items, key=lambda x: json.dumps(x, sort_keys=True))}
    if t is bytes:
        return {"<bytes>": value.hex()}  # type: ignore[attr-defined]
    return {"<type>": f"{t.__module__}.{t.__qualname__}", "repr": worker_repr(value)}


def worker_repr(value: object, limit: int = 2000) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= limit else text[:limit] + "..."


def worker_fresh_keyring(libc: ctypes.CDLL) -> str:
    """A new anonymous session keyring: no key an earlier round added to its own is
    possessed here (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL))."""
    import os

    numbers = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
    if numbers is None:
        return "unavailable"
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    serial = int(syscall(ctypes.c_long(numbers), 1, None))
    return "fresh" if serial > 0 else f"not set: errno {ctypes.get_errno()}"


def worker_guard_sigchld(libc: ctypes.CDLL) -> str:
    """Forbid ignoring SIGCHLD (or SA_NOCLDWAIT) in this process and its children: the
    kernel reaps such children itself and their CPU time is then counted nowhere
    without a cgroup."""
    import os
    import signal

    arch = {"x86_64": (0xC000003E, 13), "aarch64": (0xC00000B7, 134)}.get(os.uname().machine)
    if arch is None:
        return f"unavailable on {os.uname().machine}"

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint32),
        ]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    ld, jeq, ret = 0x20, 0x15, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    prog = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 0, 5, arch[0]),
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jeq, 0, 3, arch[1]),
        (ld, 0, 0, 16),  # args[0], low half
        (jeq, 0, 1, int(signal.SIGCHLD)),
        (ret, 0, 0, eperm),
        (ret, 0, 0, allow),
    ]
    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    fprog = Prog(len(prog), filters)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return f"not applied: no_new_privs, errno {ctypes.get_errno()}"
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        return f"not applied: Operation not permitted (errno {ctypes.get_errno()})"
    return "active"
