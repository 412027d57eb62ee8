"""A control group per sandbox run: one memory and one process budget for the whole tree,
its CPU time, and a kill that no descendant escapes.

RLIMIT_AS bounds each process, not their sum: five forked children could each take the
limit. A cgroup bounds the tree, and every descendant stays in it whatever it does
(``setsid``, double fork, clearing its environment), so it also gives the CPU time of
the whole tree (``cpu.stat``) and a reliable kill (``cgroup.kill``).

Where this works. The run's cgroup is created under the cgroup pytest itself is in (we
never move pytest). cgroup v2 is preferred: the unified hierarchy (``/sys/fs/cgroup``,
or ``/sys/fs/cgroup/unified`` on a hybrid machine) gives ``cpu.stat`` and
``cgroup.kill`` in any case, and ``memory.max`` / ``pids.max`` when the ``memory`` and
``pids`` controllers are enabled for our children (``cgroup.subtree_control``; we try
to enable them, which the kernel refuses in a cgroup that holds processes, other than
the root). On a hybrid machine whose memory and pids controllers are mounted as cgroup
v1, the run gets a v1 memory and pids group as well (``memory.limit_in_bytes``,
``pids.max``). Whatever cannot be created is reported, with the kernel's reason, by
:func:`probe` (and ``pytest-carbon sandbox``): the run then goes on with the per-process
limits only.

The child joins every group before ``exec`` (in ``preexec_fn``: writing ``0`` to
``cgroup.procs`` moves the writer), so the first instruction of the sandbox already
runs inside them.

Out of the code's reach. In the namespaces mode the code has no cgroup filesystem and
may mount none (seccomp), so it can neither raise its limits nor read other runs'
groups. Where it can see the tree (the fallbacks), a child group it makes does not keep
the run's: the groups are killed as a whole subtree and removed bottom-up
(:func:`remove_tree`), which :func:`probe` checks on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

#: Name prefix of the groups we create: one per run, ``PREFIX + f"{pid}-{run_id}"``, pid
#: being the process that created it (so a group whose creator is gone is known stale).
PREFIX = "pytest-carbon-"


@dataclass(frozen=True)
class CgroupPlan:
    """Where runs' groups go on this machine (parent directories), and what is missing.

    ``v2``: the unified parent, or None. ``v2_limits``: whether memory.max and pids.max
    can be set there. ``v1_memory`` / ``v1_pids``: v1 parents used when v2 has no such
    controller. ``missing``: protection name -> reason, for what cannot be had here."""

    v2: str | None = None
    v2_limits: bool = False
    v1_memory: str | None = None
    v1_pids: str | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def memory(self) -> bool:
        return self.v2_limits or self.v1_memory is not None

    @property
    def pids(self) -> bool:
        return self.v2_limits or self.v1_pids is not None


def _mounts() -> list[tuple[str, str, str, list[str]]]:
    """(mount point, root inside the hierarchy, fs type, super options) of cgroup mounts."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2"):
                opts = rfields[2].split(",") if len(rfields) > 2 else []
                out.append((fields[4], fields[3], rfields[0], opts))
    return out


def _own_groups() -> dict[str, str]:
    """Controller (or "" for v2) -> our group's path, from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                groups[""] = path
            for c in controllers.split(","):
                groups[c] = path
    return groups


def _join(mountpoint: str, root: str, path: str) -> str | None:
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None  # our group is outside what this mount shows
    rel = path[len(root) :] if root != "/" else path
    return os.path.join(mountpoint, rel.lstrip("/")).rstrip("/") or "/"


def _try_dir(parent: str) -> str | None:
    """None when a child group can be created (and removed) in ``parent``, else why not.
    The test group gets a child group of its own, removed with it (:func:`remove_tree`)."""
    test = os.path.join(parent, f"{PREFIX}probe-{os.getpid()}")
    try:
        os.mkdir(test)
    except OSError as exc:
        return f"cannot create a group in {parent}: {exc.strerror}"
    with contextlib.suppress(OSError):
        os.mkdir(os.path.join(test, "child"))
    left = remove_tree(test, wait_s=1.0)
    if left:
        return f"cannot remove a group with a child group in {parent}: {left[0]} stays"
    return None


def _subtree(d: str) -> list[str]:
    """``d`` and every group below it, deepest first."""
    found: list[str] = []
    for dirpath, _, _ in os.walk(d, topdown=False):
        found.append(dirpath)
    return found or [d]


def remove_tree(d: str, wait_s: float = 2.0) -> list[str]:
    """Remove group ``d`` and every child group in it, bottom-up (a group with children
    cannot be removed, and the code may have made some). Their processes must be gone
    (see :meth:`RunCgroup.kill`). The groups that could not be removed, deepest first."""
    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for path in _subtree(d):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(path)  # EBUSY while exiting processes leave
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def probe() -> CgroupPlan:
    """Which groups a run can get here (creates and removes a test group in each)."""
    missing: dict[str, str] = {}
    try:
        mounts, own = _mounts(), _own_groups()
    except OSError as exc:
        reason = f"cannot read the cgroup setup: {exc}"
        return CgroupPlan(missing=dict.fromkeys(("cgroup", "cgroup-memory", "cgroup-pids"), reason))
    v2 = None
    v2_limits = False
    for mp, root, kind, _ in mounts:
        if kind == "cgroup2" and "" in own:
            parent = _join(mp, root, own[""])
            if parent is None or not os.path.isdir(parent):
                missing["cgroup"] = f"our cgroup v2 group is not visible under {mp}"
                continue
            why = _try_dir(parent)
            if why is not None:
                missing["cgroup"] = why
                continue
            v2 = parent
            wanted = {"memory", "pids"}
            enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
            if not wanted <= enabled:
                available = set(_read(os.path.join(parent, "cgroup.controllers")).split())
                if wanted <= available:
                    control = os.path.join(parent, "cgroup.subtree_control")
                    with contextlib.suppress(OSError), open(control, "w") as f:
                        f.write("+memory +pids")
                    enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
                    if not wanted <= enabled:
                        missing["cgroup-v2-limits"] = (
                            f"cannot enable the memory and pids controllers in {parent} "
                            "(the kernel refuses it in a group that holds processes)"
                        )
                else:
                    missing["cgroup-v2-limits"] = (
                        f"the memory and pids controllers are not available to cgroup v2 "
                        f"here ({parent} offers: {' '.join(sorted(available)) or 'none'})"
                    )
            v2_limits = wanted <= enabled
            break
    else:
        missing.setdefault("cgroup", "no cgroup v2 hierarchy is mounted")
    v1: dict[str, str | None] = {"memory": None, "pids": None}
    if not v2_limits:
        for controller in v1:
            for mp, root, kind, opts in mounts:
                if kind != "cgroup" or controller not in opts or controller not in own:
                    continue
                parent = _join(mp, root, own[controller])
                why = _try_dir(parent) if parent and os.path.isdir(parent) else "not visible"
                if why is None:
                    v1[controller] = parent
                else:
                    missing[f"cgroup-{controller}"] = f"cgroup v1 {controller}: {why}"
                break
    for controller in ("memory", "pids"):
        if not v2_limits and v1[controller] is None:
            missing.setdefault(
                f"cgroup-{controller}",
                missing.get("cgroup-v2-limits")
                or missing.get("cgroup")
                or f"no writable {controller} controller",
            )
    missing.pop("cgroup-v2-limits", None)
    plan = CgroupPlan(v2, v2_limits, v1["memory"], v1["pids"], missing)
    sweep_stale(plan)
    return plan


def group_name(run_id: str) -> str:
    """The name of a run's groups, created by this process."""
    return f"{PREFIX}{os.getpid()}-{run_id}"


def _owner(name: str) -> int | None:
    pid, sep, _ = name[len(PREFIX) :].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(plan: CgroupPlan) -> list[str]:
    """Remove the run groups left by a pytest that is gone (killed before it could clean
    up): those whose creator no longer runs and in which no process is left, with their
    child groups. Returns the groups removed."""
    removed = []
    for group in leftover_groups(plan):
        owner = _owner(os.path.basename(group))
        if owner is None or _alive(owner):
            continue
        if any(_read(os.path.join(sub, "cgroup.procs")).split() for sub in _subtree(group)):
            continue  # a process is still there: not ours to judge
        if not remove_tree(group, wait_s=0.5):
            removed.append(group)
    return removed


class RunCgroup:
    """The groups of one run: created with their limits, joined by the child, killed and
    removed at the end. ``path`` is the v2 group (``cpu.stat``), or None."""

    def __init__(self, plan: CgroupPlan, run_id: str, memory_bytes: int, processes: int):
        self.dirs: list[str] = []
        self.path: str | None = None
        self._memory_dir: str | None = None
        self._v1_memory = False
        name = group_name(run_id)
        try:
            if plan.v2:
                self.path = self._make(os.path.join(plan.v2, name))
                if plan.v2_limits:
                    self._write(self.path, "memory.max", memory_bytes)
                    with contextlib.suppress(OSError):  # absent without swap accounting
                        self._write(self.path, "memory.swap.max", 0)
                    self._write(self.path, "pids.max", processes)
                    self._memory_dir = self.path
            if plan.v1_memory and not plan.v2_limits:
                d = self._make(os.path.join(plan.v1_memory, name))
                self._write(d, "memory.limit_in_bytes", memory_bytes)
                with contextlib.suppress(OSError):  # absent without swap accounting
                    self._write(d, "memory.memsw.limit_in_bytes", memory_bytes)
                self._memory_dir, self._v1_memory = d, True
            if plan.v1_pids and not plan.v2_limits:
                self._write(self._make(os.path.join(plan.v1_pids, name)), "pids.max", processes)
        except OSError:
            self.remove()
            raise

    def _make(self, path: str) -> str:
        os.mkdir(path)
        self.dirs.append(path)
        return path

    @staticmethod
    def _write(d: str, name: str, value: int) -> None:
        with open(os.path.join(d, name), "w") as f:
            f.write(str(value))

    @property
    def procs_files(self) -> list[str]:
        """What the child writes ``0`` into before exec, to join every group."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        """Every process in the run's groups and in any group below them."""
        found: set[int] = set()
        for d in self.dirs:
            for group in _subtree(d):
                found.update(int(p) for p in _read(os.path.join(group, "cgroup.procs")).split())
        return found

    def cpu_usec(self) -> int | None:
        """CPU time of every process the run ever had (v2 ``cpu.stat`` usage_usec)."""
        if self.path is None:
            return None
        for line in _read(os.path.join(self.path, "cpu.stat")).splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value)
        return None

    def oom_kills(self) -> int:
        """Processes the kernel killed for the group's memory limit."""
        if self._memory_dir is None:
            return 0
        name = "memory.oom_control" if self._v1_memory else "memory.events"
        for line in _read(os.path.join(self._memory_dir, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def kill(self, wait_s: float = 2.0) -> None:
        """Kill every process in the groups, child groups included (``cgroup.kill`` is
        recursive), and wait until they are gone."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                self._write(self.path, "cgroup.kill", 1)
        deadline = time.monotonic() + wait_s
        while True:
            left = self.pids()
            if not left or time.monotonic() > deadline:
                return
            # Without cgroup.kill (v1 only, or Linux < 5.14): stop all, then kill.
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in left:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
            time.sleep(0.005)

    def remove(self, wait_s: float = 2.0) -> list[str]:
        """Remove the groups, and any child group the code made in them, bottom-up (they
        must be empty: call :meth:`kill` first); the ones that could not be removed."""
        deadline = time.monotonic() + wait_s
        left: list[str] = []
        for d in reversed(self.dirs):
            left += remove_tree(d, max(deadline - time.monotonic(), 0.0))
        self.dirs = [d for d in self.dirs if any(g == d or g.startswith(d + "/") for g in left)]
        return left


def leftover_groups(plan: CgroupPlan) -> list[str]:
    """Run groups still present under the plan's parents (none after a clean run)."""
    found = []
    for parent in (plan.v2, plan.v1_memory, plan.v1_pids):
        if parent:
            with contextlib.suppress(OSError):
                found += [
                    os.path.join(parent, n)
                    for n in os.listdir(parent)
                    if n.startswith(PREFIX) and "-probe-" not in n
                ]
    return found
