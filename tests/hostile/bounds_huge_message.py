"""Writes ``mib`` MiB on the runner's control fd without an end of line, then (``trickle``)
one more byte every millisecond, for ever.

With 63 MiB this kept pytest reading past 300 s on a 10 s timeout: each byte copied the
whole buffer, and more bytes had come in by then, so the read loop never gave the
deadline a look."""

import os
import sys
import time


def run(mib, trickle):
    fd = int(sys.argv[1])  # the runner's channel to pytest
    block = b"x" * (1024 * 1024)
    for _ in range(mib):
        os.write(fd, block)
    while trickle:
        os.write(fd, b"x")
        time.sleep(0.001)
    return 1
