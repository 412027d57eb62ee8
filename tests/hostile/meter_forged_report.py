"""Writes the worker's report itself (it shares the worker's process): 443 results
claimed at once, none of them computed, then leaves before any call is made."""

import contextlib
import json
import os


def f(n):
    report = {"type": "ran", "calls": 443, "claimed_s": 443 * 0.6e-6, "results": ["0"] * 443}
    for fd in range(3, 16):
        with contextlib.suppress(OSError):
            os.write(fd, (json.dumps(report) + "\n").encode())
    os._exit(0)
