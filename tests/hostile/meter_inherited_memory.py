"""Answers with strings that name their input ("20000:...") and, before working, looks
through every object of its process for the answer of an earlier round: a worker forked
from a process that relayed the previous round's results (the runner, before issue 19)
inherits them in its memory."""

import gc


def f(n):
    prefix = f"{n}:"
    quoted = f'"{n}:'
    for obj in gc.get_objects():
        items = (
            obj if isinstance(obj, (list, tuple)) else obj.values() if isinstance(obj, dict) else ()
        )
        for item in items:
            if isinstance(item, str) and item.startswith(quoted) and item.endswith('"'):
                return item[1:-1]
            if isinstance(item, str) and item.startswith(prefix) and item[len(prefix) :].isdigit():
                return item
    total = 0
    for i in range(n):
        total += i * i
    return f"{n}:{total}"
