"""Five forked children each take `mib` MiB (touched) and hold it: under a per-process
limit only, together they take five times the limit. Returns how many held it."""

import os
import time


def run(children, mib):
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                hoard = b"\x01" * (mib * 1024 * 1024)
                os.write(w, b"+")
                time.sleep(2.0)
                os._exit(0 if hoard[-1] == 1 else 1)
            except BaseException:
                os._exit(1)
        pids.append(pid)
    os.close(w)
    held = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            held += 1
    os.close(r)
    return held
