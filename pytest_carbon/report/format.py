"""The one number formatter of every report: SI prefixes, 3 significant digits, never
scientific notation. Data keeps base units; only what a person reads goes through here.

``si(0.00512, "J")`` -> ``"5.12 mJ"``; ``si(4.18e3, "J")`` -> ``"4.18 kJ"``;
``carbon(5.23e-4)`` -> ``"523 µgCO2e"``; ``duration(90)`` -> ``"1.50 min"``;
None (or NaN, or a non-number) -> ``"—"`` (not measured).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: What "no value" reads as, everywhere.
NOT_MEASURED = "—"

#: From pico to tera: reports span nanojoules (one call) to megajoules (a CI month).
_PREFIXES = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "µ"),
    (1e-9, "n"),
    (1e-12, "p"),
)

#: Units of the metric names used by comparisons and budgets.
METRIC_UNITS: dict[str, str] = {
    "energy": "J",
    "dynamic_energy": "J",
    "duration": "s",
    "power": "W",
    "edp": "J·s",
    "gco2e": "gCO2e",
    "carbon": "gCO2e",
}


def num(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits in fixed-point notation (thousands
    separated): ``sig(0.000123)`` -> ``"0.000123"``, ``sig(1234567)`` -> ``"1,230,000"``."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    rounded = round(value, digits - 1 - exponent)
    if rounded != 0:  # rounding may carry into one more digit (999.6 -> 1000)
        exponent = math.floor(math.log10(abs(rounded)))
    decimals = max(0, digits - 1 - exponent)
    return f"{rounded:,.{decimals}f}"


def si(value: Any, unit: str, digits: int = 3) -> str:
    """A value with an SI prefix and ``digits`` significant digits; "—" when not a number."""
    v = num(value)
    if v is None:
        return NOT_MEASURED
    if v == 0:
        return f"0 {unit}"
    mag = abs(v)
    for i, (factor, prefix) in enumerate(_PREFIXES):
        if mag >= factor or i == len(_PREFIXES) - 1:
            scaled = v / factor
            text = sig(scaled, digits)
            # 999.96 mJ rounds to "1,000 mJ": say "1.00 J" instead.
            if abs(float(text.replace(",", ""))) >= 1000 and i > 0:
                factor, prefix = _PREFIXES[i - 1]
                text = sig(v / factor, digits)
            return f"{text} {prefix}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def energy(energy_j: Any) -> str:
    return si(energy_j, "J")


def carbon(gco2e_g: Any) -> str:
    """Grams of CO2e with an SI prefix; tonnes from a million grams up."""
    g = num(gco2e_g)
    if g is not None and abs(g) >= 1e6:
        return si(g / 1e6, "tCO2e")
    return si(g, "gCO2e")


def duration(duration_s: Any) -> str:
    """Seconds below a minute (with ms, µs), then minutes, then hours."""
    d = num(duration_s)
    if d is None:
        return NOT_MEASURED
    if abs(d) >= 3600:
        return f"{sig(d / 3600)} h"
    if abs(d) >= 60:
        return f"{sig(d / 60)} min"
    return si(d, "s")


def power(power_w: Any) -> str:
    return si(power_w, "W")


def water(water_l: Any) -> str:
    return si(water_l, "L")


def plain(value: Any, digits: int = 3) -> str:
    """A unitless number (an intensity, a count of charges): 3 significant digits."""
    v = num(value)
    if v is None:
        return NOT_MEASURED
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return sig(v, digits)


def setting(value: Any) -> str:
    """A setting echoed back (a PUE, a grid intensity): 3 significant digits at most,
    without trailing zeros (``1``, ``1.2``, ``475``, ``368`` for 367.8)."""
    text = plain(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def ratio(value: Any) -> str:
    """A ratio to a reference: ``0.42×``, ``12.3×``."""
    v = num(value)
    return NOT_MEASURED if v is None else f"{sig(v)}×"


def change(fraction: Any) -> str:
    """A relative change: ``+9.10%``, ``−4.10%``."""
    v = num(fraction)
    if v is None:
        return NOT_MEASURED
    text = sig(abs(v) * 100)
    return f"{'+' if v >= 0 else '−'}{text}%"


def metric(value: Any, name: str) -> str:
    """A value of a named metric (``energy``, ``duration``, ``gco2e``...)."""
    if name == "duration":
        return duration(value)
    if name in ("gco2e", "carbon"):
        return carbon(value)
    return si(value, METRIC_UNITS.get(name, ""))


def equivalence(item: Mapping[str, Any]) -> str:
    """One everyday equivalent, in units a person reads ("43.7 mm of driving ...",
    "0.00640% of a smartphone's battery charge", "200 ms of a 10 W LED bulb")."""
    value = num(item.get("value"))
    unit = str(item.get("unit") or "")
    label = str(item.get("label") or "")
    if value is None:
        return NOT_MEASURED
    if unit == "m":
        return f"{si(value, 'm')} of {label}"
    if unit == "s":
        return f"{duration(value)} of {label}"
    if unit == "charges":
        if value < 1:
            return f"{sig(value * 100)}% of one charge of {label}"
        return f"{sig(value)} charges of {label}"
    return f"{plain(value)} {unit} of {label}"
