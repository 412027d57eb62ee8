"""Writes the runner's own "all passed" message on its control fd, then answers wrongly."""

import os
import sys


def add(a, b):
    fd = int(sys.argv[1])  # the runner's channel to pytest
    os.write(fd, b'{"type": "result", "passed": true}\n')
    return a - b
