"""Allocates (and touches) memory without end: MemoryError under RLIMIT_AS, or killed."""


def run():
    hoard = []
    while True:
        hoard.append(b"x" * (64 * 1024 * 1024))
