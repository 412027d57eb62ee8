"""The Markdown summary of a run, for ``$GITHUB_STEP_SUMMARY`` and pull-request comments.

Totals, how they were obtained, where the carbon intensity came from, then either the
largest changes against a baseline (when a comparison exists) or the heaviest tests.
GitHub-flavoured Markdown, kept short: a step summary is capped at 1 MiB.

Every string from the report (node ids, model and task names, reasons and warnings that
quote generated code, a suite file's values, machine facts) is text, never markup: see
:mod:`.mdtext` (no HTML tag, link, image, autolink, emphasis, math, mention or table
pipe can come from the data, and no backtick can close a code span).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_carbon.compare.baseline import Comparison, TestChange
from pytest_carbon.report import format as fmt
from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.mdtext import code as _code
from pytest_carbon.report.mdtext import text as _text
from pytest_carbon.report.totals import Totals, compute, per_call_energy_j


def _metric_text(value: Any, metric: str) -> str:
    return "-" if value is None else fmt.metric(value, metric)


def _change_text(change: Any) -> str:
    return "n/a" if change is None else fmt.change(change)


#: Rows in each table.
TOP_ROWS = 15

_STATUS_MARK = {
    "regression": "🔺 regression",
    "improvement": "🟢 improvement",
    "noise": "within noise",
    "new": "new",
    "missing": "missing",
    "unmeasured": "not measured",
}


def _methods_text(t: Totals) -> str:
    methods = t.methods
    if not methods:
        return "nothing measured"
    return ", ".join(f"{m} ({n})" for m, n in sorted(methods.items()))


def _intensity_text(acc: Mapping[str, Any] | None) -> str:
    if not acc:
        return "unknown"
    if fmt.num(acc.get("intensity_g_per_kwh")) is None:
        return _text(acc.get("intensity_source") or "unknown")
    place = ", ".join(_text(x) for x in (acc.get("region"), acc.get("country")) if x)
    text = f"{fmt.setting(acc['intensity_g_per_kwh'])} gCO2e/kWh"
    if place:
        text += f" ({place})"
    if acc.get("intensity_source"):
        text += f", from {_text(acc['intensity_source'])}"
    if acc.get("intensity_is_default"):
        text += " — default world average; set `--carbon-country` for your grid"
    pue = acc.get("pue")
    if fmt.num(pue) is not None:
        text += f"; PUE {fmt.setting(pue)}"
    return text


def _header(report: Mapping[str, Any]) -> list[str]:
    t = compute(report.get("tests") or [])
    machine = report.get("machine") or {}
    lines = ["## pytest-carbon: energy and carbon", ""]
    total = f"**{fmt.energy(t.energy_j)}**" if t.energy_j is not None else "**no energy**"
    total += f" · **{fmt.carbon(t.gco2e_g)}**" if t.gco2e_g is not None else ""
    count = f"{t.tests} test{'s' if t.tests != 1 else ''}" + (
        f" ({t.measured} measured)" if t.measured != t.tests else ""
    )
    if t.duration_s is not None:
        count += f" in {fmt.duration(t.duration_s)} measured time"
    if t.rounds:
        count += f" ({t.rounds} rounds)"
    lines.append(f"{total} · {count}")
    if not report.get("complete", True):
        why = report.get("incomplete_reason") or "the run was interrupted"
        lines += ["", f"> ⚠️ Incomplete run ({_text(why)}): these numbers cover part of the suite."]
    lines += ["", "| | |", "|---|---|"]
    lines.append(f"| Method | {_text(_methods_text(t))} |")
    if t.embodied_gco2e_g is not None:
        lines.append(
            f"| Embodied | {fmt.carbon(t.embodied_gco2e_g)} (manufacturing share; beside "
            "the operational figure, not in it) |"
        )
    if t.water_l is not None:
        lines.append(f"| Water | {fmt.water(t.water_l)} |")
    if t.phases:
        phases = "; ".join(
            f"{_code(name)} {fmt.energy(ph['energy_j'])}, {fmt.carbon(ph['gco2e_g'])}"
            for name, ph in t.phases.items()
        )
        lines.append(f"| Phases (carbon.measure) | {phases} |")
    sensors = [
        f"{s.get('name')} ({s.get('method')})"
        for s in machine.get("sensors") or []
        if s.get("available", True)
    ]
    if sensors:
        lines.append(f"| Sensors | {_text(', '.join(sensors))} |")
    lines.append(f"| Carbon intensity | {_intensity_text(report.get('accounting'))} |")
    machines = report.get("machines") or []
    if len(machines) > 1:
        lines.append(f"| Machines | {len(machines)} (merged report) |")
    elif machine:
        cpu = machine.get("cpu_model") or "?"
        lines.append(
            f"| Machine | {_text(cpu)}, {_text(machine.get('cpu_count', '?'))} CPUs"
            f" · {_code(machine.get('machine_id', '?'))} |"
        )
    git = (report.get("run") or {}).get("git") or {}
    if git.get("commit"):
        where = _code(str(git["commit"])[:10]) + (
            f" on {_text(git['branch'])}" if git.get("branch") else ""
        )
        lines.append(f"| Commit | {where}{' (dirty)' if git.get('dirty') else ''} |")
    return lines


def _changes_section(comparison: Comparison) -> list[str]:
    lines = ["", "### Changes against the baseline", ""]
    lines.append(f"Baseline: {_text(comparison.base_label)}")
    if comparison.specs:
        lines.append("Fail on: " + ", ".join(_code(s.text, table=False) for s in comparison.specs))
    counts = comparison.counts()
    lines.append("")
    lines.append("Tests: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if comparison.failures:
        lines += ["", f"**❌ {len(comparison.failures)} regression(s) beyond the threshold**"]
    elif comparison.specs:
        lines += ["", "**✅ No regression beyond the threshold**"]
    if comparison.totals:
        lines += ["", "| Total (common tests) | Baseline | Current | Change |", "|---|--:|--:|--:|"]
        for metric, (b, c) in comparison.totals.items():
            change = None if b == 0 else c / b - 1
            lines.append(
                f"| {metric} | {_metric_text(b, metric)} | {_metric_text(c, metric)} | "
                f"{_change_text(change)} |"
            )
    by_test = comparison.by_test()

    def rank(item: tuple[str, dict[str, TestChange]]) -> tuple[int, float]:
        per = item[1]
        e = per.get("energy") or next(iter(per.values()))
        failing = any(c.failing for c in per.values())
        size = abs(e.change) if e.change is not None else -1.0
        return (0 if failing else 1, -size)

    changed = [
        item
        for item in sorted(by_test.items(), key=rank)
        if any(c.change is not None for c in item[1].values())
    ]
    if changed:
        lines += [
            "",
            f"#### Largest changes (top {min(TOP_ROWS, len(changed))} of {len(changed)})",
            "",
        ]
        lines.append("| Test | Energy: baseline → current | Change | Duration | gCO2e | Verdict |")
        lines.append("|---|--:|--:|--:|--:|---|")
        for nodeid, per in changed[:TOP_ROWS]:
            e = per.get("energy")
            d, g = per.get("duration"), per.get("gco2e")
            energy = (
                f"{_metric_text(e.base, 'energy')} → {_metric_text(e.current, 'energy')}"
                if e
                else ""
            )
            lines.append(
                f"| {_code(nodeid)} | {energy} | {_change_text(e.change) if e else ''} | "
                f"{_change_text(d.change) if d else ''} | {_change_text(g.change) if g else ''} | "
                f"{_text(_verdict(per))} |"
            )
    others = [
        (nodeid, next(iter(per.values())).status)
        for nodeid, per in by_test.items()
        if all(c.status in ("new", "missing") for c in per.values())
    ]
    if others:
        shown = ", ".join(f"{_code(n, table=False)} ({_text(s)})" for n, s in others[:TOP_ROWS])
        more = f" and {len(others) - TOP_ROWS} more" if len(others) > TOP_ROWS else ""
        lines += ["", f"New or missing tests (not failures): {shown}{more}"]
    if comparison.warnings:
        lines.append("")
        lines += [f"> ⚠️ {_text(w)}" for w in comparison.warnings]
    lines += [
        "",
        "<sub>A regression fails only when it exceeds the threshold and the per-round samples "
        "support it (one-sided Mann-Whitney U, 3+ samples a side) or, with a single sample, "
        "when it also exceeds the test's stored noise or the 5% noise floor.</sub>",
    ]
    return lines


def _verdict(per: Mapping[str, TestChange]) -> str:
    failing = [c for c in per.values() if c.failing]
    if failing:
        return "❌ " + ", ".join(
            f"{c.metric} > {c.spec.threshold_text if c.spec else '?'} ({c.method})" for c in failing
        )
    notable = [c for c in per.values() if c.status in ("regression", "improvement")]
    if notable:
        return ", ".join(f"{c.metric} {_STATUS_MARK[c.status]}" for c in notable)
    e = per.get("energy") or next(iter(per.values()))
    return _STATUS_MARK.get(e.status, e.status) + (f" ({e.method})" if e.method else "")


def _top_tests_section(report: Mapping[str, Any]) -> list[str]:
    records = [r for r in report.get("tests") or [] if isinstance(r, dict)]
    measured = [r for r in records if fmt.num(r.get("energy_j")) is not None]
    if not measured:
        return ["", "_No test was measured._"]
    ranked = rowinfo.ranked(measured)
    per_call = any(per_call_energy_j(r) is not None for r in measured)
    ratio = any(rowinfo.reference_ratio(r) is not None for r in measured)
    t = compute(records)
    title = "energy per call" if per_call else "energy"
    lines = [
        "",
        f"### Top tests by {title} (top {min(TOP_ROWS, len(ranked))} of {len(ranked)})",
        "",
    ]
    energy_head = "Energy (window)" if per_call else "Energy"
    if t.rounds:
        energy_head += f" ({t.rounds} rounds)"
    heads = ["Test"]
    heads += ["Energy per call"] if per_call else []
    heads += ["vs reference"] if ratio else []
    heads += [energy_head, "Duration", "gCO2e", "Method"]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|---|" + "--:|" * (len(heads) - 2) + "---|")
    for r in ranked[:TOP_ROWS]:
        cells = [_code(r.get("nodeid"))]
        if per_call:
            cells.append(fmt.energy(per_call_energy_j(r)))
        if ratio:
            cells.append(_text(rowinfo.ratio_text(r, compact=True)))
        cells += [
            fmt.energy(r.get("energy_j")),
            fmt.duration(r.get("duration_s")),
            fmt.carbon(r.get("gco2e_g")),
            _text(r.get("method") or "-"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    unmeasured = len(records) - len(measured)
    if unmeasured:
        lines += ["", f"{unmeasured} test(s) measured nothing (e.g. incorrect generated code)."]
    return lines


def _models_section(report: Mapping[str, Any]) -> list[str]:
    """The per-model summary, as the terminal prints it (prompts.summary.model_summary)."""
    records = [r for r in report.get("tests") or [] if isinstance(r, dict) and r.get("prompt")]
    if not records:
        return []
    from pytest_carbon.prompts.summary import model_summary

    rows = model_summary(records)
    lines = [
        "",
        "### Models",
        "",
        "| Model | Frugality | pass@1 | gen. CO2e | CO2e per correct |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        low, high = r["frugality_low"], r["frugality_high"]
        ci = f" ({fmt.sig(low)}–{fmt.sig(high)})" if low is not None and high is not None else ""
        lines.append(
            f"| {_code(r['model'])} | {fmt.ratio(r['frugality'])}{ci} | "
            f"{r['pass_at_1']:.0%} ({r['correct']}/{r['items']}) | "
            f"{fmt.carbon(r['generation_gco2e_g'])} | {fmt.carbon(r['gco2e_per_correct_g'])} |"
        )
    lines += [
        "",
        "<sub>Frugality: the geometric mean over solved tasks of each task's energy ratio "
        "to the reference solution (95% interval over tasks).</sub>",
    ]
    from pytest_carbon.study.render import markdown_lines
    from pytest_carbon.study.stats import compute_study

    study = markdown_lines(compute_study(records))
    if study:
        lines += ["", "### Study", "", *study]
    return lines


def render_markdown(report: Mapping[str, Any], comparison: Comparison | None = None) -> str:
    """The run as Markdown: totals, method, intensity, then changes or the heaviest tests."""
    lines = _header(report)
    if comparison is not None:
        lines += _changes_section(comparison)
    else:
        lines += _top_tests_section(report)
    lines += _models_section(report)
    from pytest_carbon.report.caveat_text import merged
    from pytest_carbon.results.caveats import kind_lines, kinds_of_report, trust_note

    run_warnings, kinds = merged(list(report.get("warnings") or [])[:50], kinds_of_report(report))
    warnings = run_warnings + kind_lines(kinds, examples=3)
    if warnings:
        lines += ["", "<details><summary>Warnings</summary>", ""]
        lines += [f"- {_text(w)}" for w in warnings]
        lines += ["", "</details>"]
    trust = trust_note(t.get("method") or "" for t in report.get("tests") or [])
    if trust:
        lines += ["", f"_{_text(trust)}_"]
    return "\n".join(lines) + "\n"
