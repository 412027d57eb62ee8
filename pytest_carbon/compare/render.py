"""A comparison as terminal lines: totals, the notable tests, counts and warnings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pytest_carbon.compare.judge import UNITS, MetricChange
from pytest_carbon.compare.stats import relative_change

if TYPE_CHECKING:
    from pytest_carbon.compare.judge import Comparison


def fmt_change(change: float | None) -> str:
    if change is None:
        return "n/a"
    return f"{change * 100:+.1f}%"


def fmt_value(value: float | None, metric: str) -> str:
    """A value with its unit and an SI prefix: ``1.23 J``, ``45.6 mg``, ``820 ms``."""
    from pytest_carbon.report.units import si

    return "-" if value is None else si(value, UNITS.get(metric, ""))


def render_lines(
    comp: Comparison, width: int = 100, verbose: bool = False, top: int = 20
) -> list[str]:
    """Without ``verbose``, tests with no change are counted, not listed."""
    lines = [f"carbon comparison: {comp.base_label} -> {comp.current_label}"]
    if comp.specs:
        lines.append("  fail on: " + ", ".join(s.text for s in comp.specs))
    if comp.family:
        lines.append(
            f"  {comp.family} judgement(s), each at {(1 - 0.05 / comp.family) * 100:.4g}% "
            "(Bonferroni): at most a 5% chance of any false alarm in this run"
        )
    if comp.screen is not None and not comp.family:
        lines.append("  no test examined alone: the screen cleared every group")
    for g in comp.screen or []:
        ratios = ", ".join(
            f"{m} {r['ratio']:.3g}x [{r['low']:.3g}, {r['high']:.3g}]"
            for m, r in (g.get("ratios") or {}).items()
        )
        word = "no change beyond the threshold" if g["decision"] == "cleared" else "examined"
        lines.append(
            f"  screen: {g['group']} ({g['tests']} tests, {g['pairs']} pairs): "
            f"{ratios or g.get('stopped')}: {word}"
        )
    if comp.totals:
        parts = [
            f"{m} {fmt_value(b, m)} -> {fmt_value(c, m)} ({fmt_change(relative_change(b, c))})"
            for m, (b, c) in comp.totals.items()
        ]
        lines.append("  totals over common tests: " + " · ".join(parts))
    rows = _rows(comp, verbose, top)
    if rows:
        name_w = max(20, width - 68)
        header = f"  {'test':<{name_w}} {'energy':<27} {'duration':>9} {'gCO2e':>9}  verdict"
        lines.append(header)
        for nodeid, per in rows:
            lines.append(_row(nodeid, per, name_w))
            if verbose:
                lines += [f"      {c.metric}: {c.detail}" for c in per.values() if c.detail]
    counts = comp.counts()
    summary = ", ".join(f"{n} {_word(s)}" for s, n in counts.items() if n)
    lines.append(f"  tests: {summary or 'none'}")
    hidden = len(_rows(comp, True, None)) - len(rows)
    if hidden > 0:
        lines.append(f"  ({hidden} more not listed: no change, or beyond the top {top})")
    for f in comp.failures:
        lines.append(
            f"  FAILED {f.nodeid}: {f.metric} {fmt_value(f.base, f.metric)} -> "
            f"{fmt_value(f.current, f.metric)} ({fmt_change(f.change)}) exceeds "
            f"{f.spec.threshold_text if f.spec else '?'}: {f.detail}"
        )
    lines += [f"  warning: {w}" for w in comp.warnings]
    return lines


def _word(status: str) -> str:
    return "no change" if status == "noise" else status


def _rows(
    comp: Comparison, verbose: bool, top: int | None
) -> list[tuple[str, dict[str, MetricChange]]]:
    def rank(item: tuple[str, dict[str, MetricChange]]) -> tuple[int, float]:
        per = item[1]
        failing = any(c.failing for c in per.values())
        e = per.get("energy")
        size = abs(e.change) if e is not None and e.change is not None else 0.0
        return (0 if failing else 1, -size)

    items = sorted(comp.by_test().items(), key=rank)
    if not verbose:
        items = [(k, v) for k, v in items if any(c.status != "noise" for c in v.values())]
    return items if top is None or verbose else items[:top]


def _row(nodeid: str, per: Mapping[str, MetricChange], name_w: int) -> str:
    name = nodeid if len(nodeid) <= name_w else "…" + nodeid[-(name_w - 1) :]
    e = per.get("energy")
    if e is not None and e.status in ("new", "missing", "unmeasured"):
        energy = {"new": "(new test)", "missing": "(not in this run)"}.get(
            e.status,
            "(too short to measure)" if "too short" in e.detail else "(nothing measured)",
        )
    elif e is not None:
        energy = f"{fmt_value(e.base, 'energy')} -> {fmt_value(e.current, 'energy')} "
        energy += fmt_change(e.change)
    else:
        energy = ""
    dur = per.get("duration")
    gco2e = per.get("gco2e")
    return (
        f"  {name:<{name_w}} {energy:<27} "
        f"{fmt_change(dur.change) if dur else '':>9} "
        f"{fmt_change(gco2e.change) if gco2e else '':>9}  {_verdict(per)}"
    )


def _verdict(per: Mapping[str, MetricChange]) -> str:
    failing = [c for c in per.values() if c.failing]
    if failing:
        return "FAIL " + ", ".join(
            f"{c.metric}>{c.spec.threshold_text if c.spec else '?'} ({_how(c)})" for c in failing
        )
    notable = [c for c in per.values() if c.status in ("regression", "improvement")]
    if notable:
        return ", ".join(f"{c.metric} {c.status} ({_how(c)})" for c in notable)
    statuses = {c.status for c in per.values()}
    if statuses & {"new", "missing", "unmeasured"}:
        return next(s for s in ("unmeasured", "new", "missing") if s in statuses)
    e = per.get("energy") or next(iter(per.values()))
    return f"{_word(e.status)} ({_how(e)})"


def _how(c: MetricChange) -> str:
    if c.method == "paired" and c.interval is not None and c.paired is not None:
        ratio = c.paired.get("ratio")
        level = f"{float(c.paired.get('confidence') or 0.95) * 100:.4g}%"
        what = f"{ratio:.3g}x" if c.paired.get("relative", True) else f"{ratio:+.3g}"
        return (
            f"paired {what}, {level} CI [{c.interval[0]:.3g}, {c.interval[1]:.3g}], "
            f"{c.paired.get('pairs')} pairs"
        )
    if c.method == "screened" and c.paired is not None:
        return f"screened with {c.paired.get('group')}, {c.paired.get('ratio', 0):.3g}x"
    if c.method == "mann-whitney" and c.p_value is not None:
        return f"mann-whitney p={c.p_value:.3g}, n={c.n_base}/{c.n_current}"
    if c.method == "bootstrap" and c.interval is not None:
        return f"bootstrap 95% [{c.interval[0]:.3g}, {c.interval[1]:.3g}]"
    if c.method and c.method.startswith("threshold+") and c.noise is not None:
        return f"{c.method} {c.noise * 100:.1f}%"
    return c.method or "-"
