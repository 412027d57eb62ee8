"""Answers with strings that name their input ("20000:...") and, before working, looks
through every object of its process for the answer of an earlier round: a worker forked
from a process that relayed the previous round's results (the runner, before issue 19)
inherits them in its memory.

Its honest twin is this file with ``CHEAT = False``: the same work and the same search,
which never finds anything."""

import gc

CHEAT = True


def f(n):
    prefix = f"{n}:" if CHEAT else "\0never"
    quoted = f'"{n}:' if CHEAT else "\0never"
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            items = obj.values()
        else:
            items = obj if isinstance(obj, (list, tuple)) else ()
        for item in items:
            if isinstance(item, str) and item.startswith(quoted) and item.endswith('"'):
                return item[1:-1]
            if isinstance(item, str) and item.startswith(prefix) and item[len(prefix) :].isdigit():
                return item
    total = 0
    for i in range(n):
        total += i * i
    return f"{n}:{total}"
