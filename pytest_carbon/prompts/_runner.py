"""The script run inside the sandbox child: set up containment, define the code, run it.

Standard library only: it runs under ``python -I`` in a scrubbed environment, possibly as
another user, and must not import pytest_carbon. It is copied into the sandbox directory
and started as ``python -I _runner.py CTL_OUT_FD CTL_IN_FD``; the job (code, cases,
limits) is read from ``job.json`` beside it and the file is removed before any generated
code runs.

The protocol with the parent is JSON lines on the two control fds, never stdout or stderr
(generated code may print). Messages the runner sends: ``setup`` (containment applied),
``setup_error`` (containment could not be applied: the parent treats it as a sandbox
failure); in the verify mode ``defined`` / ``define_error``, then one answer per ``call``
(``value``, ``raised``, ``unplain``); in the check mode ``call`` (the check calls the
candidate) and ``check_passed`` / ``check_failed``; ``ready`` / ``prepared`` / ``done``
(workload: the runner never runs the code there; a fresh zygote interpreter forks a
worker per batch of distinct inputs, see ``bench_zygote``), ``error`` (the code failed).
The runner never trusts its own
exit: after its last message it calls ``os._exit`` so that threads left by the code do
not keep it alive.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import json
import linecache
import math
import os
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any, cast

# Mount flags from <sys/mount.h>.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_STRICTATIME = 1 << 24
MS_RELATIME = 1 << 21
_LOCKED_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Smallest pid_max the kernel accepts (RESERVED_PIDS + 1).
PID_MAX_MIN = 301
#: Calls shorter than this are timed in batches, so timing overhead stays small.
BATCH_TARGET_S = 1e-3
#: Longest repr of a value sent back to the parent.
REPR_CHARS = 2000
#: Largest returned value sent to the parent to be judged (its JSON).
GOT_BYTES = 8 * 1024**2
#: The device nodes the code gets in the namespaces mode; the rest of the host's /dev
#: (kmsg, ttys, kvm, disks) is not there.
DEV_NODES = ("null", "zero", "urandom", "random")
#: Host directories shown read-only in the code's root, besides Python's installation
#: (``sys.prefix``, ``sys.base_prefix``): programs and the libraries they load. Those
#: that are links (``/lib -> usr/lib``) are recreated as links. The parent sends its own
#: list in the job (``isolation.SYSTEM_DIRS``); this one is the default.
SYSTEM_DIRS = (
    "/usr/bin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/share/zoneinfo",
    "/bin",
    "/lib",
    "/lib64",
)
#: Files of /etc copied from the host into the code's root, and files written there.
ETC_COPIED = ("ld.so.cache", "localtime")
ETC_WRITTEN = {
    "passwd": "root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
}
#: Directories where host services put their UNIX sockets and FIFOs (docker, systemd,
#: D-Bus, X11, ssh-agent, tmux): covered by an empty tmpfs when the code has to run in
#: the host's filesystem (the fallback of :func:`whitelist_root`).
RENDEZVOUS_DIRS = ("/tmp", "/run", "/var/run")
#: Linux system call numbers and seccomp constants, per machine (x86_64, aarch64).
_SYSCALLS = {
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
for _numbers_of in _SYSCALLS.values():  # the same on every architecture (asm-generic)
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
CLONE_NEWCGROUP = 0x02000000
KEYCTL_JOIN_SESSION_KEYRING = 1
AF_VSOCK = 40
EPERM = 1
EAFNOSUPPORT = 97
ENOSYS = 38
MNT_DETACH = 2
MS_REC = 16384
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
#: Namespaces whose identity the runner reports, so the parent can check they differ.
NAMESPACES = ("user", "mnt", "pid", "net", "ipc")

_out_fd = -1
_in_fd = -1
_in_buf = b""


def send(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, default=repr) + "\n").encode()
    while data:
        n = os.write(_out_fd, data)
        data = data[n:]


def recv() -> dict[str, Any]:
    global _in_buf
    while b"\n" not in _in_buf:
        chunk = os.read(_in_fd, 65536)
        if not chunk:
            flush_and_exit(3)
        _in_buf += chunk
    line, _in_buf = _in_buf.split(b"\n", 1)
    msg: dict[str, Any] = json.loads(line)
    return msg


def flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


# -- containment (namespace mode) ------------------------------------------------------
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unescape(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit() and len(path[i + 1 : i + 4]) == 3:
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, set[str]]]:
    result = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            result.append((_unescape(fields[4]), set(fields[5].split(","))))
    return result


def contain(job: dict[str, Any]) -> dict[str, Any]:
    """In the new user, mount, pid and network namespaces (we are pid 1 and the namespace's
    root): cap the number of processes and of nested namespaces, enter a cgroup namespace,
    move into a root filesystem built for the code (:func:`whitelist_root`; where that
    fails, the host's made read-only with its rendezvous directories covered), and drop
    every capability so none of it can be undone."""
    libc = _libc()
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    notes: dict[str, Any] = {}
    # A per-namespace pid_max (Linux >= 6.14) bounds the number of processes even where
    # RLIMIT_NPROC does not apply (root). Best effort: older kernels share the host's.
    # Once the first 300 pids are used the kernel allocates from 300 up (RESERVED_PIDS,
    # in every namespace): pid_max = 301 would then leave a single pid and forbid any new
    # process for the rest of the run (a comparison forks a worker per round).
    pid_max = PID_MAX_MIN + int(job["processes"])
    try:
        with open("/proc/sys/kernel/pid_max", "w") as f:
            f.write(str(pid_max))
        notes["pid_max"] = pid_max
    except OSError as exc:
        notes["pid_max"] = f"not set: {exc}"
    # A cgroup namespace rooted at the run's group: /proc/self/cgroup shows "/", and a
    # cgroup filesystem mounted here (it cannot be: no capability, seccomp) would too.
    if libc.unshare(CLONE_NEWCGROUP) == 0:
        notes["cgroup_ns"] = True
    else:
        notes["cgroup_ns"] = f"not set: {os.strerror(ctypes.get_errno())}"
    # Belt and braces beside the seccomp filter: this user namespace may create no
    # namespace of any kind (the limits are per user namespace; we are its root).
    notes["nested_namespaces"] = _forbid_nested_namespaces()

    workdir = os.getcwd()
    private = {workdir, "/dev/shm", "/tmp"}
    if job.get("root", "whitelist") == "whitelist":
        try:
            notes["root"], notes["dev"] = whitelist_root(
                libc, workdir, int(job["tmpfs_bytes"]), job.get("system_dirs", SYSTEM_DIRS)
            )
        except OSError as exc:
            notes["root"] = f"not set: {exc}"
            with contextlib.suppress(OSError):
                os.chdir("/")
            libc.umount2(workdir.encode(), MNT_DETACH)  # whatever was built, at once
            os.chdir(workdir)
    else:
        notes["root"] = "not set: the covered host filesystem was asked for"
    if not isinstance(notes["root"], dict):
        private = _cover_host(libc, job, workdir, notes)

    writable = [
        mp
        for mp, _ in _mounts()
        if mp not in private and os.path.exists(mp) and not os.statvfs(mp).f_flag & 1
    ]
    if writable:
        raise OSError(f"could not make these mounts read-only: {', '.join(writable)}")

    # No new privileges, an empty bounding set (exec as uid 0 regains nothing) and empty
    # capability sets: the code cannot remount, raise pid_max or re-enter namespaces.
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    with open("/proc/self/status") as f:
        eff = next(line for line in f if line.startswith("CapEff:")).split()[1]
    if int(eff, 16):
        raise OSError(f"capabilities still effective: {eff}")
    notes["read_only"] = True
    notes["caps_dropped"] = True
    return notes


def _forbid_nested_namespaces() -> list[str] | str:
    """Set this user namespace's limits on namespaces created inside it to 0."""
    done = []
    try:
        for name in sorted(os.listdir("/proc/sys/user")):
            if name.startswith("max_") and name.endswith("_namespaces"):
                with open(f"/proc/sys/user/{name}", "w") as f:
                    f.write("0")
                done.append(name)
    except OSError as exc:
        return f"not set: {exc}"
    return done


def _mount(
    libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str
) -> None:
    _check(
        libc.mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {fstype or 'bind'} {source or ''} on {target}".replace("  ", " "),
    )


def _remount_read_only(libc: ctypes.CDLL, target: str, opts: set[str]) -> None:
    """Make one mount read-only, keeping the flags a user namespace may not change."""
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for name, bit in _LOCKED_FLAGS.items():
        if name in opts:
            flags |= bit
    _check(libc.mount(None, target.encode(), None, flags, None), f"remount {target} read-only")


def _system_dirs(system: list[str]) -> list[str]:
    """The host directories the code sees, read-only: Python's installation (the venv
    and the interpreter it comes from) and ``system`` (:data:`SYSTEM_DIRS` by default)."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    prefixes.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return sorted({os.path.abspath(p) for p in prefixes} | set(system))


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def whitelist_root(
    libc: ctypes.CDLL, workdir: str, tmpfs_bytes: int, system: list[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """Build the code's root filesystem and move into it (``pivot_root``), like
    bubblewrap: a new tmpfs holding only Python's installation and the system's
    programs and libraries (read-only binds), a few generated files in /etc, a minimal
    /dev, a /proc of our pid namespace, and the run's own size-limited tmpfs for /tmp,
    /dev/shm and the working directory. The host's own root is detached: no other host
    path (/home, /root, /var, /sys, /run, their sockets and FIFOs) exists any more.
    Returns (what the root holds, the device nodes); we are left in the working directory.
    A failure before the pivot raises OSError, with nothing of the host changed (the
    caller detaches what was built and falls back); after it, RuntimeError."""
    root = workdir  # our private mount namespace: the tmpfs covers it only for us
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    binds: list[str] = []
    links: dict[str, str] = {}
    for path in _system_dirs(system):
        if os.path.islink(path):
            links[path] = os.readlink(path)
            path = os.path.realpath(path)
        if os.path.isdir(path) and not any(_under(path, b) for b in binds):
            binds = [b for b in binds if not _under(b, path)] + [path]
    links = {p: t for p, t in links.items() if not any(_under(p, b) for b in binds)}
    tmpfs = {"/tmp": "1777", "/dev/shm": "1777", workdir: "0700"}
    for path in (*tmpfs, "/dev", "/proc", "/etc"):
        inside = next((b for b in binds if _under(path, b)), None)
        if inside is not None:
            raise OSError(f"{path} lies inside {inside}, shown read-only from the host")

    def mkdirs(path: str, mode: int = 0o755) -> str:
        os.makedirs(root + path, mode=mode, exist_ok=True)
        return root + path

    # Parents first, so that a path inside another one's tmpfs is made in that tmpfs.
    order = sorted([*binds, *tmpfs, "/dev", "/proc"], key=lambda p: p.split("/"))
    nodes: list[str] = []
    for path in order:
        if path in tmpfs:
            target = mkdirs(path, int(tmpfs[path], 8))
            opts = f"size={tmpfs_bytes},mode={tmpfs[path]}"
            _mount(libc, "tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts)
        elif path == "/dev":
            nodes = _minimal_dev(libc, mkdirs("/dev"))
        elif path == "/proc":
            flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
            _mount(libc, "proc", mkdirs("/proc"), "proc", flags, "")
        else:
            _mount(libc, path, mkdirs(path), None, MS_BIND | MS_REC, "")
    etc = _etc_files(mkdirs("/etc"))
    for path, to in links.items():
        mkdirs(os.path.dirname(path))
        os.symlink(to, root + path)

    # Everything read-only but the run's own tmpfs; the root itself last.
    keep = {root + p for p in tmpfs}
    shown = [(mp, options) for mp, options in _mounts() if _under(mp, root) and mp not in keep]
    for mp, options in sorted(shown, key=lambda m: -len(m[0])):
        if "ro" not in options:
            _remount_read_only(libc, mp, options)

    os.chdir(root)
    numbers = _numbers()
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    # pivot_root(".", "."): the host's root ends on top of ours, and is detached at once.
    if syscall(ctypes.c_long(numbers["pivot_root"]), b".", b".") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")
    # Past the pivot there is no going back to the host's filesystem: a failure here
    # is a setup error (RuntimeError), never the fallback.
    try:
        _check(libc.umount2(b".", MNT_DETACH), "detach the host's root")
        os.chdir("/")
        os.chdir(workdir)
    except OSError as exc:
        raise RuntimeError(f"after pivot_root: {exc}") from None
    held = {
        "read-only": binds,
        "links": sorted(links),
        "tmpfs": sorted(tmpfs),
        "etc": etc,
        "other": ["/dev", "/proc"],
    }
    return held, nodes


def _etc_files(etc: str) -> list[str]:
    """The few files of /etc the interpreter and the C library look at: the loader's
    cache and the time zone copied from the host, and minimal account files."""
    written = []
    for name in ETC_COPIED:
        try:
            with open(f"/etc/{name}", "rb") as src:
                data = src.read()
        except OSError:
            continue
        with open(os.path.join(etc, name), "wb") as dst:
            dst.write(data)
        written.append(name)
    for name, text in ETC_WRITTEN.items():
        with open(os.path.join(etc, name), "w") as f:
            f.write(text)
        written.append(name)
    return sorted(written)


def _cover_host(
    libc: ctypes.CDLL, job: dict[str, Any], workdir: str, notes: dict[str, Any]
) -> set[str]:
    """The fallback when no root of its own can be built: the host's filesystem, made
    read-only, with an empty tmpfs over /tmp, /run and /var/run and a minimal /dev.
    Returns the mounts left writable (the run's own tmpfs)."""
    # Best effort, each undone if it fails: a machine that refuses them keeps the other
    # protections of this mode, and the doctor reports these two as missing.
    try:
        notes["dev"] = _minimal_dev(libc, "/dev")
    except OSError as exc:
        notes["dev"] = f"not set: {exc}"
    try:
        notes["covered"] = _cover_rendezvous(libc, int(job["tmpfs_bytes"]))
    except OSError as exc:
        notes["covered"] = f"not set: {exc}"
    # Our working directory may lie under a directory just covered: recreate its path.
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    size = f"size={int(job['tmpfs_bytes'])},mode=0700".encode()
    for target in (workdir, "/dev/shm"):
        if not os.path.isdir(target):
            continue
        _check(
            libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, size),
            f"mount tmpfs on {target}",
        )
    os.chdir(workdir)  # enter the tmpfs just mounted over our old working directory

    private = {workdir, "/dev/shm"}
    if isinstance(notes["covered"], list) and "/tmp" in notes["covered"]:
        private.add("/tmp")  # our own empty tmpfs, size-limited
    for mountpoint, opts in _mounts():
        if mountpoint in private or "ro" in opts:
            continue
        # A shadowed or vanished mount point cannot be reached by the code either.
        with contextlib.suppress(OSError):
            _remount_read_only(libc, mountpoint, opts)
    return private


def _minimal_dev(libc: ctypes.CDLL, dev: str) -> list[str]:
    """Make ``dev`` a tmpfs holding only :data:`DEV_NODES`, bind-mounted from the host's
    /dev (a tmpfs mounted in a user namespace cannot hold device nodes of its own)."""
    fds = {}
    for name in DEV_NODES:
        with contextlib.suppress(OSError):
            fds[name] = os.open(f"/dev/{name}", os.O_PATH)
    mounted: list[str] = []
    try:
        _check(
            libc.mount(
                b"tmpfs", dev.encode(), b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=1m,mode=0755"
            ),
            f"mount tmpfs on {dev}",
        )
        mounted.append(dev)
        for name, fd in fds.items():
            target = f"{dev}/{name}"
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
            _check(
                libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, MS_BIND, None),
                f"bind-mount {target}",
            )
            mounted.append(target)
        os.mkdir(f"{dev}/shm", 0o1777)
        for link, to in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ):
            os.symlink(to, f"{dev}/{link}")
    except OSError:
        for target in reversed(mounted):  # back to what was there, read-only later
            libc.umount2(target.encode(), MNT_DETACH)
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    return sorted(fds)


def _cover_rendezvous(libc: ctypes.CDLL, tmpfs_bytes: int) -> list[str]:
    """An empty tmpfs over each of :data:`RENDEZVOUS_DIRS` (once per real directory:
    /var/run is usually a link to /run). /tmp stays writable (size-limited), the others
    become read-only with the rest of the filesystem."""
    done: list[str] = []
    try:
        for target in RENDEZVOUS_DIRS:
            real = os.path.realpath(target)
            if real in done or not os.path.isdir(real):
                continue
            opts = f"size={tmpfs_bytes},mode=1777" if real == "/tmp" else "size=1m,mode=0755"
            flags = MS_NOSUID | MS_NODEV
            _check(
                libc.mount(b"tmpfs", real.encode(), b"tmpfs", flags, opts.encode()),
                f"mount tmpfs on {real}",
            )
            done.append(real)
    except OSError:
        for real in reversed(done):
            libc.umount2(real.encode(), MNT_DETACH)
        raise
    return done


def _numbers() -> dict[str, int]:
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        raise OSError(f"no system call numbers known for {os.uname().machine}")
    return numbers


def fresh_keyring() -> int:
    """Join a new anonymous session keyring, so no key of pytest's session is possessed
    by the code (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)); its serial, > 0."""
    numbers = _numbers()
    syscall = _libc().syscall
    syscall.restype = ctypes.c_long
    serial = int(syscall(ctypes.c_long(numbers["keyctl"]), KEYCTL_JOIN_SESSION_KEYRING, None))
    if serial < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    return serial


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
    program = seccomp_program(_numbers())
    filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
    prog = _SockFprog(len(program), filters)
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _check(
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
        "PR_SET_SECCOMP",
    )


def harden() -> dict[str, Any]:
    """What every mode gets, whatever the machine: a fresh session keyring and the
    seccomp filter (last: nothing after it needs what it denies); plus the namespaces we
    run in, for the parent to compare with its own."""
    notes: dict[str, Any] = {}
    try:
        notes["keyring"] = fresh_keyring()
    except OSError as exc:
        notes["keyring"] = f"not set: {exc}"
    ns = {}
    for name in NAMESPACES:
        with contextlib.suppress(OSError):
            ns[name] = os.stat(f"/proc/self/ns/{name}").st_ino
    notes["namespaces"] = ns
    try:
        install_filter()
        notes["seccomp"] = True
    except (OSError, ValueError) as exc:
        notes["seccomp"] = f"not set: {exc}"
    notes["vsock_blocked"] = notes["seccomp"]
    return notes


# -- plain data --------------------------------------------------------------------------
# Arguments and results cross between processes as plain data in a tagged JSON form that
# preserves tuples, sets, bytes, non-string dict keys and non-finite floats:
#   None, bool, int (up to PLAIN_INT_BITS), finite float, str  ->  themselves
#   list                                                       ->  [items]
#   {"$": "tuple" | "set" | "frozenset", "v": [items]}
#   {"$": "dict", "v": [[key, value], ...]}
#   {"$": "float", "v": "nan" | "inf" | "-inf"}, {"$": "int", "v": hex}, {"$": "bytes", "v": hex}
# Only exact built-in types are encoded: a subclass (an int whose ``__eq__`` is always
# true) raises NotPlain, and no method of the candidate's runs during the encoding.
# pytest's process decodes with the same functions (this module is importable there).
class NotPlain(TypeError):
    """A value is not plain data; the message names it as a noun phrase ("a subclass of
    int (m.Fake)"), to follow "returned"."""


#: Deepest nesting encoded or decoded.
PLAIN_DEPTH = 100
#: Larger ints are tagged as hex (JSON's decimal form is limited in digits).
PLAIN_INT_BITS = 1024
_SCALARS = (type(None), bool, int, float, str)
_BASES = (bool, int, float, str, bytes, list, tuple, dict, set, frozenset)
PLAIN_TYPES = "exactly None, bool, int, float, str, bytes, list, tuple, dict, set or frozenset"
_TAGGED_SEQUENCES = {"tuple": tuple, "set": set, "frozenset": frozenset}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def encode_plain(value: object, _depth: int = 0) -> object:
    """``value`` in the tagged JSON form above; NotPlain for anything else. Only
    ``type(x) is ...`` tests and the built-in types' own methods run here."""
    if _depth > PLAIN_DEPTH:
        raise NotPlain(f"a value nested more than {PLAIN_DEPTH} levels deep")
    cls = type(value)
    if value is None or cls is bool or cls is str:
        return value
    if cls is int:
        if cast(int, value).bit_length() <= PLAIN_INT_BITS:
            return value
        return {"$": "int", "v": format(cast(int, value), "x")}
    if cls is float:
        v = cast(float, value)
        return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
    if cls is list:
        return [encode_plain(v, _depth + 1) for v in cast("list[Any]", value)]
    if cls is tuple or cls is set or cls is frozenset:
        items = [encode_plain(v, _depth + 1) for v in cast("list[Any]", value)]
        return {"$": cls.__name__, "v": items}
    if cls is dict:
        pairs = []
        for k, v in cast("dict[Any, Any]", value).items():
            if type(k) not in (*_SCALARS, bytes, tuple, frozenset):
                raise NotPlain(f"a dict with a key of type {_type_name(k)}")
            pairs.append([encode_plain(k, _depth + 1), encode_plain(v, _depth + 1)])
        return {"$": "dict", "v": pairs}
    if cls is bytes:
        return {"$": "bytes", "v": cast(bytes, value).hex()}
    for base in _BASES:
        if isinstance(value, base):
            raise NotPlain(f"a subclass of {base.__name__} ({_type_name(value)})")
    raise NotPlain(f"a {_type_name(value)}")


def decode_plain(data: object, _depth: int = 0) -> Any:
    """The value that :func:`encode_plain` encoded; ValueError for anything that is not
    that form (an unknown tag, a stray object, an unhashable key, nesting deeper than
    :data:`PLAIN_DEPTH`)."""
    if _depth > PLAIN_DEPTH:
        raise ValueError(f"plain data nested more than {PLAIN_DEPTH} levels deep")
    cls = type(data)
    if data is None or cls is bool or cls is str or cls is int or cls is float:
        return data
    if cls is list:
        return [decode_plain(v, _depth + 1) for v in cast("list[Any]", data)]
    if cls is not dict or set(cast("dict[str, Any]", data)) != {"$", "v"}:
        raise ValueError(f"not plain data: a JSON {cls.__name__} outside the tagged form")
    tag, v = cast("dict[str, Any]", data)["$"], cast("dict[str, Any]", data)["v"]
    try:
        if tag in _TAGGED_SEQUENCES and type(v) is list:
            items = [decode_plain(x, _depth + 1) for x in v]
            return _TAGGED_SEQUENCES[tag](items)
        if tag == "dict" and type(v) is list:
            out = {}
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("not plain data: a dict entry is not a [key, value] pair")
                out[decode_plain(pair[0], _depth + 1)] = decode_plain(pair[1], _depth + 1)
            return out
        if tag == "float" and v in _NON_FINITE:
            return _NON_FINITE[v]
        if tag == "int" and type(v) is str:
            return int(v, 16)
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
    except TypeError as exc:  # an unhashable key or set element
        raise ValueError(f"not plain data: {exc}") from None
    raise ValueError(f"not plain data: unknown tag {tag!r}")


def short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the verdict
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    if len(text) > REPR_CHARS:
        text = text[:REPR_CHARS] + f"... [{len(text) - REPR_CHARS} more characters]"
    return text


def tb_tail(exc: BaseException, lines: int = 12) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the code called sys.exit({exc.code!r})"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- verify: the candidate's side -------------------------------------------------------
def define(job: dict[str, Any]) -> tuple[dict[str, Any], Callable[..., Any]]:
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": __builtins__}
    code = compile(job["code"], "<candidate>", "exec")
    # Tracebacks show the candidate's lines.
    linecache.cache["<candidate>"] = (
        len(job["code"]),
        None,
        job["code"].splitlines(True),
        "<candidate>",
    )
    exec(code, namespace)
    fn = namespace.get(job["entry_point"])
    if not callable(fn):
        raise LookupError(f"the code defines no function {job['entry_point']!r}")
    return namespace, fn


def _exception_fields(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    return {
        "error": tb_tail(exc),
        "exit": isinstance(exc, SystemExit),
        # A built-in exception's name lets a check expecting it (``except ValueError``)
        # see one; anything else reaches the check as a generic error.
        "exc_type": cls.__name__ if cls.__module__ == "builtins" else None,
    }


def run_verify(job: dict[str, Any]) -> None:
    """The candidate's process: define the code, then answer ``call`` requests one at a
    time with the returned value as plain data (``value``), the exception (``raised``) or
    why the value is not plain (``unplain``). It knows nothing else: no expected value, no
    check, no verdict; pytest's process judges every value (``prompts/judge.py``)."""
    try:
        _, fn = define(job)
    except BaseException as exc:
        send({"type": "define_error", **_exception_fields(exc)})
        return
    send({"type": "defined"})
    while True:
        msg = recv()
        if msg.get("type") != "call":
            return
        ident = msg.get("id")
        args, kwargs = decode_plain(msg["args"]), decode_plain(msg["kwargs"])
        try:
            got = fn(*args, **kwargs)
        except BaseException as exc:
            send({"type": "raised", "id": ident, **_exception_fields(exc)})
            continue
        try:
            value = encode_plain(got)
        except NotPlain as exc:
            # No repr of the value: that too would be the candidate's code.
            send(
                {"type": "unplain", "id": ident, "error": f"{exc}, not plain data ({PLAIN_TYPES})"}
            )
            continue
        text = json.dumps({"type": "value", "id": ident, "value": value})
        if len(text) > GOT_BYTES:
            what = f"a value of {len(text)} bytes of JSON, more than the sandbox passes back"
            send({"type": "unplain", "id": ident, "error": what})
            continue
        data = (text + "\n").encode()
        while data:
            data = data[os.write(_out_fd, data) :]


# -- verify: the check's side ------------------------------------------------------------
# The task's ``check`` (trusted suite code) runs in a process of its own, never the
# candidate's: its ``candidate`` is a proxy that sends each call's arguments to pytest's
# process, which has the candidate's process run it and relays the plain result back.
class CandidateExit(BaseException):
    """The candidate called sys.exit during a call the check made."""


class CandidateNotPlain(BaseException):
    """The candidate returned something that is not plain data to the check."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a built-in one."""


_EXPLAIN = "_carbon_explain_"
_LEFT = "_carbon_left_"
_RIGHT = "_carbon_right_"
_NO_RIGHT = object()


class _AssertExplainer(ast.NodeTransformer):
    """``assert L op R, msg`` -> ``assert (_l := L) op (_r := R), explain(n, _l, _r, msg)``:
    the values an assertion compared, evaluated once, are named in its failure."""

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test

        def named(name: str, value: ast.expr) -> ast.NamedExpr:
            return ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=value)

        right: ast.expr = ast.Name(id="_carbon_no_right_", ctx=ast.Load())
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            new: ast.expr = ast.Compare(
                left=named(_LEFT, test.left),
                ops=test.ops,
                comparators=[named(_RIGHT, test.comparators[0])],
            )
            right = ast.Name(id=_RIGHT, ctx=ast.Load())
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            new = ast.UnaryOp(op=ast.Not(), operand=named(_LEFT, test.operand))
        else:
            new = named(_LEFT, test)
        msg = ast.Call(
            func=ast.Name(id=_EXPLAIN, ctx=ast.Load()),
            args=[
                ast.Constant(node.lineno),
                ast.Name(id=_LEFT, ctx=ast.Load()),
                right,
                node.msg if node.msg is not None else ast.Constant(None),
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Assert(test=new, msg=msg), node)


def _explainer(source: str, tree: ast.Module) -> tuple[Callable[..., str], dict[str, Any]]:
    """The function named in rewritten assertions, and the record of the last failure."""
    asserts = {n.lineno: n for n in ast.walk(tree) if isinstance(n, ast.Assert)}
    failed: dict[str, Any] = {}

    def explain(lineno: int, left: object, right: object, message: object) -> str:
        node = asserts.get(lineno)
        text = (ast.get_source_segment(source, node) if node is not None else None) or ""
        parts = {"line": lineno, "source": text[:REPR_CHARS]}
        test = node.test if node is not None else None
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            sides = [(test.left, left), (test.comparators[0], right)]
        elif isinstance(test, ast.UnaryOp):
            sides = [(test.operand, left)]
        else:
            sides = [(test, left)] if test is not None else []
        shown = []
        for expr, value in sides:
            src = (ast.get_source_segment(source, expr) or "?")[:200]
            shown.append(f"{src} is {short_repr(value)} ({type(value).__name__})")
        parts["values"] = shown
        if message is not None:
            parts["message"] = short_repr(message) if not isinstance(message, str) else message
        failed.clear()
        failed.update(parts)
        detail = "; ".join(shown)
        return f"line {lineno}: {text}: {detail}" + (f" ({message})" if message is not None else "")

    return explain, failed


def _raise_from(reply: dict[str, Any]) -> BaseException:
    if reply.get("exit"):
        return CandidateExit(reply.get("error"))
    if reply.get("type") == "unplain":
        return CandidateNotPlain(reply.get("error"))
    cls = getattr(__import__("builtins"), str(reply.get("exc_type") or ""), None)
    text = str(reply.get("error") or "")
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not CandidateError:
        try:
            return cast(BaseException, cls(text))
        except Exception:
            pass
    return CandidateError(text)


def run_check(job: dict[str, Any]) -> None:
    """The check's process: run the task's ``check`` against a proxy ``candidate``.

    The check's globals are those of the task's reference (``context``: helper functions
    such as HumanEval's ``poly``), never the candidate's; ``candidate`` and the entry
    point's name are the proxy. Reports ``check_passed`` or ``check_failed`` (with the
    failing assertion's line, text and compared values)."""
    # Where the sandbox has no namespaces, the candidate's process runs as the same user:
    # undumpable, this one's pipes cannot be opened through /proc nor itself traced.
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    source = job["check"]
    namespace: dict[str, Any] = {"__name__": "__check__", "__builtins__": __builtins__}
    raised: list[BaseException] = []
    calls: dict[str, Any] = {"n": 0, "last": ""}  # how many calls, the last one as text

    def candidate(*args: Any, **kwargs: Any) -> Any:
        try:
            msg = {"type": "call", "args": encode_plain(list(args)), "kwargs": encode_plain(kwargs)}
        except NotPlain as exc:
            raise TypeError(
                f"the check passed {exc} to the candidate: only plain data crosses to its sandbox"
            ) from None
        shown = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
        calls["n"] += 1
        calls["last"] = f"candidate({', '.join(shown)})"[:300]
        send(msg)
        reply = recv()
        if reply.get("type") == "quit":  # the verdict is already given
            flush_and_exit(0)
        if reply.get("type") == "value":
            return decode_plain(reply.get("value"))
        error = _raise_from(reply)
        raised.append(error)
        raise error

    def failed(stage: str, exc: BaseException, **extra: Any) -> None:
        send({"type": "check_failed", "stage": stage, "error": tb_tail(exc), **extra})

    try:
        tree = ast.parse(source, "<check>")
        explain, assertion = _explainer(source, tree)
        tree = ast.fix_missing_locations(_AssertExplainer().visit(tree))
        code = compile(tree, "<check>", "exec")
        linecache.cache["<check>"] = (len(source), None, source.splitlines(True), "<check>")
        if job.get("context"):
            exec(compile(job["context"], "<reference>", "exec"), namespace)
    except BaseException as exc:
        failed("setup", exc)
        return
    scope = dict(namespace)
    scope.update({"candidate": candidate, _EXPLAIN: explain, "_carbon_no_right_": _NO_RIGHT})
    scope[job["entry_point"]] = candidate
    try:
        exec(code, scope)
        checker = scope.get("check")
        if callable(checker) and checker is not namespace.get("check"):
            checker(candidate)
    except BaseException as exc:
        if raised and exc is raised[-1]:
            failed("candidate", exc, call=calls["last"], exit=isinstance(exc, CandidateExit))
        elif isinstance(exc, AssertionError) and assertion:
            failed("assertion", exc, assertion=dict(assertion))
        else:
            failed("check", exc, call=calls["last"] or None)
        return
    send({"type": "check_passed", "calls": calls["n"]})


# -- measured workload (bench mode) -----------------------------------------------------
# The runner never runs candidate code itself, and no process that does inherits anything
# from it: each round is a new interpreter (``python -c`` with the worker below, started
# by posix_spawn, so none of the runner's memory is copied), given only its own inputs on
# fd 0 and its own report pipe as fd 3. Before each round the runner kills whatever is
# left, wipes the writable tmpfs mounts (working directory, /tmp, /dev/shm) and removes
# SysV IPC objects, so no round can leave anything for the next one. The runner relays
# every result to the parent, which counts them and compares them all.
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
#: Markers around the worker's source, which the runner hands to ``python -c``.
WORKER_BEGIN = "# == bench worker: begin =="
WORKER_END = "# == bench worker: end =="

# == bench worker: begin ==
WORKER_REPORT_FD = 3


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
            fn = namespace.get(entry_point)
            if not callable(fn):
                raise LookupError(f"the code defines no function {entry_point!r}")
            got = fn(*case["args"], **case["kwargs"])
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


# == bench worker: end ==


def worker_source(runner_source: str) -> str:
    """The ``python -c`` program of a round's worker: the section between the markers."""
    begin = runner_source.index(f"\n{WORKER_BEGIN}\n")
    end = runner_source.index(f"\n{WORKER_END}\n")
    return (
        "from __future__ import annotations\nimport contextlib, ctypes, json, math, traceback\n"
        f"PR_SET_DUMPABLE = {PR_SET_DUMPABLE}\n" + runner_source[begin:end] + "\nbench_zygote()\n"
    )


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
            mp = _unescape(fields[4])
            writable = fstype == ["tmpfs"] and "ro" not in fields[5].split(",")
            if writable and mp != "/dev" and mp not in out:
                out.append(mp)
    return out or [cwd]


def _wipe(dirs: list[str]) -> None:
    """Remove everything in ``dirs`` (never crossing into another mount), so that the next
    round finds them as empty as the first did."""
    import shutil
    import stat

    def retry(func: Any, path: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):  # the code may have removed its permissions
            os.chmod(os.path.dirname(path), 0o700)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)

    for top in dirs:
        try:
            dev = os.lstat(top).st_dev
            with contextlib.suppress(OSError):
                os.chmod(top, stat.S_IMODE(os.lstat(top).st_mode) | 0o700)
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_dev != dev:
                continue  # a mount point: not ours
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path, onerror=retry)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


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


def run_bench(job: dict[str, Any], runner_source: str) -> None:
    """Serve rounds: ``prepare`` (wipe what the last round left, fork a fresh worker with
    the round's inputs), ``go`` (run the round; reply ``done`` with every result once the
    worker and all it started are reaped), ``quit``. One reply per request."""
    libc = _libc()
    contained = bool(job.get("contain"))
    argv = [sys.executable, "-s", "-B"]
    if sys.version_info >= (3, 11):
        argv.append("-P")
    argv += ["-c", worker_source(runner_source)]
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


def main() -> None:
    global _out_fd, _in_fd
    _out_fd, _in_fd = int(sys.argv[1]), int(sys.argv[2])
    with open("job.json") as f:
        job = json.load(f)
    os.remove("job.json")
    # Our source, for tracebacks and the bench workers, before the tmpfs hides it.
    with open(__file__) as f:
        source = f.read()
    linecache.getlines(__file__)
    for fd in (_out_fd, _in_fd):  # never inherited by a process we start
        os.set_inheritable(fd, False)
    notes: dict[str, Any] = {}
    if job.get("contain"):
        try:
            notes = contain(job)
        except BaseException as exc:
            send({"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
            flush_and_exit(2)
    notes.update(harden())
    send({"type": "setup", **notes})
    if job["mode"] == "probe":
        send({"type": "result", "version": sys.version, "uid": os.getuid()})
    elif job["mode"] == "verify":
        run_verify(job)
    elif job["mode"] == "check":
        run_check(job)
    else:
        run_bench(job, source)
    flush_and_exit(0)


if __name__ == "__main__":
    main()
