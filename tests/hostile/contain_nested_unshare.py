"""The first step of raising its own limits: leave the sandbox's namespaces. Unshares a
user, mount and cgroup namespace (together, then one by one), clones a child into a new
user namespace (clone and clone3), joins a namespace with setns, and runs unshare(1).
Returns, for each, 0 if it worked or the errno (unshare(1): its exit status)."""

import ctypes
import os
import subprocess

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
CLONE, CLONE3, SETNS = {"x86_64": (56, 435, 308), "aarch64": (220, 435, 268)}[os.uname().machine]


def _result(libc, rc):
    if rc == 0:
        return 0
    return ctypes.get_errno() if rc < 0 else 0


def _clone_result(pid):
    if pid == 0:  # a child in new namespaces: it must not run on
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
        return 0
    return ctypes.get_errno()


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out = {}
    for name, flags in (
        ("user+mount+cgroup", CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP),
        ("user", CLONE_NEWUSER),
        ("mount", CLONE_NEWNS),
        ("cgroup", CLONE_NEWCGROUP),
    ):
        out[f"unshare {name}"] = _result(libc, libc.unshare(flags))
    out["clone user"] = _clone_result(
        libc.syscall(ctypes.c_long(CLONE), ctypes.c_ulong(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0)
    )
    args = (ctypes.c_uint64 * 11)()
    args[0], args[4] = CLONE_NEWUSER | CLONE_NEWNS, SIGCHLD  # flags, exit_signal
    out["clone3 user"] = _clone_result(
        libc.syscall(ctypes.c_long(CLONE3), ctypes.byref(args), ctypes.c_size_t(88))
    )
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    out["setns mnt"] = _result(libc, libc.syscall(ctypes.c_long(SETNS), fd, 0))
    os.close(fd)
    try:
        done = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
        out["unshare(1)"] = done.returncode
    except OSError as exc:
        out["unshare(1)"] = type(exc).__name__
    return out
