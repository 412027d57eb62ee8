"""The one number formatter: SI prefixes, 3 significant digits, never scientific notation."""

from __future__ import annotations

import re

import pytest

from pytest_carbon.carbon.equivalences import equivalences
from pytest_carbon.report import format as fmt

#: Every decade from 1e-9 to 1e9, and the mantissas that round across a prefix boundary.
VALUES = [m * 10.0**e for e in range(-9, 10) for m in (1.0, 1.234, 5.0, 9.9996)]
PREFIXES = {"p": 1e-12, "n": 1e-9, "µ": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
PREFIXES["T"] = 1e12


@pytest.mark.parametrize("value", VALUES)
def test_si_from_1e_minus_9_to_1e9(value: float) -> None:
    text = fmt.si(value, "J")
    match = re.fullmatch(r"(-?\d[\d,]*(?:\.\d+)?) ([pnµmkMGT]?)J", text)
    assert match, text
    assert "e" not in match.group(1).lower()
    mantissa = float(match.group(1).replace(",", ""))
    assert 1 <= mantissa < 1000, text  # the prefix is the largest that fits
    digits = len(match.group(1).replace(",", "").replace(".", "").lstrip("0"))
    assert digits == 3, text  # three significant digits, trailing zeros kept
    # Read back, the text is within half a unit of the third digit.
    back = mantissa * PREFIXES[match.group(2)]
    assert back == pytest.approx(value, rel=5e-3)


def test_si_exact_cases_and_boundaries() -> None:
    assert fmt.si(0.00512, "J") == "5.12 mJ"
    assert fmt.si(4180.0, "J") == "4.18 kJ"
    assert fmt.si(999.96e-3, "J") == "1.00 J"  # rounding carries into the next prefix
    assert fmt.si(1.0, "J") == "1.00 J"
    assert fmt.si(-0.0025, "W") == "-2.50 mW"
    assert fmt.si(0, "J") == "0 J"
    for missing in (None, float("nan"), float("inf"), True, "3"):
        assert fmt.si(missing, "J") == fmt.NOT_MEASURED


def test_carbon_duration_ratio_and_change() -> None:
    # The three renderings of one value become one.
    assert fmt.carbon(5.23e-4) == "523 µgCO2e"
    assert fmt.carbon(15.6e-3) == "15.6 mgCO2e"
    assert fmt.carbon(2.5e6) == "2.50 tCO2e"
    assert fmt.duration(0.0123) == "12.3 ms"
    assert fmt.duration(90) == "1.50 min"
    assert fmt.duration(7200) == "2.00 h"
    assert fmt.ratio(0.4213) == "0.421×"
    assert fmt.change(0.091) == "+9.10%"
    assert fmt.change(-0.041) == "−4.10%"
    assert fmt.plain(1234567.0) == "1,230,000"
    assert fmt.plain(0.000123) == "0.000123"
    assert fmt.metric(0.5, "energy") == "500 mJ"
    assert fmt.metric(0.5, "gco2e") == "500 mgCO2e"


def test_equivalences_read_in_everyday_units() -> None:
    # 4.37e-05 km (the example) is 43.7 mm of driving.
    items = equivalences(4.37e-5 * 251.0, 2.0)
    texts = [fmt.equivalence(i) for i in items[:3]]
    assert texts[0].startswith("4") and " mm of driving" in texts[0]
    assert texts[1] == "200 ms of a 10 W LED bulb"
    assert texts[2].endswith("% of one charge of a smartphone's battery")
    assert all("e-" not in t for t in texts)
    big = equivalences(8.22 * 3, 3600 * 10 * 2)
    assert fmt.equivalence(big[1]) == "2.00 h of a 10 W LED bulb"
    assert fmt.equivalence(big[2]) == "3.00 charges of a smartphone's battery"


def test_every_report_uses_this_formatter() -> None:
    """No report module writes its own number format (the four formatters of issue 14)."""
    from pathlib import Path

    import pytest_carbon.report as report_pkg

    root = Path(report_pkg.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name == "format.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"def (_num|_sig|fmt_energy|fmt_carbon|_si)\(", text), path
        assert not re.search(r"\{[^{}]*:[^{}]*\.\d[eg]\}", text), path  # no :.3g / :.2e
