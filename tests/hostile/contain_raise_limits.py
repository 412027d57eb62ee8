"""Raises its own memory and process limits where it can find them (its cgroup, read
from /proc/self/cgroup, under /sys/fs/cgroup, v1 and v2), then takes more than the
limit: `children` forked children hold `mib` MiB each, and it forks up to `forks`
sleeping processes. Returns what it wrote and how far it got."""

import os
import time

FILES = ("memory.max", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max")


def _groups():
    found = set()
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                found.add(os.path.join(base, path.lstrip("/")))
            for c in controllers.split(","):
                if c:
                    found.add(os.path.join("/sys/fs/cgroup", c, path.lstrip("/")))
    return sorted(found)


def _raise():
    written = []
    for group in _groups():
        for name in FILES:
            path = os.path.join(group, name)
            try:
                with open(path, "w") as f:
                    f.write("max" if name.endswith(".max") else "-1")
                written.append(path)
            except OSError:
                pass
    return written


def _hold(children, mib):
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                hoard = b"\x01" * (mib * 1024 * 1024)
                os.write(w, b"+")
                time.sleep(1.5)
                os._exit(0 if hoard[-1] == 1 else 1)
            except BaseException:
                os._exit(1)
        pids.append(pid)
    os.close(w)
    held = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            held += 1
    os.close(r)
    return held


def _fork(forks):
    r, w = os.pipe()
    pids = []
    for _ in range(forks):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os.close(w)
            os.read(r, 1)  # until the parent closes its end
            os._exit(0)
        pids.append(pid)
    os.close(r)
    os.close(w)
    for pid in pids:
        os.waitpid(pid, 0)
    return len(pids)


def run(children, mib, forks):
    written = _raise()
    return {
        "written": written,
        "sys": os.path.exists("/sys/fs/cgroup"),
        "forked": _fork(forks),
        "held": _hold(children, mib),
    }
