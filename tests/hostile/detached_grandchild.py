"""Leaves a detached grandchild behind (double fork + setsid + sleep 60), then returns."""

import os
import time


def run():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    os.wait()
    return 1
