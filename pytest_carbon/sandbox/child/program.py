"""The program mode: a program that reads stdin and writes stdout, compiled once (where its
language compiles), then run once per input, each run a new process; and the checker
mode, the task's trusted ``checker`` in a sandboxed process of its own.

The runner writes the source into ``build/`` of its working directory and, asked to
``compile``, runs the compiler there (its own process, reaped, swept). What ``build/``
then holds (the program) is kept in the runner's memory: before each run every writable
mount is wiped (as in the bench mode) and ``build/`` is written back, so a run finds
exactly what the first found. ``prepare`` puts each input of the round in a memory file
(``memfd``: no writable mount holds it) before the parent's window; ``go`` runs the
round's processes one after the other, stdin from the input's memory file, stdout and
stderr into memory files of their own, each reaped with all it started before the next.
The runner relays each run's exit status and normalised stdout (or its SHA-256, for
measured rounds) to the parent, which judges them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from typing import Any

from . import kernel
from .bench import PR_SET_CHILD_SUBREAPER, _private_dirs, _remove_sysv_ipc, _sweep_round, _wipe
from .protocol import recv, send
from .worker import PR_SET_DUMPABLE

#: Largest stdout of one run that is kept (the rest is dropped, and the run fails).
STDOUT_BYTES = 1024**2
#: Tail of stderr (and of the compiler's output) sent back to be shown.
STDERR_TAIL = 4000
BUILD = "build"


def normalise(text: str) -> str:
    """Trailing whitespace of every line, and trailing empty lines, removed; ``\\r\\n`` as
    ``\\n``. The one rule by which a program's stdout is compared (pytest's process uses
    this function too)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def digest(text: str) -> str:
    """SHA-256 of ``normalise(text)``: what a measured round sends back per run."""
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()


def _snapshot(top: str) -> list[tuple[str, int, bytes | None]]:
    """``top``'s files and directories: (relative path, mode, bytes or None for a dir)."""
    out: list[tuple[str, int, bytes | None]] = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in dirs:
            path = os.path.join(root, name)
            out.append((os.path.relpath(path, top), stat.S_IMODE(os.lstat(path).st_mode), None))
        for name in sorted(files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            with open(path, "rb") as f:
                out.append((os.path.relpath(path, top), stat.S_IMODE(st.st_mode), f.read()))
    return out


def _restore(top: str, snap: list[tuple[str, int, bytes | None]]) -> None:
    os.makedirs(top, mode=0o755, exist_ok=True)
    for rel, mode, data in snap:
        path = os.path.join(top, rel)
        if data is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
            os.chmod(path, mode | 0o700)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.chmod(path, mode)


def _memfd(name: str, data: bytes = b"") -> int:
    fd = os.memfd_create(name)  # close-on-exec: only what posix_spawn dup2s is inherited
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_memfd(fd: int, limit: int) -> tuple[bytes, int]:
    """(the first ``limit`` bytes, the file's size)."""
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    left = min(size, limit)
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks), size


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        import signal

        try:
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        except ValueError:
            return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else str(status)


def _spawn(argv: list[str], cwd: str, stdin_fd: int) -> tuple[int, int, int]:
    """Start ``argv`` in ``cwd``: stdin from ``stdin_fd``, stdout and stderr into memory
    files. Returns (pid, stdout fd, stderr fd)."""
    out_fd, err_fd = _memfd("stdout"), _memfd("stderr")
    here = os.getcwd()
    os.chdir(cwd)  # posix_spawn has no chdir action before Python 3.13's
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
                (os.POSIX_SPAWN_DUP2, out_fd, 1),
                (os.POSIX_SPAWN_DUP2, err_fd, 2),
            ],
        )
    except BaseException:
        os.close(out_fd)
        os.close(err_fd)
        raise
    finally:
        os.chdir(here)
    return pid, out_fd, err_fd


def _run_one(argv: list[str], cwd: str, stdin_fd: int, contained: bool) -> dict[str, Any]:
    """One process, waited for, and everything it left killed and reaped. Returns its
    status, stdout (bytes, bounded), stderr's tail and CPU time (itself and all reaped)."""
    try:
        pid, out_fd, err_fd = _spawn(argv, cwd, stdin_fd)
    except OSError as exc:
        return {"status": f"could not start {argv[0]}: {exc}", "ok": False, "stdout": b"",
                "stderr": "", "cpu_s": 0.0, "killed": 0}  # fmt: skip
    cpu_s = 0.0
    try:
        _, status, ru = os.wait4(pid, 0)
        cpu_s += ru.ru_utime + ru.ru_stime
    except ChildProcessError:
        status = -1
    killed, swept = _sweep_round(contained)
    cpu_s += swept
    try:
        out, size = _read_memfd(out_fd, STDOUT_BYTES)
        err, _ = _read_memfd(err_fd, 1 << 20)
    finally:
        os.close(out_fd)
        os.close(err_fd)
    ok = status == 0
    text = "killed (timeout?)" if status == -1 else _status_text(status)
    if size > STDOUT_BYTES:
        ok = False
        text += f"; stdout over {STDOUT_BYTES} bytes ({size})"
    tail = err.decode("utf-8", "replace")[-STDERR_TAIL:]
    return {"status": text, "ok": ok, "stdout": out, "stderr": tail, "cpu_s": cpu_s,
            "killed": killed}  # fmt: skip


def run_program(job: dict[str, Any]) -> None:
    """Serve ``compile``, ``prepare`` / ``go`` (a round of runs) and ``quit``, one reply
    per request (see the module docstring)."""
    libc = kernel.libc()
    contained = bool(job.get("contain"))
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if not contained:  # in a pid namespace we are pid 1: orphans come to us anyway
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    private = _private_dirs(contained)
    build = os.path.join(os.getcwd(), BUILD)
    os.makedirs(build, mode=0o755)
    with open(os.path.join(build, str(job["source"])), "w", encoding="utf-8") as f:
        f.write(str(job["code"]))
    snap = _snapshot(build)
    run_argv = [str(a) for a in job["run"]]
    send({"type": "ready", "private": private})
    texts: dict[str, bytes] = {}
    stdin_fds: list[int] = []
    while True:
        msg = recv()
        kind, seq = msg.get("type"), msg.get("seq")
        if kind == "compile" and job.get("compile"):
            none = _memfd("none")
            try:
                run = _run_one([str(a) for a in job["compile"]], build, none, contained)
            finally:
                os.close(none)
            output = run["stdout"].decode("utf-8", "replace")[-STDERR_TAIL:] + run["stderr"]
            if run["ok"]:
                snap = _snapshot(build)
            send({"type": "compiled", "seq": seq, "ok": run["ok"], "status": run["status"],
                  "output": output[-STDERR_TAIL:], "cpu_s": run["cpu_s"]})  # fmt: skip
        elif kind == "prepare" and not stdin_fds:
            _sweep_round(contained)
            _wipe(private)
            if contained:
                _remove_sysv_ipc(libc)
            _restore(build, snap)
            if msg.get("forget"):
                texts.clear()
            for key, value in (msg.get("define") or {}).items():
                texts[str(key)] = str(value).encode("utf-8", "surrogatepass")
            try:
                stdin_fds = [_memfd("stdin", texts[str(k)]) for k in msg["ids"]]
            except (KeyError, TypeError) as exc:
                send({"type": "error", "seq": seq, "stage": "prepare", "error": repr(exc)})
                return
            send({"type": "prepared", "seq": seq})
        elif kind == "go":
            reply: dict[str, Any] = {"type": "done", "seq": seq, "killed": 0, "cpu_s": 0.0}
            runs = []
            for j, fd in enumerate(stdin_fds):
                if j:
                    _wipe(private)
                    if contained:
                        _remove_sysv_ipc(libc)
                    _restore(build, snap)
                run = _run_one(run_argv, build, fd, contained)
                os.close(fd)
                reply["cpu_s"] += run["cpu_s"]
                reply["killed"] += run["killed"]
                out = run["stdout"].decode("utf-8", "replace")
                entry = {"ok": run["ok"], "status": run["status"], "stderr": run["stderr"]}
                if msg.get("digest"):
                    entry["digest"] = digest(out)
                else:
                    entry["stdout"] = normalise(out)
                runs.append(entry)
                if not run["ok"]:
                    for rest in stdin_fds[j + 1 :]:
                        os.close(rest)
                    break
            stdin_fds = []
            reply["runs"] = runs
            send(reply)
        else:  # quit, or a request out of order
            _sweep_round(contained)
            return


def run_checker(job: dict[str, Any]) -> None:
    """The task's ``checker`` (trusted suite code, Python), in a process of its own: it
    defines ``check(stdin, stdout)``, which returns True/None to accept and False (or
    raises) to reject. Serves ``judge`` requests: ``verdict`` with ``ok`` and ``error``."""
    import traceback

    namespace: dict[str, Any] = {"__name__": "__checker__"}
    try:
        exec(compile(str(job["checker"]), "<checker>", "exec"), namespace)
        check = namespace["check"]
        if not callable(check):
            raise TypeError("the checker's 'check' is not a function")
    except BaseException as exc:
        send({"type": "error", "stage": "define", "error": f"{type(exc).__name__}: {exc}"})
        return
    send({"type": "ready"})
    while True:
        msg = recv()
        if msg.get("type") != "judge":
            return
        try:
            verdict = check(str(msg.get("stdin", "")), str(msg.get("stdout", "")))
            ok, error = verdict is not False, "" if verdict is not False else "check returned False"
        except Exception as exc:
            ok = False
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        sys.stdout.flush()
        send({"type": "verdict", "seq": msg.get("seq"), "ok": ok, "error": error})
        with contextlib.suppress(Exception):
            sys.stderr.flush()
