"""Tries to kill every pytest it can find under /proc, then its parent (pytest!)."""

import os
import signal


def run():
    attempts = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"pytest" not in f.read():
                        continue
                os.kill(int(pid), signal.SIGKILL)
                attempts.append((pid, "killed"))
            except OSError as exc:
                attempts.append((pid, exc.strerror))
    print(attempts, flush=True)
    # In a pid namespace getppid() is 0: this then kills our own process group.
    os.kill(os.getppid(), signal.SIGKILL)
    return 1
