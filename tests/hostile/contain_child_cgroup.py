"""Makes a child group in each of its own cgroup groups it can find (from
/proc/self/cgroup, under /sys/fs/cgroup, v1 and v2), and leaves a process inside each:
a run's group with a child cannot be removed by a plain rmdir, so it would stay on the
host. Returns the groups it made."""

import os
import time


def _own_groups():
    found = set()
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if path == "/":
                continue  # not a group of the run: the host's root (or a namespace's)
            tops = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] if not controllers else []
            tops += [os.path.join("/sys/fs/cgroup", c) for c in controllers.split(",") if c]
            for top in tops:
                group = os.path.join(top, path.lstrip("/"))
                if os.path.exists(os.path.join(group, "cgroup.procs")):
                    found.add(group)
    return sorted(found)


def run():
    made = []
    for group in _own_groups():
        child = os.path.join(group, "stay-here")
        try:
            os.mkdir(child)
        except OSError:
            continue
        made.append(child)
        if os.fork() == 0:
            try:
                with open(os.path.join(child, "cgroup.procs"), "w") as procs:
                    procs.write("0")
                time.sleep(60)
            finally:
                os._exit(0)
    return made
