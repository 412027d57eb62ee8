"""Shadows ``abs`` (its own global, and the builtin in its process) with a function that
says every difference is 0, then answers wrongly: a check that computes
``abs(candidate(x) - expected) < tol`` with the candidate's globals would pass it."""

import builtins

builtins.abs = lambda x: 0


def abs(x):  # noqa: A001
    return 0


def half(x):
    return x  # wrong: x / 2
