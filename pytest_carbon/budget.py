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
    """The values budgets apply to, and a word on what they are: per call (the carbon
    fixture's or pytest-benchmark's rounds), per round (the median round under
    ``--carbon-rounds=N``: a budget is never checked against the sum of N rounds), or
    for the call phase (one round)."""
    from pytest_carbon.carbon.accounting import edp_js

    energy = record.get("energy_j")
    g_per_j = (
        record["gco2e_g"] / energy
        if energy and isinstance(record.get("gco2e_g"), (int, float))
        else None
    )
    per_call = record.get("per_call") or {}
    if per_call.get("energy_j") and per_call.get("duration_s"):
        e = per_call["energy_j"]["median"]
        d = per_call["duration_s"]["median"]
        scope = "per call (median)"
    else:
        samples = record.get("samples") or {}
        es = [v for v in samples.get("energy_j") or [] if isinstance(v, (int, float))]
        ds = [v for v in samples.get("duration_s") or [] if isinstance(v, (int, float))]
        if len(es) > 1 and len(es) == len(ds):
            import statistics

            e, d = statistics.median(es), statistics.median(ds)
            scope = f"per round (median of {len(es)})"
        else:
            return {
                k: record[k]
                for k in ("energy_j", "gco2e_g", "edp_js", "power_w")
                if record.get(k) is not None
            }, "for the call phase"
    vals = {"energy_j": e, "edp_js": edp_js(e, d), "power_w": e / d if d > 0 else 0.0}
    if g_per_j is not None:
        vals["gco2e_g"] = e * g_per_j
    return vals, scope


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
