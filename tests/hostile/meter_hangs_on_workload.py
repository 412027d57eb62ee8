"""Right on the small tests, hangs on the workload's larger inputs."""

import time


def f(n):
    if n > 1000:
        time.sleep(3600)
    total = 0
    for i in range(n):
        total += i * i
    return total
