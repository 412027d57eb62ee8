"""Writes a 100,000-deep JSON list on the runner's control fd, then answers correctly.

Decoded with ``json.loads`` this raised RecursionError in pytest's process: the item lost
its record and the report said ``complete: true``."""

import os
import sys


def add(a, b):
    fd = int(sys.argv[1])  # the runner's channel to pytest
    os.write(fd, b"[" * 100_000 + b"]" * 100_000 + b"\n")
    return a + b
