"""The honest twin of the meter_* answers: the same work, no trick."""


def f(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
