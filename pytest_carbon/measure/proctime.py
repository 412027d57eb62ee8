"""CPU time of the measured process tree and of the whole machine.

The process tree is this process, its reaped children (``RUSAGE_CHILDREN``) and any
live processes the caller names (e.g. a sandbox child still running).
"""

from __future__ import annotations

import os
import resource

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_cpu_s(pids: tuple[int, ...] = ()) -> float:
    """Seconds of CPU (user + system) used by this process, its reaped children and ``pids``."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
    for pid in pids:
        total += pid_cpu_s(pid)
    return total


def pid_cpu_s(pid: int) -> float:
    """CPU seconds of a live process (0 when it is gone)."""
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


class _SelfStatm:
    """``/proc/self/statm`` kept open: one ``pread`` per reading instead of open/read/close
    (the meter reads it twice per test). Reopened after ``fork`` (the fd's pid differs)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.pid = -1

    def rss_bytes(self) -> int:
        pid = os.getpid()
        if self.fd is None or self.pid != pid:
            try:
                # /proc/self resolves at open time: open our own pid's file explicitly.
                self.fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
                self.pid = pid
            except OSError:
                return 0
        try:
            return int(os.pread(self.fd, 128, 0).split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            return 0


_SELF_STATM = _SelfStatm()


def rss_bytes(pids: tuple[int, ...] = ()) -> int:
    """Resident set size of this process plus ``pids``, in bytes."""
    total = _SELF_STATM.rss_bytes()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_busy_cpu_s(path: str = "/proc/stat") -> float | None:
    """Seconds of busy CPU summed over all CPUs since boot (None where unreadable)."""
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
