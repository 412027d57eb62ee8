"""Recurses without end under the default limit: RecursionError."""


def run():
    def down(k):
        return down(k + 1) + 1

    return down(0)
