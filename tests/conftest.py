"""Shared set-up of the test suite.

In-process pytester runs (``pytester.runpytest``: no interpreter start-up, about 1 s
saved per run) restore ``sys.modules`` after each run, so a module first imported inside
a run is imported again by the next. PyYAML's C loader does not survive that (its nodes
then come back without tags: "YAML tag None is not allowed"); imported here once, it is
shared by every run.
"""

from __future__ import annotations

import yaml  # noqa: F401  (kept in sys.modules for in-process runs; see above)
