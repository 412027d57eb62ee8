"""Mounts the cgroup v1 memory and pids hierarchies, cgroup2, a tmpfs and a proc, after
trying to get a user, mount and cgroup namespace of its own (where it has every
capability): the way to raise its own memory.max / pids.max. Also tries the new mount
API (fsopen) and to make / writable again. Returns each errno (0 = it worked)."""

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000
MS_REMOUNT, MS_BIND = 32, 4096
FSOPEN = 430


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out = {}
    rc = libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP)
    out["unshare"] = 0 if rc == 0 else ctypes.get_errno()
    target = os.path.join(os.getcwd(), "mnt")
    os.makedirs(target, exist_ok=True)
    for name, fstype, data in (
        ("cgroup memory", b"cgroup", b"memory"),
        ("cgroup pids", b"cgroup", b"pids"),
        ("cgroup2", b"cgroup2", None),
        ("tmpfs", b"tmpfs", None),
        ("proc", b"proc", None),
    ):
        rc = libc.mount(fstype, target.encode(), fstype, 0, data)
        out[f"mount {name}"] = 0 if rc == 0 else ctypes.get_errno()
        if rc == 0:
            libc.umount2(target.encode(), 2)
    fd = libc.syscall(ctypes.c_long(FSOPEN), b"cgroup2", 0)
    out["fsopen cgroup2"] = 0 if fd >= 0 else ctypes.get_errno()
    rc = libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None)
    out["remount / rw"] = 0 if rc == 0 else ctypes.get_errno()
    return out
