"""Human-readable numbers with SI prefixes (for display only; data keeps base units)."""

from __future__ import annotations

_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """``si(0.00512, "J")`` -> ``"5.12 mJ"``; None -> ``"—"`` (not measured)."""
    if value is None:
        return "—"
    if value == 0:
        return f"0 {unit}"
    mag = abs(value)
    for factor, prefix in _PREFIXES:
        if mag >= factor * 0.9995:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"
