"""Keeps answers in a module of its own in sys.modules, which outlives the fresh
namespace each call is loaded into: a hit whenever an input repeats in one process.

Its honest twin is this file with ``CHEAT = False``: the same work and the same lookups,
which never find anything."""

import sys

CHEAT = True
_cache = sys.modules.setdefault("_meter_cache", type(sys)("_meter_cache")).__dict__


def f(n):
    key = n if CHEAT else -n - 1
    if key in _cache:
        return _cache[key]
    total = 0
    for i in range(n):
        total += i * i
    _cache[n] = total
    return total
