"""The seccomp filter every process of the sandbox holds: no namespace, no mount, no vsock."""

from __future__ import annotations

import ctypes
import os
from typing import Any

from .kernel import check_rc, libc

PR_SET_NO_NEW_PRIVS = 38
#: Linux system call numbers and seccomp constants, per machine (x86_64, aarch64).
SYSCALLS = {
    "x86_64": {
        "audit_arch": 0xC000003E,
        "socket": 41,
        "clone": 56,
        "chroot": 161,
        "pivot_root": 155,
        "mount": 165,
        "umount2": 166,
        "keyctl": 250,
        "unshare": 272,
        "setns": 308,
    },
    "aarch64": {
        "audit_arch": 0xC00000B7,
        "umount2": 39,
        "mount": 40,
        "pivot_root": 41,
        "chroot": 51,
        "unshare": 97,
        "socket": 198,
        "keyctl": 219,
        "clone": 220,
        "setns": 268,
    },
}
for _numbers_of in SYSCALLS.values():  # the same on every architecture (asm-generic)
    _numbers_of.update(
        io_uring_setup=425,
        open_tree=428,
        move_mount=429,
        fsopen=430,
        fsconfig=431,
        fsmount=432,
        fspick=433,
        clone3=435,
        mount_setattr=442,
        open_tree_attr=467,
    )
#: System calls the filter fails with EPERM: no namespace, no mount of any kind.
DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "open_tree_attr",
)
#: clone(2) flags that create namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
#: NEWPID, NEWNET): a clone with any of them fails.
CLONE_NAMESPACES = 0x7E020000
AF_VSOCK = 40
EPERM = 1
EAFNOSUPPORT = 97
ENOSYS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000


def syscall_numbers() -> dict[str, int]:
    """:data:`SYSCALLS` of this machine; OSError on another architecture."""
    numbers = SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(f"no system call numbers known for {os.uname().machine}")
    return numbers


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# Classic BPF: load a word of struct seccomp_data, jump on it, return a verdict.
_BPF_LD, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
# Offsets into struct seccomp_data: nr 0, arch 4, args[0] (low half) 16.
_NR, _ARCH, _ARG0 = 0, 4, 16


def seccomp_program(numbers: dict[str, int]) -> list[tuple[int, int, int, int]]:
    """The sandbox's filter, as (code, jt, jf, k) instructions.

    * a foreign ABI (32-bit compatibility calls) or x32 system call: EPERM, so that
      nothing goes around the filter;
    * ``clone3`` and ``io_uring_setup``: ENOSYS. clone3's flags are in memory, where a
      filter cannot look; the C library then falls back to ``clone``, whose flags it can
      (threads, fork, ``posix_spawn`` go on working). io_uring creates sockets and runs
      system calls without the filter seeing them;
    * :data:`DENIED` (unshare, setns, mount, umount2, pivot_root, chroot and the new
      mount API): EPERM. No nested user namespace, no mount of any filesystem (a cgroup
      hierarchy included), so the run's limits cannot be raised;
    * ``clone`` with any namespace flag (:data:`CLONE_NAMESPACES`): EPERM;
    * ``socket(AF_VSOCK, ...)``: EAFNOSUPPORT (a VM's channel to its host, which no
      namespace cuts);
    * anything else is allowed."""
    program: list[tuple[int, Any, Any, int]] = []

    def jump(code: int, k: int, true: str | int, false: str | int = 0) -> None:
        program.append((code, true, false, k))

    program.append((_BPF_LD, 0, 0, _ARCH))
    jump(_BPF_JEQ, numbers["audit_arch"], 0, "eperm")
    program.append((_BPF_LD, 0, 0, _NR))
    jump(_BPF_JGE, 0x40000000, "eperm")  # x32
    for name in ("clone3", "io_uring_setup"):
        jump(_BPF_JEQ, numbers[name], "enosys")
    for name in DENIED:
        jump(_BPF_JEQ, numbers[name], "eperm")
    jump(_BPF_JEQ, numbers["clone"], "clone")
    jump(_BPF_JEQ, numbers["socket"], "socket")
    program.append((_BPF_RET, 0, 0, SECCOMP_RET_ALLOW))
    labels = {"clone": len(program)}
    program.append((_BPF_LD, 0, 0, _ARG0))
    jump(_BPF_JSET, CLONE_NAMESPACES, "eperm")
    program.append((_BPF_RET, 0, 0, SECCOMP_RET_ALLOW))
    labels["socket"] = len(program)
    program.append((_BPF_LD, 0, 0, _ARG0))
    jump(_BPF_JEQ, AF_VSOCK, "eafnosupport")
    program.append((_BPF_RET, 0, 0, SECCOMP_RET_ALLOW))
    for label, errno in (("eperm", EPERM), ("enosys", ENOSYS), ("eafnosupport", EAFNOSUPPORT)):
        labels[label] = len(program)
        program.append((_BPF_RET, 0, 0, SECCOMP_RET_ERRNO | errno))

    def offset(i: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        delta = labels[target] - (i + 1)
        if not 0 <= delta <= 255:
            raise ValueError(f"jump to {target} out of range in the seccomp program")
        return delta

    return [(c, offset(i, t), offset(i, f), k) for i, (c, t, f, k) in enumerate(program)]


def install_filter() -> None:
    """Install :func:`seccomp_program`, with no_new_privs; it holds for this process and
    every descendant, and cannot be removed."""
    program = seccomp_program(syscall_numbers())
    filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
    prog = _SockFprog(len(program), filters)
    c = libc()
    check_rc(c.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check_rc(
        c.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
        "PR_SET_SECCOMP",
    )
