"""CPU time and memory of the measured process tree, and busy CPU time of the whole machine.

The process tree is this process, its reaped children (``RUSAGE_CHILDREN``) and any
live processes the caller names (e.g. a sandbox child still running, a local model
server).

Two back ends give the same numbers:

* ``proc``: ``/proc`` and ``getrusage``, read directly (Linux; the fast path, a few µs a
  read, taken at each edge of a test's window).
* ``psutil``: where ``/proc`` is missing (macOS, Windows). Forced on Linux with the
  environment variable ``PYTEST_CARBON_PROCFS=off``, which is how the tests prove the
  fallback works on the machine they run on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from time import process_time as _process_time
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: ``PYTEST_CARBON_PROCFS=off`` makes every reader use psutil, as on a system without /proc.
PROCFS_ENV = "PYTEST_CARBON_PROCFS"
DEFAULT_PROC_STAT = "/proc/stat"

_HAS_PROC = os.path.exists("/proc/self/stat")
try:
    import resource as _resource

    _RUSAGE_CHILDREN = _resource.RUSAGE_CHILDREN
except ImportError:  # Windows
    _resource = None  # type: ignore[assignment]


def backend() -> str:
    """``proc`` or ``psutil``: which reader this process uses now."""
    if not _HAS_PROC or _resource is None:
        return "psutil"
    return "psutil" if os.environ.get(PROCFS_ENV, "").lower() in ("off", "0", "no") else "proc"


def _psutil() -> Any:
    import psutil  # a dependency; imported only where /proc is not used

    return psutil


def tree_cpu_s(pids: tuple[int, ...] = ()) -> float:
    """Seconds of CPU (user + system) used by this process, its reaped children and ``pids``."""
    return cpu_reader()(pids)


def cpu_reader() -> Callable[[tuple[int, ...]], float]:
    """:func:`tree_cpu_s` of the back end in use now. The meter and the estimate sensor
    take it once, when they are built, so a read on the per-test path does not ask the
    environment which back end to use (that alone cost about 1 µs a read)."""
    return _tree_cpu_psutil if backend() == "psutil" else _tree_cpu_proc


def _tree_cpu_proc(pids: tuple[int, ...] = ()) -> float:
    # This process: CLOCK_PROCESS_CPUTIME_ID, the figure getrusage's user + system time
    # is split from (Linux keeps their sum equal to it), to the nanosecond and without
    # building a struct; its reaped children: getrusage.
    c = _resource.getrusage(_RUSAGE_CHILDREN)
    total: float = _process_time() + c.ru_utime + c.ru_stime
    for pid in pids:
        total += _pid_cpu_proc(pid)
    return total


def _tree_cpu_psutil(pids: tuple[int, ...] = ()) -> float:
    t = _psutil().Process().cpu_times()
    total = float(t.user + t.system) + _children_cpu(t)
    for pid in pids:
        total += _pid_cpu_psutil(pid)
    return total


def _children_cpu(t: Any) -> float:
    # children_user/children_system exist on Linux and Windows' psutil only; macOS
    # reports none (its reaped children are then not counted, as psutil cannot see them).
    return float(getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0))


def pid_cpu_s(pid: int) -> float:
    """CPU seconds of a live process and the children it has reaped (0 when it is gone)."""
    return _pid_cpu_psutil(pid) if backend() == "psutil" else _pid_cpu_proc(pid)


def _pid_cpu_psutil(pid: int) -> float:
    psutil = _psutil()
    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.Error, OSError):
        return 0.0
    return float(t.user + t.system + _children_cpu(t))


def _pid_cpu_proc(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        # utime, stime, and cutime, cstime: the children it has reaped count too, so a
        # workload that starts its own subprocesses is not under-counted.
        return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _CLK_TCK
    except (IndexError, ValueError):
        return 0.0


def process_tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of ``pid``, its reaped children and its live descendants; None when the
    process cannot be read (gone, or another user's on a system that hides it)."""
    psutil = _psutil()
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = float(t.user + t.system + _children_cpu(t))
        for child in proc.children(recursive=True):
            try:
                ct = child.cpu_times()
            except (psutil.Error, OSError):
                continue  # exited meanwhile: its parent reaps it into children_*
            # A live child's own time and the children it reaped; the parent's
            # children_* holds only the children it reaped itself.
            total += float(ct.user + ct.system + _children_cpu(ct))
        return total
    except (psutil.Error, OSError):
        return None


class _SelfStatm:
    """``/proc/self/statm`` kept open: one ``pread`` per reading instead of open/read/close
    (the estimate reads it at each edge of a window). Reopened after ``fork``: the fd
    names the parent's pid, and a child forgets it (``os.register_at_fork``), so a read
    asks for no pid."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.pid = -1
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        """In a forked child: the inherited fd reads the parent (closed, reopened later)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None

    def rss_bytes(self) -> int:
        fd = self.fd
        if fd is None:
            pid = os.getpid()
            try:
                # /proc/self resolves at open time: open our own pid's file explicitly.
                fd = self.fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
                self.pid = pid
            except OSError:
                return 0
        try:
            return int(os.pread(fd, 128, 0).split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            return 0


_SELF_STATM = _SelfStatm()


def rss_bytes(pids: tuple[int, ...] = ()) -> int:
    """Resident set size of this process plus ``pids``, in bytes."""
    return rss_reader()(pids)


def rss_reader() -> Callable[[tuple[int, ...]], int]:
    """:func:`rss_bytes` of the back end in use now (taken once, as :func:`cpu_reader`)."""
    return _rss_psutil if backend() == "psutil" else _rss_proc


def _rss_psutil(pids: tuple[int, ...] = ()) -> int:
    psutil = _psutil()
    total = 0
    for pid in (None, *pids):
        try:
            total += int(psutil.Process(pid).memory_info().rss)
        except (psutil.Error, OSError):
            continue
    return total


def _rss_proc(pids: tuple[int, ...] = ()) -> int:
    total = _SELF_STATM.rss_bytes()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_busy_cpu_s(path: str = DEFAULT_PROC_STAT) -> float | None:
    """Seconds of busy CPU summed over all CPUs since boot (None where unreadable).

    ``path`` other than ``/proc/stat`` is always read as a file (a scripted stat file in
    the tests); the default follows :func:`backend`."""
    if path == DEFAULT_PROC_STAT and backend() == "psutil":
        try:
            t = _psutil().cpu_times()
        except Exception:
            return None
        return float(sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq")))
    try:
        with open(path, "rb") as f:
            line = f.readline()
    except OSError:
        return None
    parts = line.split()
    if not parts or parts[0] != b"cpu":
        return None
    try:
        # user nice system idle iowait irq softirq steal (guest is already in user)
        v = [int(x) for x in parts[1:9]]
    except ValueError:
        return None
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy / _CLK_TCK


def logical_cpus() -> int:
    return os.cpu_count() or 1
