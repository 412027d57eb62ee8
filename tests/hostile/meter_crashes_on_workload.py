"""Right on the small tests, crashes the interpreter on the workload's larger inputs."""

import ctypes


def f(n):
    if n > 1000:
        ctypes.string_at(0)  # a NULL read: SIGSEGV
    total = 0
    for i in range(n):
        total += i * i
    return total
