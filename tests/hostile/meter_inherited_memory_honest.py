"""The honest twin of meter_inherited_memory: the same answers, computed."""


def f(n):
    total = 0
    for i in range(n):
        total += i * i
    return f"{n}:{total}"
