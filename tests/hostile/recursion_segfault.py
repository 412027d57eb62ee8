"""Lifts the recursion limit and recurses through C code (repr of a deeply nested list):
the C stack overflows and the interpreter is killed by SIGSEGV (or raises)."""

import sys


def run():
    sys.setrecursionlimit(10**8)
    nested = []
    for _ in range(10**6):
        nested = [nested]
    return len(repr(nested))
