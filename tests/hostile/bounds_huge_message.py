"""Writes ``mib`` MiB on the runner's control fd without an end of line, then one more
byte every ``pause_s`` seconds, for ever (none when ``pause_s`` is None).

With 63 MiB and a byte a millisecond this kept pytest reading past 300 s on a 10 s
timeout: each byte copied the whole buffer, more bytes had come in by then, so the read
loop never gave the deadline a look."""

import os
import sys
import time


def run(mib, pause_s):
    fd = int(sys.argv[1])  # the runner's channel to pytest
    block = b"x" * (1024 * 1024)
    for _ in range(mib):
        os.write(fd, block)
    while pause_s is not None:
        os.write(fd, b"x")
        time.sleep(pause_s)
    return 1
