"""The run's totals, computed once for every report (terminal, HTML, Markdown, card).

The sums themselves are :func:`pytest_carbon.results.io.summarize`'s, the function that
writes the JSON ``summary``; this module adds what the reports show beside them (per
component, per ``carbon.measure()`` phase, rounds) and the words of the total's label.
Nulls are skipped, never counted as zero; a record without a method counts as "unknown".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from pytest_carbon.report.format import num

#: The phase the runner adds beside a fixture's record (the whole call): not a
#: ``carbon.measure()`` block of the test's own.
CALL_PHASE = "call"


@dataclass
class Totals:
    """Totals over a run's records, as every renderer shows them."""

    tests: int
    measured: int
    energy_j: float | None
    gco2e_g: float | None
    duration_s: float | None
    methods: dict[str, int]
    components: dict[str, float] = field(default_factory=dict)
    embodied_gco2e_g: float | None = None
    water_l: float | None = None
    #: name -> {"energy_j", "gco2e_g", "duration_s", "tests", "methods"}
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: N when every measured record without per-call figures ran N > 1 rounds (their
    #: energies are sums over the N rounds); None otherwise.
    rounds: int | None = None
    #: Measured records whose energy is a measuring window that repeats one call.
    windows: int = 0

    @property
    def not_measured(self) -> int:
        return self.tests - self.measured

    @property
    def method(self) -> str:
        """One word for the total's method: the only one, "mixed", or "—"."""
        if len(self.methods) == 1:
            return next(iter(self.methods))
        return "mixed" if self.methods else "—"

    def label(self) -> str:
        """The total row's label, e.g. ``total (3 measured, 1 not measured, 5 rounds)``;
        never shortened by a report."""
        parts = [f"{self.measured} measured"]
        if self.not_measured:
            parts.append(f"{self.not_measured} not measured")
        if self.rounds:
            parts.append(f"{self.rounds} rounds")
        if self.windows:
            parts.append(f"{self.windows} window total{'s' if self.windows > 1 else ''}")
        return f"total ({', '.join(parts)})"


def records_of(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report.get("tests") or [] if isinstance(r, dict)]


def per_call_energy_j(rec: Mapping[str, Any]) -> float | None:
    """Median energy of one call where the work was repeated in a window, else None."""
    per_call = rec.get("per_call")
    if not isinstance(per_call, dict):
        return None
    stats = per_call.get("energy_j")
    return num(stats.get("median")) if isinstance(stats, dict) else None


def compute(records: Sequence[Mapping[str, Any]]) -> Totals:
    from pytest_carbon.results.io import summarize

    # One pass; a record is copied (its energy made a finite float or None) only where
    # its energy is not one already: the common record goes to summarize() as it is.
    clean: list[Mapping[str, Any]] = []
    measured: list[Mapping[str, Any]] = []
    for r in records:
        if type(r) is not dict and not isinstance(r, Mapping):
            continue
        e = r.get("energy_j")
        if type(e) is float and isfinite(e):
            clean.append(r)
            measured.append(r)
            continue
        e = num(e)
        clean.append({**r, "energy_j": e})
        if e is not None:
            measured.append(r)
    s = summarize(clean)
    components: dict[str, float] = {}
    phases: dict[str, dict[str, Any]] = {}
    rounds: set[int] = set()
    windows = 0
    for r in measured:
        for comp, value in (r.get("components") or {}).items():
            # A finite float and a str name (the common case) need no conversion.
            if type(value) is float and isfinite(value):
                v: float | None = value
            else:
                v = num(value)
            if v is not None:
                name = comp if type(comp) is str else str(comp)
                components[name] = components.get(name, 0.0) + v
        # The common record (no phases, no per-call figures) in one step.
        if not r.get("phases") and not r.get("per_call") and isinstance(r.get("rounds"), int):
            rounds.add(r["rounds"])
            continue
        for name, ph in (r.get("phases") or {}).items():
            if name == CALL_PHASE or not isinstance(ph, dict):
                continue
            row = phases.setdefault(
                str(name),
                {"energy_j": 0.0, "gco2e_g": 0.0, "duration_s": 0.0, "tests": 0, "methods": {}},
            )
            row["tests"] += 1
            for key in ("energy_j", "gco2e_g", "duration_s"):
                row[key] += num(ph.get(key)) or 0.0
            m = str(ph.get("method") or "unknown")
            row["methods"][m] = row["methods"].get(m, 0) + 1
        if per_call_energy_j(r) is not None:
            windows += 1
        elif isinstance(r.get("rounds"), int):
            rounds.add(r["rounds"])
    common = next(iter(rounds)) if len(rounds) == 1 else None
    have = bool(measured)
    return Totals(
        tests=len(clean),
        measured=len(measured),
        # A 0.0 over no measurement would be a false number.
        energy_j=s["energy_j"] if have else None,
        gco2e_g=s["gco2e_g"] if have else None,
        duration_s=s["duration_s"] if have else None,
        methods=dict(s["methods"]),
        components=components,
        embodied_gco2e_g=s.get("embodied_gco2e_g"),
        water_l=s.get("water_l"),
        phases=phases,
        rounds=common if common and common > 1 else None,
        windows=windows,
    )


def of_report(report: Mapping[str, Any]) -> Totals:
    return compute(records_of(report))
