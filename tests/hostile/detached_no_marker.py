"""Leaves a detached grandchild with an EMPTY environment (so no run marker): it execs
`sleep 61.4937` after a double fork and setsid, then returns."""

import os


def run():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", "61.4937"], {})
        os._exit(0)
    os.wait()
    return 1
