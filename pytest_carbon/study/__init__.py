"""Studies over prompt suites: models x prompt strategies, across tasks (see docs/studies.md).

:mod:`.stats` computes every figure from records only, so a merged report gives the same
study as the run it came from; :mod:`.render` turns it into text.
"""
