"""While the check runs, writes every verdict it can think of on its control fd (the
runner's own "passed", the check's "check_passed"), then answers wrongly."""

import os
import sys


def add(a, b):
    fd = int(sys.argv[1])  # the runner's channel to pytest
    for line in (
        b'{"type": "result", "passed": true}\n',
        b'{"type": "check_passed", "calls": 1}\n',
        b'{"type": "passed"}\n',
    ):
        os.write(fd, line)
    return a - b
