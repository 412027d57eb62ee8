"""The bench mode: serve a side's measured rounds, each in fresh worker processes forked by
the side's zygote (:mod:`.worker`)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pkgutil
import socket
import sys
from typing import Any

from . import kernel
from .protocol import recv, send
from .worker import PR_SET_DUMPABLE, WORKER_REPORT_FD

# The runner never runs candidate code itself, and no process that does inherits anything
# from it: each round is a new interpreter (``python -c`` with :mod:`.worker`, started
# by posix_spawn, so none of the runner's memory is copied), given only its own inputs on
# fd 0 and its own report pipe as fd 3. Before each round the runner kills whatever is
# left, wipes the writable tmpfs mounts (working directory, /tmp, /dev/shm) and removes
# SysV IPC objects, so no round can leave anything for the next one. The runner relays
# every result to the parent, which counts them and compares them all.
PR_SET_CHILD_SUBREAPER = 36


def worker_program() -> str:
    """The ``python -c`` program of a side's zygote: the source of :mod:`.worker` and the
    call that starts it. Read from the child's own file (the zipapp, where it runs in the
    sandbox), so call it before containment hides that file."""
    data = pkgutil.get_data(__package__ or __name__.rpartition(".")[0], "worker.py")
    if data is None:
        raise OSError("the worker's source cannot be read")
    return data.decode("utf-8") + "\nbench_zygote()\n"


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10 (close-on-exec), so that posix_spawn's dup2 onto 0
    and 3 never meets itself."""
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def _spawn_zygote(argv: list[str], payload: bytes) -> tuple[int, socket.socket]:
    """The side's fork server, a new interpreter: fd 0 its job, fd 3 its socket, 1 and 2
    our stdout and stderr; nothing else (all our descriptors are close-on-exec).
    Returns (pid, our end of the socket)."""
    in_r, in_w = (_high_fd(fd) for fd in os.pipe())
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    far = _high_fd(theirs.detach())
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, far, WORKER_REPORT_FD),
            ],
        )
    finally:
        os.close(in_r)
        os.close(far)
    with contextlib.suppress(OSError):
        while payload:
            payload = payload[os.write(in_w, payload) :]
    os.close(in_w)
    return pid, ours


def _fork_workers(zygote: socket.socket, payloads: list[bytes]) -> list[tuple[int, int]]:
    """Workers forked by the zygote, one per payload, each payload written to its
    worker's fd 0. Returns (report read fd, go write fd) per worker; raises OSError when
    the zygote is gone."""
    pipes = [
        ((_high_fd(a), _high_fd(b)), (_high_fd(c), _high_fd(d)))
        for (a, b), (c, d) in ((os.pipe(), os.pipe()) for _ in payloads)
    ]
    theirs = [fd for (in_r, _), (_, rep_w) in pipes for fd in (in_r, rep_w)]
    try:
        socket.send_fds(zygote, [b"f"], theirs)
        if zygote.recv(1) != b"f":
            raise OSError("the zygote is gone")
    except OSError:
        for (_, in_w), (rep_r, _) in pipes:
            os.close(in_w)
            os.close(rep_r)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    for ((_, in_w), _), payload in zip(pipes, payloads, strict=True):
        with contextlib.suppress(OSError):  # it died at once: its report says nothing
            while payload:
                payload = payload[os.write(in_w, payload) :]
    return [(rep_r, in_w) for (_, in_w), (rep_r, _) in pipes]


def _read_line(fd: int, pid: int) -> tuple[bytes, int | None]:
    """A line from the worker's report pipe; stops early when the worker ``pid`` has
    exited (a descendant may hold the pipe open; 0: no pid, read to the end of the line
    or of the pipe). Returns (line or b"", exit status or None)."""
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
        elif not pid:
            continue
        elif status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        else:
            break
    return buf.split(b"\n", 1)[0], status


def _sweep_round(contained: bool, keep: tuple[int, ...] = ()) -> tuple[int, float]:
    """Kill every process the round left behind (all but us and ``keep``: the zygote and
    the round's workers still waiting for their turn) and reap it (its CPU time joins
    ours). Returns (processes killed, CPU seconds of everything reaped)."""
    import signal

    killed = 0
    cpu_s = 0.0
    me = os.getpid()
    for _ in range(50):
        alive = []
        zombies = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me or int(name) in keep:
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2 :].split()
            if fields[0] == b"Z":
                if int(fields[1]) == me:
                    zombies.append(int(name))  # ours to reap, at once
                continue
            if contained or int(fields[1]) == me:
                alive.append(int(name))
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed += len(alive)
        # Wait for exactly the processes killed or dead, never for "any child": a process
        # forked after the scan (a detached grandchild, reparented to us) would block a
        # wait on -1 for as long as it lives. It is caught by the next scan instead.
        for pid in alive + zombies:
            try:
                _, _, ru = os.wait4(pid, 0)
            except ChildProcessError:
                continue  # not our child: its parent was killed too; it comes back to us
            cpu_s += ru.ru_utime + ru.ru_stime
        if not alive and not zombies:
            break
    return killed, cpu_s


def _private_dirs(contained: bool) -> list[str]:
    """Where a round can leave files: our working directory (the run's own directory)
    and, in the namespaces mode, where every writable mount is one of the sandbox's own
    tmpfs (the working directory, /tmp, /dev/shm), each of those but /dev itself. The
    host's /tmp outside the namespaces mode is not ours to wipe."""
    cwd = os.getcwd()
    if not contained:
        return [cwd]
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, fstype = left.split(), right.split()[:1]
            mp = kernel.unescape(fields[4])
            writable = fstype == ["tmpfs"] and "ro" not in fields[5].split(",")
            if writable and mp != "/dev" and mp not in out:
                out.append(mp)
    return out or [cwd]


def _wipe(dirs: list[str]) -> None:
    """Remove everything in ``dirs`` (never crossing into another mount, at any depth), so
    that the next round finds them as empty as the first did.

    A read-only bind can sit below a tmpfs: a virtual environment under /tmp is shown at
    its own path inside the sandbox's /tmp. ``shutil.rmtree`` would descend into it and
    try every file of it on every round (seconds of CPU charged to the round), so the walk
    checks the device of every entry, not only of the top-level ones."""
    import stat

    def chmod_dir(path: str) -> None:
        with contextlib.suppress(OSError):  # the code may have removed its permissions
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o700)

    def empty(top: str, dev: int) -> None:
        chmod_dir(top)
        try:
            names = os.listdir(top)
        except OSError:
            return
        for name in names:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_dev != dev:
                continue  # a mount point: not ours
            if stat.S_ISDIR(st.st_mode):
                empty(path, dev)
                with contextlib.suppress(OSError):  # it may hold a mount point
                    os.rmdir(path)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    for top in dirs:
        try:
            dev = os.lstat(top).st_dev
        except OSError:
            continue
        empty(top, dev)


def _remove_sysv_ipc(libc: ctypes.CDLL) -> int:
    """Remove every SysV shared memory segment, message queue and semaphore set of our
    IPC namespace (they outlive the processes that made them). Returns how many."""
    removed = 0
    for name, call in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        fn = getattr(libc, call)
        for row in rows:
            fields = row.split()
            if len(fields) < 2 or not fields[1].isdigit():
                continue
            ident = int(fields[1])
            rc = fn(ident, 0, 0) if call == "semctl" else fn(ident, 0, None)  # IPC_RMID = 0
            removed += rc == 0
    return removed


def _clear_user_keyrings(libc: ctypes.CDLL) -> str:
    """Empty the user and user-session keyrings (``@u``, ``@us``), which every process of
    the sandbox's user reaches whatever its session keyring: a key added there by one
    worker would be there for the next. Only where they are the sandbox's own: in its
    user namespace, on Linux >= 5.3 (before, they were the host user's)."""
    numbers = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return "kernel version unknown"
    if numbers is None or (major, minor) < (5, 3):
        return "not the sandbox's own here"
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    for keyring in (-4, -5):  # KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING
        syscall(ctypes.c_long(numbers), 7, ctypes.c_long(keyring))  # KEYCTL_CLEAR
    return "cleared"


def run_bench(job: dict[str, Any], zygote_program: str) -> None:
    """Serve rounds: ``prepare`` (wipe what the last round left, fork a fresh worker with
    the round's inputs), ``go`` (run the round; reply ``done`` with every result once the
    worker and all it started are reaped), ``quit``. One reply per request."""
    libc = kernel.libc()
    contained = bool(job.get("contain"))
    argv = [sys.executable, "-s", "-B"]
    if sys.version_info >= (3, 11):
        argv.append("-P")
    argv += ["-c", zygote_program]
    # Other processes of the same user cannot open our fds through /proc, nor trace us.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if not contained:  # in a pid namespace we are pid 1: orphans come to us anyway
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    private = _private_dirs(contained)
    setup = json.dumps({"code": job["code"], "entry_point": job["entry_point"]}) + "\n"
    zygote_pid, zygote = _spawn_zygote(argv, setup.encode())
    line = b""
    with contextlib.suppress(OSError):
        while b"\n" not in line:
            chunk = zygote.recv(1 << 16)
            if not chunk:
                break
            line += chunk
    try:
        hello = json.loads(line) if line.strip() else {}
    except ValueError:
        hello = {}
    if not isinstance(hello, dict) or hello.get("type") != "zygote":
        error = hello.get("error") if isinstance(hello, dict) else None
        send({"type": "error", "stage": "define", "error": str(error or "the zygote failed")})
        return
    send({"type": "ready", "private": private, "guard": hello.get("guard")})
    workers: list[tuple[int, int, int]] = []  # pid, report fd, go fd
    zyg = (zygote_pid,)
    texts: dict[str, bytes] = {}  # input id -> its JSON, as the parent defined it
    while True:
        msg = recv()
        kind, seq = msg.get("type"), msg.get("seq")
        if kind == "prepare" and not workers:
            _sweep_round(contained, zyg)
            _wipe(private)
            ipc = _remove_sysv_ipc(libc) if contained else 0
            keys = _clear_user_keyrings(libc) if contained else "not the sandbox's own here"
            if msg.get("forget"):
                texts.clear()
            for key, value in (msg.get("define") or {}).items():
                texts[str(key)] = json.dumps(value).encode()
            try:
                payloads = [
                    b'{"inputs": [' + b", ".join(texts[str(i)] for i in batch) + b"]}\n"
                    for batch in msg["batches"]
                ]
            except (KeyError, TypeError) as exc:
                send({"type": "error", "seq": seq, "stage": "prepare", "error": repr(exc)})
                return
            del msg
            try:
                forked = _fork_workers(zygote, payloads)
            except OSError as exc:
                send({"type": "error", "seq": seq, "stage": "prepare", "error": str(exc)})
                return
            del payloads
            for r, gw in forked:
                line, _ = _read_line(r, 0)
                try:
                    prepared = json.loads(line) if line else {}
                except ValueError:
                    prepared = {}
                pid = prepared.get("pid") if isinstance(prepared, dict) else None
                if prepared.get("type") != "prepared" or not isinstance(pid, int):
                    send(
                        {
                            "type": "error",
                            "seq": seq,
                            "stage": "prepare",
                            "error": "the worker failed to start",
                        }
                    )
                    return
                workers.append((pid, r, gw))
            send(
                {
                    "type": "prepared",
                    "seq": seq,
                    "guard": prepared.get("guard"),
                    "keyring": prepared.get("keyring"),
                    "ipc_removed": ipc,
                    "user_keyrings": keys,
                }
            )
        elif kind == "go" and workers:
            send(_run_workers(workers, contained, zyg, private, libc, seq))
            workers = []
        else:  # quit, or a request out of order
            zygote.close()
            _sweep_round(contained)
            return


def _run_workers(
    workers: list[tuple[int, int, int]],
    contained: bool,
    zyg: tuple[int, ...],
    private: list[str],
    libc: ctypes.CDLL,
    seq: Any,
) -> dict[str, Any]:
    """The round, inside the parent's window: each prepared worker in turn runs its calls
    and is reaped with all it started; between two workers, what the first left is
    wiped. Returns the ``done`` reply: each worker's report line as it came (the parent
    reads them: nothing here parses what a worker wrote), and the wait statuses."""
    reply: dict[str, Any] = {"type": "done", "seq": seq, "killed": 0, "cpu_s": 0.0}
    reports: list[str] = []
    statuses: list[int | None] = []
    for k, (pid, r, gw) in enumerate(workers):
        if k:
            _wipe(private)
            if contained:
                _remove_sysv_ipc(libc)
                _clear_user_keyrings(libc)
        with contextlib.suppress(OSError):
            os.write(gw, b"g")
        os.close(gw)
        line, status = _read_line(r, pid)
        os.close(r)
        if status is None:
            with contextlib.suppress(ChildProcessError):
                _, status, ru = os.wait4(pid, 0)
                reply["cpu_s"] += ru.ru_utime + ru.ru_stime
        waiting = tuple(p for p, _, _ in workers[k + 1 :])
        killed, swept_cpu_s = _sweep_round(contained, zyg + waiting)
        reply["killed"] += killed
        reply["cpu_s"] += swept_cpu_s
        reports.append(line.decode("utf-8", "replace"))
        statuses.append(status)
        # Only to stop early: whether the report is what it claims is for the parent.
        if not line.startswith(b'{"type": "ran"'):
            for _, r2, gw2 in workers[k + 1 :]:
                os.close(r2)
                os.close(gw2)
            _sweep_round(contained, zyg)
            break
    reply["reports"] = reports
    reply["statuses"] = statuses
    return reply
