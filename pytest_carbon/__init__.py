"""pytest-carbon: energy, energy-delay product and carbon footprint of tests and generated code.

The public API is small and cheap to import; everything heavy is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Measurement", "Meter", "__version__", "read_report"]

if TYPE_CHECKING:
    from pytest_carbon.measure.meter import Measurement, Meter


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
