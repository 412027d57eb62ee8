"""An int task answered with a float off by 2.4 million (close in relative terms)."""


def scaled(n):
    return float(n * 10**15) + 2.4e6
