"""pytest-carbon: energy, energy-delay product and carbon footprint of tests and generated code.

The public API is small and cheap to import; everything heavy is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Measurement", "Meter", "__version__", "read_report"]

if TYPE_CHECKING:
    from pytest_carbon.measure.meter import Measurement, Meter


def _skip_assertion_rewriting() -> None:
    """Take this package off pytest's list of modules whose asserts it rewrites.

    pytest marks every package of an installed plugin for assertion rewriting. Its
    import hook then loads each module of the package itself: it hashes the module's
    source and unmarshals its own cached code from the open file, on every import. For
    the ~25 modules a ``--carbon`` run imports lazily that cost about 80 M instructions
    (valgrind, ~45% of what ``--carbon`` added once per run); the ordinary import reads
    Python's bytecode cache. The package's asserts only narrow types for mypy: they
    need no rewritten messages. Called when the package is imported and when the
    plugin is registered (a pytest run inside a process that imported the package
    before, as pytester's in-process runs, installs a new hook). Harmless where pytest
    changes its hook: nothing is found, nothing is done.
    """
    import sys

    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        if type(finder).__name__ != "AssertionRewritingHook" or not isinstance(marked, set):
            continue
        if __name__ in marked:
            marked.discard(__name__)
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()  # answers for names asked so far; asked again when needed


_skip_assertion_rewriting()


def __getattr__(name: str) -> Any:
    # Lazy attributes keep `import pytest_carbon` (done by pytest at startup) free.
    if name in ("Meter", "Measurement"):
        from pytest_carbon.measure import meter

        return getattr(meter, name)
    raise AttributeError(name)


def read_report(paths: Any) -> Any:
    """Read one or more JSON reports into a pandas DataFrame (one row per record)."""
    from pytest_carbon.results.frame import read_report as _read_report

    return _read_report(paths)
