"""Containment in the namespaces mode (:func:`contain`) and what every mode gets
(:func:`harden`): the code's root filesystem, a minimal /dev, no capabilities, a fresh
session keyring and the seccomp filter."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Any

from . import kernel
from .kernel import check_rc, mounts
from .seccomp import PR_SET_NO_NEW_PRIVS, install_filter, syscall_numbers

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
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Smallest pid_max the kernel accepts (RESERVED_PIDS + 1).
PID_MAX_MIN = 301
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
#: clone(2) flag of a new cgroup namespace.
CLONE_NEWCGROUP = 0x02000000
KEYCTL_JOIN_SESSION_KEYRING = 1
MNT_DETACH = 2
MS_REC = 16384
#: Namespaces whose identity the runner reports, so the parent can check they differ.
NAMESPACES = ("user", "mnt", "pid", "net", "ipc")


def contain(job: dict[str, Any]) -> dict[str, Any]:
    """In the new user, mount, pid and network namespaces (we are pid 1 and the namespace's
    root): cap the number of processes and of nested namespaces, enter a cgroup namespace,
    move into a root filesystem built for the code (:func:`whitelist_root`; where that
    fails, the host's made read-only with its rendezvous directories covered), and drop
    every capability so none of it can be undone."""
    libc = kernel.libc()
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
        for mp, _ in mounts()
        if mp not in private and os.path.exists(mp) and not os.statvfs(mp).f_flag & 1
    ]
    if writable:
        raise OSError(f"could not make these mounts read-only: {', '.join(writable)}")

    # No new privileges, an empty bounding set (exec as uid 0 regains nothing) and empty
    # capability sets: the code cannot remount, raise pid_max or re-enter namespaces.
    check_rc(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    check_rc(libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
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
    check_rc(
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
    check_rc(libc.mount(None, target.encode(), None, flags, None), f"remount {target} read-only")


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
    shown = [(mp, options) for mp, options in mounts() if _under(mp, root) and mp not in keep]
    for mp, options in sorted(shown, key=lambda m: -len(m[0])):
        if "ro" not in options:
            _remount_read_only(libc, mp, options)

    os.chdir(root)
    numbers = syscall_numbers()
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    # pivot_root(".", "."): the host's root ends on top of ours, and is detached at once.
    if syscall(ctypes.c_long(numbers["pivot_root"]), b".", b".") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")
    # Past the pivot there is no going back to the host's filesystem: a failure here
    # is a setup error (RuntimeError), never the fallback.
    try:
        check_rc(libc.umount2(b".", MNT_DETACH), "detach the host's root")
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
        check_rc(
            libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, size),
            f"mount tmpfs on {target}",
        )
    os.chdir(workdir)  # enter the tmpfs just mounted over our old working directory

    private = {workdir, "/dev/shm"}
    if isinstance(notes["covered"], list) and "/tmp" in notes["covered"]:
        private.add("/tmp")  # our own empty tmpfs, size-limited
    for mountpoint, opts in mounts():
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
        check_rc(
            libc.mount(
                b"tmpfs", dev.encode(), b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=1m,mode=0755"
            ),
            f"mount tmpfs on {dev}",
        )
        mounted.append(dev)
        for name, fd in fds.items():
            target = f"{dev}/{name}"
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
            check_rc(
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
            check_rc(
                libc.mount(b"tmpfs", real.encode(), b"tmpfs", flags, opts.encode()),
                f"mount tmpfs on {real}",
            )
            done.append(real)
    except OSError:
        for real in reversed(done):
            libc.umount2(real.encode(), MNT_DETACH)
        raise
    return done


def fresh_keyring() -> int:
    """Join a new anonymous session keyring, so no key of pytest's session is possessed
    by the code (keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)); its serial, > 0."""
    numbers = syscall_numbers()
    syscall = kernel.libc().syscall
    syscall.restype = ctypes.c_long
    serial = int(syscall(ctypes.c_long(numbers["keyctl"]), KEYCTL_JOIN_SESSION_KEYRING, None))
    if serial < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    return serial


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
