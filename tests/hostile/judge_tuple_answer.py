"""A correct answer that returns a tuple, checked against a tuple (HumanEval's style)."""


def min_max(xs):
    return (min(xs), max(xs))
