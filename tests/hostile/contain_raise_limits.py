"""Raises its own memory and process limits where it can find them: its cgroup, read
from /proc/self/cgroup, under /sys/fs/cgroup (v1 and v2); then in a user, mount and
cgroup namespace of its own, where it may mount the v1 memory and pids hierarchies
(their root is its own group) and, being the same kernel uid as the files' owner, write
them. Then it takes more than the limit: `children` forked children hold `mib` MiB
each, and it forks up to `forks` sleeping processes. Returns what it wrote and how far
it got."""

import ctypes
import os
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000

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


def _raise_nested():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0:
        return []
    written = []
    for controller, name, value in (
        ("memory", "memory.limit_in_bytes", "-1"),
        ("pids", "pids.max", "max"),
    ):
        target = os.path.join(os.getcwd(), controller)
        os.makedirs(target, exist_ok=True)
        if libc.mount(b"cgroup", target.encode(), b"cgroup", 0, controller.encode()) != 0:
            continue
        try:
            with open(os.path.join(target, name), "w") as f:
                f.write(value)
            written.append(f"nested {controller}:{name}")
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
    written = _raise() + _raise_nested()
    return {
        "written": written,
        "sys": os.path.exists("/sys/fs/cgroup"),
        "forked": _fork(forks),
        "held": _hold(children, mib),
    }
