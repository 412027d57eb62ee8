"""Keeps every answer in a file, in every writable place it can find (/tmp, its working
directory, /dev/shm), and reads it back when the input comes again: a cache that would
live for the whole comparison if those places did.

Its honest twin is this file with ``CHEAT = False``: the same work and the same lookups,
which never find anything."""

import os

CHEAT = True


def f(n):
    for where in ("/tmp", ".", "/dev/shm"):
        try:
            name = f"meter-cache-{n}" if CHEAT else f"meter-never-{n}"
            with open(os.path.join(where, name)) as cached:
                return int(cached.read())
        except (OSError, ValueError):
            pass
    total = 0
    for i in range(n):
        total += i * i
    for where in ("/tmp", ".", "/dev/shm"):
        try:
            with open(os.path.join(where, f"meter-cache-{n}"), "w") as out:
                out.write(str(total))
        except OSError:
            pass
    return total
