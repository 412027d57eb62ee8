"""Work sized in CPU seconds, not loop counts: a test whose verdict needs a window of some
length (a comparison's shortest window, the fixture's minimum time) gets that length on
any machine, fast or busy, where ``range(N)`` would last whatever the machine makes of it.

:func:`burn` runs in the test's own process; :data:`SOURCE` is the same function as text,
for the suites that pytester writes and runs in a new process."""

from __future__ import annotations

import inspect
import time


def burn(seconds: float) -> float:
    """Spin until this process has used ``seconds`` more CPU time; returns ``seconds``."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds


#: ``import time`` and :func:`burn`, to paste into a generated test module.
SOURCE = "import time\n\n\n" + inspect.getsource(burn)
