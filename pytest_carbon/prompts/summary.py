"""The per-model summary of a prompt-suite run: pass rates, frugality and carbon.

Pure Python over records (no pandas). Records with null energies are skipped in sums
(nothing was measured, and zero would be a false number) but counted in pass rates.

A model's energy is only ever read as ratios to the reference, task by task: its
**frugality** is the geometric mean over the tasks it solved of each task's ratio (all
strategies pooled; :mod:`pytest_carbon.study.stats` has the per-strategy cells and the
interval). A median of different tasks' absolute energies would compare the tasks, not
the code, so there is none.

pass@k uses the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
Trained on Code", eq. 1): per task with n samples of which c are correct,
``pass@k = 1 - C(n - c, k) / C(n, k)``, averaged over tasks.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from pytest_carbon.report import format as numfmt

WIDTH = 100


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task (n samples, c correct), k <= n (the study's, computed
    as a product: no huge binomials)."""
    from pytest_carbon.study.stats import pass_at_k as stable

    return stable(n, c, k)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _frugality(recs: list[dict[str, Any]]) -> Any:
    """The model's frugality Interval over the tasks it solved, strategies pooled."""
    from pytest_carbon.study.stats import DEFAULT_STRATEGY, compute_study

    pooled = [{**r, "prompt": {**r["prompt"], "strategy": DEFAULT_STRATEGY}} for r in recs]
    cells = compute_study(pooled).cells
    return cells[0].frugality if cells else None


def _paired(data: Any) -> Any:
    """The PairedRatio of a record's ``reference_comparison``, or None."""
    from pytest_carbon.compare.paired import PairedRatio

    return PairedRatio.parse(data)


def _per_call_gco2e_g(rec: dict[str, Any]) -> float | None:
    """Operational gCO2e of one call of the workload."""
    g = _num(rec.get("gco2e_g"))
    calls = (rec.get("per_call") or {}).get("calls")
    if g is None:
        return None
    return g / calls if isinstance(calls, int) and calls > 0 else g


def model_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model, in order of first appearance.

    Row keys: ``model``, ``items``, ``correct``, ``pass_at_1``, ``pass_at_k`` ({k: value}
    with k = the smallest sample count over the model's tasks, when > 1, else {}),
    ``frugality``, ``frugality_low``, ``frugality_high`` and ``frugality_tasks`` (the
    geometric mean over solved tasks of each task's energy ratio to the reference, its 95%
    t interval over tasks, None with one task, and the tasks counted),
    ``generation_gco2e_g`` (None when no generation footprint is known),
    ``execution_gco2e_g`` (one workload call per answer, summed),
    ``gco2e_per_correct_g`` ((execution + generation) / correct),
    ``methods`` (sorted methods seen, execution and generation),
    ``compared`` (items measured interleaved with the reference), ``indistinguishable``
    (of those, items whose ratio's 95% interval contains 1.0), ``comparisons`` (per item:
    ``(task, sample, PairedRatio.describe())``, in record order), ``percentiles`` (per
    item of a task with graded references: ``(task, sample, graded.describe())``).
    """
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    for rec in records:
        prompt = rec.get("prompt")
        if isinstance(prompt, dict) and prompt.get("model") is not None:
            # A skipped item was never judged: it is no failure, and no pass either.
            # xfailed/xpassed/error items were judged: prompt.correct says how.
            if rec.get("outcome") == "skipped":
                skipped[prompt["model"]] += 1
                continue
            by_model[prompt["model"]].append(rec)
    rows = []
    for model, recs in by_model.items():
        per_task: dict[str, list[bool]] = defaultdict(list)
        gen_g: list[float] = []
        exec_g: list[float] = []
        methods: set[str] = set()
        comparisons: list[tuple[str, int, str]] = []
        percentiles: list[tuple[str, int, str]] = []
        compiles: list[tuple[str, int, str]] = []
        indistinguishable = 0
        for rec in recs:
            prompt = rec["prompt"]
            ok = prompt.get("correct") is True
            per_task[str(prompt.get("task"))].append(ok)
            if rec.get("method"):
                methods.add(str(rec["method"]))
            pr = _paired(prompt.get("reference_comparison"))
            if pr is not None:
                indistinguishable += pr.contains_one
                strategy = str(prompt.get("strategy") or "plain")
                task = str(prompt.get("task"))
                # The strategy is named where it is not the default one.
                comparisons.append(
                    (
                        task if strategy == "plain" else f"{task}·{strategy}",
                        int(prompt.get("sample") or 0),
                        pr.describe(),
                    )
                )
            pct = prompt.get("energy_percentile")
            if isinstance(pct, dict) and pct.get("value") is not None:
                from pytest_carbon.compare.graded import describe

                percentiles.append(
                    (str(prompt.get("task")), int(prompt.get("sample") or 0), describe(pct))
                )
            built = _compile_text(prompt.get("program"))
            if built:
                compiles.append((str(prompt.get("task")), int(prompt.get("sample") or 0), built))
            gen = prompt.get("generation") or {}
            g = _num(gen.get("gco2e_g"))
            if g is not None:
                gen_g.append(g)
            if gen.get("method"):
                methods.add(f"generation:{gen['method']}")
            e = _per_call_gco2e_g(rec)
            if e is not None:
                exec_g.append(e)
        correct = sum(sum(v) for v in per_task.values())
        pass1 = statistics.fmean(sum(v) / len(v) for v in per_task.values())
        k = min(len(v) for v in per_task.values())
        pass_k = {}
        if k > 1:
            pass_k[k] = statistics.fmean(pass_at_k(len(v), sum(v), k) for v in per_task.values())
        frugality = _frugality(recs)
        generation = sum(gen_g) if gen_g else None
        execution = sum(exec_g)
        per_correct = (
            (execution + (generation or 0.0)) / correct if correct and (exec_g or gen_g) else None
        )
        rows.append(
            {
                "model": model,
                "items": len(recs),
                "tasks": len(per_task),
                "correct": correct,
                "pass_at_1": pass1,
                "pass_at_k": pass_k,
                "frugality": None if frugality is None else frugality.value,
                "frugality_low": None if frugality is None else frugality.low,
                "frugality_high": None if frugality is None else frugality.high,
                "frugality_tasks": 0 if frugality is None else frugality.n,
                "generation_gco2e_g": generation,
                "execution_gco2e_g": execution if exec_g else None,
                "gco2e_per_correct_g": per_correct,
                "methods": sorted(methods),
                "skipped": skipped.get(model, 0),
                "compared": len(comparisons),
                "indistinguishable": indistinguishable,
                "comparisons": comparisons,
                "percentiles": percentiles,
                "compiles": compiles,
            }
        )
    return rows


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return numfmt.carbon(value) if unit == "g" else numfmt.si(value, unit)


def render_model_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Terminal lines (each at most 100 columns)."""
    if not rows:
        return []
    header = (
        "model",
        "items",
        "pass@1",
        "pass@k",
        "frugality",
        "95% CI",
        "~ref",
        "gen CO2e",
        "CO2e/correct",
    )
    table = []
    for r in rows:
        pk = ", ".join(f"@{k} {v:.0%}" for k, v in r["pass_at_k"].items()) or "-"
        ratio, low, high = r["frugality"], r["frugality_low"], r["frugality_high"]
        table.append(
            (
                r["model"],
                f"{r['correct']}/{r['items']}",
                f"{r['pass_at_1']:.0%}",
                pk,
                "-" if ratio is None else numfmt.ratio(ratio),
                "-" if low is None or high is None else f"{numfmt.sig(low)}–{numfmt.sig(high)}",
                f"{r['indistinguishable']}/{r['compared']}" if r.get("compared") else "-",
                _si(r["generation_gco2e_g"], "g"),
                _si(r["gco2e_per_correct_g"], "g"),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    fixed = sum(widths[1:]) + 2 * (len(header) - 1)
    widths[0] = min(widths[0], max(WIDTH - fixed, 8))

    def fmt(cells: tuple[str, ...]) -> str:
        first = cells[0] if len(cells[0]) <= widths[0] else cells[0][: widths[0] - 1] + "…"
        parts = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()[:WIDTH]

    lines = [fmt(header)] + [fmt(row) for row in table]
    skips = [f"{r['model']} {r['skipped']}" for r in rows if r.get("skipped")]
    if skips:
        lines.append(("skipped, not in pass rates: " + ", ".join(skips))[:WIDTH])
    methods = sorted({m for r in rows for m in r["methods"]})
    if methods:
        lines.append(("methods: " + ", ".join(methods))[:WIDTH])
    if any(r.get("frugality") is not None for r in rows):
        lines.append("frugality: geometric mean over solved tasks of each task's energy ratio")
        lines.append("  to the reference, 95% t interval over tasks; ~ref: items whose own 95%")
        lines.append("  interval contains 1.0")
    lines += _comparison_lines(rows)
    lines += _percentile_lines(rows)
    lines += _compile_lines(rows)
    return lines


def _compile_text(program: Any) -> str:
    """``candidate 253 mJ in 0.3 s, reference 270 mJ in 0.29 s (estimated)`` from a program
    item's ``prompt.program.compile``; empty where nothing was compiled (Python, JS)."""
    builds = program.get("compile") if isinstance(program, dict) else None
    if not isinstance(builds, dict):
        return ""
    parts: list[str] = []
    methods: set[str] = set()
    for side in ("candidate", "reference"):
        b = builds.get(side)
        if not isinstance(b, dict) or _num(b.get("energy_j")) is None:
            continue
        duration = _num(b.get("duration_s"))
        text = f"{side} {numfmt.si(float(b['energy_j']), 'J')}"
        if duration is not None:
            text += f" in {numfmt.duration(duration)}"
        parts.append(text + ("" if b.get("ok", True) else " (failed)"))
        method = b.get("method")
        if isinstance(method, dict):
            methods.update(str(v) for v in method.values())
    if not parts:
        return ""
    if len(parts) == 1 and parts[0].startswith("candidate "):  # the item's own code only
        parts[0] = parts[0][len("candidate ") :]
    return ", ".join(parts) + (f" ({', '.join(sorted(methods))})" if methods else "")


def _compile_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per compiled program item: its compile, measured apart from the runs."""
    items = [(r["model"], *c) for r in rows for c in r.get("compiles", ())]
    if not items:
        return []
    return _item_lines(
        ["compile, measured in its own window and never in a ratio, per item:"], items
    )


def _percentile_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per item placed on graded references: its energy percentile."""
    items = [(r["model"], *c) for r in rows for c in r.get("percentiles", ())]
    if not items:
        return []

    return _item_lines(
        [
            "energy percentile on the task's graded references, per item (0-100, higher:",
            "  more frugal; EvalPerf's score applied to paired energy ratios):",
        ],
        items,
    )


def _item_lines(title: list[str], items: list[tuple[str, str, int, str]]) -> list[str]:
    """``title``, then ``  task[model#sample]: text`` per item (at most
    :data:`MAX_COMPARISON_LINES`, the rest counted)."""
    from pytest_carbon.report.rows import shorten

    out = list(title)
    for model, task, sample, text in items[:MAX_COMPARISON_LINES]:
        name = f"{task}[{model}#{sample}]"
        out.append(f"  {shorten(name, max(WIDTH - len(text) - 4, 24))}: {text}")
    if len(items) > MAX_COMPARISON_LINES:
        out.append(f"  ... {len(items) - MAX_COMPARISON_LINES} more in the JSON report")
    return out


#: Per-item comparison lines shown at most (the JSON report has them all).
MAX_COMPARISON_LINES = 20


def _comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per compared item: its ratio, 95% interval, pairs and verdict in words."""
    items = [(r["model"], *c) for r in rows for c in r.get("comparisons", ())]
    if not items:
        return []
    out = ["ratio to the reference, per item (energy per call, interleaved pairs):"]
    from pytest_carbon.report.rows import shorten

    for model, task, sample, text in items[:MAX_COMPARISON_LINES]:
        name = f"{task}[{model}#{sample}]"
        room = max(WIDTH - len(text) - 4, 24)
        # Shortened in the middle (task and model survive); the verdict is never cut.
        out.append(f"  {shorten(name, room)}: {text}")
    if len(items) > MAX_COMPARISON_LINES:
        out.append(f"  ... {len(items) - MAX_COMPARISON_LINES} more in the JSON report")
    return out


#: The command that compares a deliberately wasteful variant with the reference.
NEXT_VARIANTS = "pytest prompts/ --carbon --carbon-model=variant:naive --carbon-model=reference"
#: The command that asks a model for code (docs/llm-endpoints.md says more).
NEXT_LLM = "pytest prompts/ --carbon --carbon-model=NAME --carbon-base-url=URL"


def closing_line(records: list[dict[str, Any]], paths: list[str] | None = None) -> str | None:
    """The run's last line for a prompt suite: what was measured, in one sentence, and the
    next command to try. None without prompt items. ``paths``: the suites named on the
    command line, put in the suggested command (``prompts/`` when none)."""
    from pytest_carbon.prompts.llm import REFERENCE, is_builtin

    prompts = [r["prompt"] for r in records if isinstance(r.get("prompt"), dict)]
    if not prompts:
        return None
    models = list(dict.fromkeys(str(p.get("model")) for p in prompts))
    tasks = len({str(p.get("task")) for p in prompts})
    where = " ".join(paths) if paths else "prompts/"
    variants = [m for m in models if m != REFERENCE and is_builtin(m)]
    llms = [m for m in models if not is_builtin(m)]
    things: list[str] = []
    if REFERENCE in models:
        things.append("the reference solutions")
    if variants:
        names = ", ".join(m.split(":", 1)[1] for m in variants)
        things.append(f"the shipped {names} variant{'s' if len(variants) > 1 else ''}")
    n_tasks = f"{tasks} task{'s' if tasks != 1 else ''}"
    if not llms:
        what = (
            f"measured {' and '.join(things)} of {n_tasks}, run offline in the sandbox: "
            "no LLM was asked for code"
        )
        if variants:
            nxt = NEXT_LLM.replace("prompts/", where, 1) + " (an LLM's code; docs/llm-endpoints.md)"
        else:
            nxt = NEXT_VARIANTS.replace("prompts/", where, 1)
            nxt += " (a wasteful variant against the reference)"
    else:
        what = f"measured the code {', '.join(llms)} wrote for {n_tasks}"
        if things:
            what += f", beside {' and '.join(things)}"
        nxt = "pytest-carbon study REPORT.json (the study of a saved --carbon-json report)"
    return f"pytest-carbon {what}. Next: {nxt}"
