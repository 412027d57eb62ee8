"""Answers for a call that was never made (an index far out of range), then exits, as if
its answer to the real call had been given."""

import os
import sys


def add(a, b):
    fd = int(sys.argv[1])
    os.write(fd, b'{"type": "value", "id": 1000000000, "value": 3}\n')
    os.write(fd, b'{"type": "got", "index": 1000000000, "value": 3}\n')
    os._exit(0)
