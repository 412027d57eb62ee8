"""`pytest-carbon measure`'s text: 3 significant digits, no scientific notation, and the
attributed share only where a machine-wide counter was attributed."""

from __future__ import annotations

import re
from typing import Any

from pytest_carbon.cli.measure import _text


def result(methods: dict[str, str], share: float | None) -> dict[str, Any]:
    return {
        "command": ["python3", "-c", "pass"],
        "exit_code": 0,
        "interrupted": False,
        "duration_s": 0.0123456,
        "cpu_time_s": 0.0098765,
        "energy_j": 0.857318,
        "dynamic_energy_j": 0.0000094,
        "components": {c: 0.4286 for c in methods},
        "component_methods": methods,
        "power_w": 69.4432,
        "edp_js": 0.0000105843,
        "gco2e_g": 0.0000094321,
        "accounting": {"country": None, "intensity_g_per_kwh": 475.0, "pue": 1.0},
        "method": "estimated",
        "sensors": ["estimate"],
        "share": share,
        "warnings": [],
    }


def test_no_scientific_notation_and_three_significant_digits() -> None:
    text = _text(result({"cpu": "estimated", "dram": "estimated"}, None))
    assert not re.search(r"\d[eE][-+]?\d", text), text
    assert "857 mJ" in text and "857.318" not in text
    assert "9.43 µgCO2e" in text
    assert "share" not in text


def test_the_share_is_shown_only_where_a_counter_was_attributed() -> None:
    estimated = _text(result({"cpu": "estimated"}, 1.0))
    assert "share" not in estimated  # no machine-wide counter: nothing was attributed
    attributed = _text(result({"cpu": "attributed"}, 0.25))
    assert "share       0.250 of machine-wide counters (attributed)" in attributed
