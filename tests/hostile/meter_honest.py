"""The honest reference of the meter_* answers that fail or forge: the same work, no trick."""


def f(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
