"""Per-test budgets from ``@pytest.mark.carbon(...)``: checked against the test's record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: marker keyword -> (record field, unit)
BUDGETS: dict[str, tuple[str, str]] = {
    "max_energy_j": ("energy_j", "J"),
    "max_gco2e_g": ("gco2e_g", "gCO2e"),
    "max_edp_js": ("edp_js", "J·s"),
    "max_power_w": ("power_w", "W"),
}


class BudgetError(ValueError):
    """The marker's arguments are wrong."""


def parse_budget(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, float]:
    if args:
        raise BudgetError("@pytest.mark.carbon takes keyword arguments only: " + ", ".join(BUDGETS))
    unknown = [k for k in kwargs if k not in BUDGETS]
    if unknown:
        raise BudgetError(
            f"@pytest.mark.carbon: unknown budget {', '.join(unknown)}; use {', '.join(BUDGETS)}"
        )
    out: dict[str, float] = {}
    for k, v in kwargs.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise BudgetError(f"@pytest.mark.carbon({k}=...) must be a number > 0, got {v!r}")
        out[k] = float(v)
    return out


def budget_values(record: Mapping[str, Any]) -> tuple[dict[str, float], str]:
    """The values budgets apply to, and a word on what they are (per call or per test)."""
    per_call = record.get("per_call") or {}
    rounds_calls = per_call.get("calls") or 0
    if per_call.get("energy_j") and per_call.get("duration_s"):
        e = per_call["energy_j"]["mean"]
        d = per_call["duration_s"]["mean"]
        from pytest_carbon.carbon.accounting import edp_js

        gco2e = record["gco2e_g"] / rounds_calls if rounds_calls and record.get("gco2e_g") else None
        vals = {"energy_j": e, "edp_js": edp_js(e, d), "power_w": e / d if d > 0 else 0.0}
        if gco2e is not None:
            vals["gco2e_g"] = gco2e
        return vals, "per call (mean)"
    return {
        k: record[k]
        for k in ("energy_j", "gco2e_g", "edp_js", "power_w")
        if record.get(k) is not None
    }, "for the call phase"


def check_budget(record: Mapping[str, Any], budget: Mapping[str, float]) -> list[str]:
    """One message per exceeded budget, with the measured value, the budget and the method."""
    values, scope = budget_values(record)
    method = record.get("method") or "unknown"
    out = []
    for key, limit in budget.items():
        field, unit = BUDGETS[key]
        value = values.get(field)
        if value is not None and value > limit:
            out.append(
                f"carbon budget exceeded: {field} = {value:.6g} {unit} {scope} > "
                f"{key}={limit:g} {unit} (method: {method})"
            )
    return out
