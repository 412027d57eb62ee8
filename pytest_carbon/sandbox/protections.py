"""The sandbox's protections, one by one: which are in force here, and why not the others.

Decided from what the probe run of the sandbox reported (the runner reports its
namespaces, its keyring and its seccomp filter; we compare the namespaces with our own)
and from the cgroup probe. ``pytest-carbon sandbox`` prints them; results carry the
names of the active ones.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_carbon.sandbox import cgroup as cgroups
    from pytest_carbon.sandbox.isolation import Isolation


@dataclass(frozen=True)
class Protection:
    """One protection of the sandbox: active here or not, and what it does or why not."""

    name: str
    active: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "active": self.active, "detail": self.detail}


def _own_namespaces() -> dict[str, int]:
    out = {}
    for name in ("user", "mnt", "pid", "net", "ipc"):
        with contextlib.suppress(OSError):
            out[name] = os.stat(f"/proc/self/ns/{name}").st_ino
    return out


def protections(
    iso: Isolation, plan: cgroups.CgroupPlan, join_error: str | None = None
) -> tuple[Protection, ...]:
    """Every protection, active or not, from what the probe run reported (the runner
    reports its namespaces, keyring and filter; we compare with our own)."""
    notes = iso.notes
    no_ns = (
        "needs the namespaces mode, unavailable here: " + "; ".join(notes.get("reasons", []))
        if iso.mode != "namespaces"
        else ""
    )
    theirs = notes.get("namespaces") or {}
    ours = _own_namespaces()
    out: list[Protection] = [
        Protection(
            "rlimits",
            True,
            "per-process limits: address space, CPU seconds, file size, processes, open "
            "files, no core files; killed with pytest",
        ),
    ]

    def ns(name: str, what: str) -> None:
        if name in theirs and name in ours and theirs[name] != ours[name]:
            out.append(Protection(f"{name}-namespace", True, what))
        else:
            out.append(Protection(f"{name}-namespace", False, no_ns or "not created"))

    ns("user", "user namespace: no capability on the host; keyrings of its own")
    ns("pid", "pid namespace: host processes invisible; the run dies with its pid 1")
    ns("net", "network namespace: no network at all, loopback down")
    ns("ipc", "IPC namespace: SysV IPC and POSIX queues private, destroyed with the run")
    ns("mnt", "mount namespace: the code's mounts are its own")
    root = notes.get("root")
    whitelist = isinstance(root, dict)
    if isinstance(root, dict):
        shown = ", ".join([*root.get("read-only", []), *root.get("links", [])])
        etc = ", ".join(root.get("etc", []))
        root_text = (
            f"the code's / is a tmpfs built for it (pivot_root), holding only {shown} "
            f"(read-only), /etc ({etc}), /dev, /proc of its own pid namespace and its "
            "own tmpfs: no other host path (/home, /root, /var, /run, /sys) exists there"
        )
    else:
        root_text = no_ns or str(root or "not reported by the runner")
    out.append(Protection("whitelist-root", whitelist, root_text))
    ro = notes.get("read_only") is True and notes.get("caps_dropped") is True
    out.append(
        Protection(
            "read-only-fs",
            ro,
            "every mount read-only but the run's own size-limited tmpfs (working "
            "directory, /tmp, /dev/shm); no capability left to undo it"
            if ro
            else no_ns or "not applied",
        )
    )
    dev = notes.get("dev")
    out.append(
        Protection(
            "minimal-dev",
            isinstance(dev, list) and bool(dev),
            f"/dev holds only {', '.join(dev)} (no kmsg, tty, kvm or disks)"
            if isinstance(dev, list) and dev
            else no_ns or str(dev or "not applied"),
        )
    )
    covered = notes.get("covered")
    if whitelist:
        tmp = (
            True,
            "/tmp, /dev/shm and the working directory are the run's own tmpfs, and no "
            "host directory where services put UNIX sockets and FIFOs is in the root",
        )
    elif isinstance(covered, list) and covered:
        tmp = (
            True,
            f"empty tmpfs over {', '.join(covered)}: host UNIX sockets and FIFOs there "
            "(docker, systemd, D-Bus, X11, ssh-agent) cannot be reached; elsewhere "
            "(/var/tmp, /var/lib, /home, /root) they can",
        )
    else:
        tmp = (False, no_ns or str(covered or "not applied"))
    out.append(Protection("private-tmp", *tmp))
    seccomp = notes.get("seccomp")
    nested = notes.get("nested_namespaces")
    limit = (
        "; and this user namespace's limits on nested namespaces are 0"
        if isinstance(nested, list) and nested
        else ""
    )
    out.append(
        Protection(
            "seccomp-namespaces",
            seccomp is True,
            "seccomp: unshare, setns, clone with a namespace flag, mount, umount2, "
            "pivot_root, chroot and the new mount API fail (EPERM; clone3 ENOSYS, so the "
            "C library uses clone): no nested user namespace, no cgroup hierarchy "
            f"mounted, the run's limits out of reach{limit}"
            if seccomp is True
            else str(seccomp or "not reported by the runner"),
        )
    )
    keyring = notes.get("keyring")
    fresh = isinstance(keyring, int) and keyring > 0
    out.append(
        Protection(
            "session-keyring",
            fresh,
            "a new anonymous session keyring: no key of pytest's session is possessed"
            if fresh
            else str(keyring or "not reported by the runner"),
        )
    )
    own_user = iso.mode == "uid" or (
        "user" in theirs and "user" in ours and theirs["user"] != ours["user"]
    )
    out.append(
        Protection(
            "user-keyring",
            own_user,
            "the code's user keyring is not pytest's (other user, or own user namespace)"
            if own_user
            else "the code runs as pytest's user in pytest's user namespace: that user's "
            "keyring (@u) is reachable",
        )
    )
    vsock = notes.get("vsock_blocked")
    out.append(
        Protection(
            "vsock-blocked",
            vsock is True,
            "seccomp: socket(AF_VSOCK) and io_uring fail, so the hypervisor's vsock "
            "cannot be reached"
            if vsock is True
            else str(vsock or "not reported by the runner"),
        )
    )
    tree = plan.v2 is not None and join_error is None
    out.append(
        Protection(
            "cgroup",
            tree,
            f"a cgroup v2 group per run under {plan.v2}: CPU time of the whole process "
            "tree (cpu.stat), killed as one (cgroup.kill), removed at the end"
            if tree
            else join_error or plan.missing.get("cgroup", "unavailable"),
        )
    )
    removable = tree or plan.v1_memory is not None or plan.v1_pids is not None
    out.append(
        Protection(
            "cgroup-removable",
            removable and join_error is None,
            "the run's groups are removed with any child group the code made in them "
            "(killed, then removed bottom-up; checked here by the probe)"
            if removable and join_error is None
            else join_error or plan.missing.get("cgroup", "unavailable"),
        )
    )
    hidden = whitelist and notes.get("cgroup_ns") is True
    out.append(
        Protection(
            "cgroup-hidden",
            hidden,
            "no cgroup filesystem in the code's root, and a cgroup namespace rooted at "
            "the run's group: the code can neither read nor write any group (its own "
            "limits, other runs' cpu.stat)"
            if hidden
            else no_ns
            or (
                f"no cgroup namespace: {notes.get('cgroup_ns')}"
                if whitelist
                else "the host's /sys/fs/cgroup is visible (read-only) without a root "
                "built for the code: other runs' cpu.stat can be read"
            ),
        )
    )
    usable = join_error is None
    for what, have, text in (
        ("memory", plan.memory, "memory of the whole process tree bounded (Limits.memory_bytes)"),
        ("pids", plan.pids, "processes and threads of the whole tree bounded (Limits.processes)"),
    ):
        where = "v2" if plan.v2_limits else "v1"
        out.append(
            Protection(
                f"cgroup-{what}",
                have and usable,
                f"{text}, cgroup {where}"
                if have and usable
                else join_error or plan.missing.get(f"cgroup-{what}", "unavailable"),
            )
        )
    return tuple(out)
