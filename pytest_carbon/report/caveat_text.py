"""The caveats every report shows, with near-duplicates merged.

Under pytest-xdist the run warns once that tests ran concurrently, and every test's record
carries its own note that it was measured while other tests ran: two lines saying nearly
the same thing. The reports show one: the run's warning, with the count of tests and what
the per-test note adds. The JSON report keeps both, as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The start of the run's warning under xdist (session.py) and of each test's note
#: (runner.py's CONCURRENT_NOTE).
RUN_CONCURRENT = "tests ran concurrently (pytest-xdist)"
TEST_CONCURRENT = "measured while other tests ran (xdist)"


def merged(
    run_warnings: Iterable[str], kinds: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[Mapping[str, Any]]]:
    """``(run warnings, warning kinds)`` with the per-test concurrency note folded into the
    run's concurrency warning (when both are there)."""
    warnings = [str(w) for w in run_warnings if w]
    run_i = next((i for i, w in enumerate(warnings) if w.startswith(RUN_CONCURRENT)), None)
    kind_i = next(
        (i for i, k in enumerate(kinds) if str(k.get("kind", "")).startswith(TEST_CONCURRENT)),
        None,
    )
    if run_i is None or kind_i is None:
        return warnings, list(kinds)
    count = int(kinds[kind_i].get("count") or 0)
    warnings[run_i] = (
        f"{warnings[run_i]}; shared caches and frequency scaling add noise "
        f"({count} test{'s' if count != 1 else ''} measured while others ran)"
    )
    return warnings, [k for i, k in enumerate(kinds) if i != kind_i]
