"""Keeps answers in the builtins module, shared by every namespace of the process: a
hit whenever an input repeats in one process (on a single-input workload, every call
after the first).

Its honest twin is this file with ``CHEAT = False``: the same work and the same lookups,
which never find anything."""

import builtins

CHEAT = True


def f(n):
    cache = builtins.__dict__.setdefault("_meter_cache", {})
    key = n if CHEAT else -n - 1
    if key in cache:
        return cache[key]
    total = 0
    for i in range(n):
        total += i * i
    cache[n] = total
    return total
