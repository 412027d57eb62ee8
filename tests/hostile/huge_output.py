"""Writes 64 MiB to stdout and 64 MiB to stderr, then returns normally."""

import sys


def run():
    block = "y" * (1024 * 1024)
    for _ in range(64):
        sys.stdout.write(block)
        sys.stderr.write(block)
    return 1
