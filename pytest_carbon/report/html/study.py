"""The study on the HTML page: headline sentences and the leaderboard (the first screen), a
chart of frugality against pass@1 per cell, and a task x cell heat map of log ratios.

The charts are inline SVG written here (no matplotlib): every mark carries a ``<title>``
(the browser's hover text) naming its task, cell and ratio, and the log axes have plain
tick labels (0.5×, 1×, 2×, 10×), never powers of ten. The numbers are those of
:mod:`pytest_carbon.study.stats`, the terminal's and the Markdown's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.compare.graded import METHOD as GRADED_METHOD
from pytest_carbon.report import format as fmt
from pytest_carbon.report.html.common import PALETTE, _cell, _esc, _th, _unit_text
from pytest_carbon.study.render import percentile_lines, row_cells
from pytest_carbon.study.stats import (
    INTERVAL_METHOD,
    PERCENTILE_METHOD,
    TEST_METHOD,
    Cell,
    Study,
    compute_study,
)

#: Candidate ticks of a log ratio axis.
_TICKS: tuple[float, ...] = (
    *(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    *(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000),
)
#: Headline sentences shown before the leaderboard (the rest follow the charts).
HEADLINES = 4
CHEAPER = (0x1D, 0x5F, 0xA8)  # blue: cheaper than the reference
COSTLIER = (0xB4, 0x23, 0x18)  # red: costlier
#: The heat map's colours saturate at 100x either way.
SATURATE_LOG10 = 2.0


def tick_label(value: float) -> str:
    """``0.5×``, ``1×``, ``10×``, ``1,000×``: plain, never a power of ten."""
    if value >= 1:
        return f"{int(round(value)):,}×"
    return f"{value:.6f}".rstrip("0").rstrip(".") + "×"


def log_ticks(low: float, high: float, most: int = 9) -> list[float]:
    """Ticks of a log axis from ``low`` to ``high``: 1-2-5 steps, or powers of ten when
    those are too many (1× always among them when in range)."""
    ticks = [t for t in _TICKS if low <= t <= high]
    if len(ticks) > most:
        ticks = [t for t in ticks if math.log10(t).is_integer()]
    return ticks


def _label(cell: Cell, study: Study) -> str:
    return cell.label(study.several_strategies)


def headline(study: Study) -> list[str]:
    """Sentences for the top of the page: the most frugal cell, then the clear
    head-to-head results (the unclear ones when none is clear)."""
    out = []
    ranked = [c for c in study.cells if c.frugality is not None and not c.is_reference]
    if ranked:
        best = ranked[0]
        f = best.frugality
        assert f is not None
        ci = f" (95% CI {fmt.sig(f.low)}–{fmt.sig(f.high)})" if f.low and f.high else ""
        p1 = f"{best.pass_at_1:.0%}" if best.pass_at_1 is not None else "—"
        # "Most frugal" of the candidates, said as such: with one candidate, or when every
        # candidate costs more than the reference, the word would mislead.
        if len(ranked) == 1:
            lead = f"{_label(best, study)} costs"
        else:
            lead = f"Most frugal of the {len(ranked)} compared: {_label(best, study)}, at"
        out.append(
            f"{lead} {fmt.ratio(f.value)}{ci} the reference's "
            f"energy over the {f.n} task{'s' if f.n != 1 else ''} it solved (pass@1 {p1})."
        )
    clear = [p for p in study.pairs if p.clear]
    chosen = clear or [p for p in study.pairs if p.excludes_one] or list(study.pairs)
    for p in chosen[: HEADLINES - len(out)]:
        # Capitalised only where it starts with a word of ours, never a model's name.
        text = "W" + p.sentence[1:] if p.sentence.startswith("with ") else p.sentence
        out.append(text + ".")
    return out


def leaderboard_table(study: Study) -> str:
    several = study.several_strategies
    body = []
    for i, c in enumerate(study.cells, 1):
        texts = row_cells(c, several)
        f = c.frugality
        body.append(
            "<tr>"
            + _cell(i)
            + f'<th scope="row" data-v="{_esc(texts[0])}">{_esc(texts[0])}</th>'
            + f'<td class="num" data-v="{"" if f is None else repr(f.value)}">'
            f"{_esc(texts[1])}</td>"
            + "".join(f'<td class="num" data-v="{_esc(t)}">{_esc(t)}</td>' for t in texts[2:4])
            + _cell(None if c.pass_at_1 is None else c.pass_at_1 * 100, title="pass@1 (%)")
            + "".join(
                f'<td class="num" data-v="{_esc(t)}">{_esc(_unit_text(t))}</td>' for t in texts[5:]
            )
            + "</tr>"
        )
    heads = [
        _th("#", "num"),
        _th("model · strategy" if several else "model"),
        _th("frugality", "num", "geometric mean of per-task energy ratios to the reference"),
        _th("95% CI", "text", INTERVAL_METHOD),
        _th("tasks", "text", "with a ratio / solved / attempted"),
        _th("pass@1 (%)", "num", "share of correct samples, averaged over tasks"),
        _th("pass@k", "text", "unbiased pass@k (Chen et al. 2021), several samples"),
        _th(">1/≈/<1", "text", "solved tasks costlier / indistinguishable / cheaper"),
        _th("gen/correct", "text", "generation gCO2e of all samples per correct solution"),
    ]
    return (
        '<div class="tablewrap"><table class="sortable" id="leaderboard">'
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


# -- charts (inline SVG) ----------------------------------------------------------------------


def _svg_open(chart_id: str, width: int, height: int, label: str) -> str:
    """An SVG that scales to the page up to its drawn size, labelled for screen readers."""
    return (
        f'<svg id="{chart_id}" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {width} {height}" style="max-width:{width}px" '
        'xmlns="http://www.w3.org/2000/svg" '
        'font-family="system-ui,DejaVu Sans,Arial,sans-serif" font-size="12">'
        f'<title id="{chart_id}-title">{_esc(label)}</title>'
    )


def frugality_chart(study: Study) -> str | None:
    """Frugality (log x, interval bars) against pass@1 (y), one point per cell."""
    cells = [c for c in study.cells if c.frugality is not None and c.pass_at_1 is not None]
    if len(cells) < 2:
        return None
    values = [1.0]
    for c in cells:
        f = c.frugality
        assert f is not None
        values += [v for v in (f.value, f.low, f.high) if v is not None and v > 0]
    lo, hi = math.log10(min(values)), math.log10(max(values))
    pad = max((hi - lo) * 0.08, 0.1)
    lo, hi = lo - pad, hi + pad
    key_w = min(max(len(_label(c, study)) for c in cells) * 7 + 70, 320)
    w, h, left, right, top, bottom = 520 + key_w, 400, 60, key_w, 46, 50
    h = max(h, top + bottom + 16 * len(cells) + 10)
    pw, ph = w - left - right, h - top - bottom

    def x(v: float) -> float:
        return left + (math.log10(v) - lo) / (hi - lo) * pw

    def y(p: float) -> float:
        return top + (1.0 - p) * ph

    out = [_svg_open("chart-frugality", w, h, "Frugality against pass@1, one point per cell")]
    grid, muted, text = PALETTE["border"], PALETTE["muted"], PALETTE["text"]
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(p):.1f}" y2="{y(p):.1f}" '
            f'stroke="{grid}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(p) + 4:.1f}" text-anchor="end" fill="{muted}">'
            f"{p:.0%}</text>"
        )
    for t in log_ticks(10**lo, 10**hi):
        out.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + ph}" stroke="{grid}" '
            f'stroke-width="1"/>'
            f'<text class="tick" x="{x(t):.1f}" y="{top + ph + 16}" text-anchor="middle" '
            f'fill="{muted}">{tick_label(t)}</text>'
        )
    # The reference (1×), always drawn: the caption names it.
    out.append(
        f'<line class="ref-line" x1="{x(1.0):.1f}" x2="{x(1.0):.1f}" y1="{top}" '
        f'y2="{top + ph}" stroke="{muted}" stroke-width="1.5" stroke-dasharray="5 3"/>'
        f'<text x="{x(1.0) + 4:.1f}" y="{top + ph - 6}" fill="{muted}">reference 1×</text>'
    )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{h - 8}" text-anchor="middle" fill="{text}">'
        "energy ratio to the reference (log scale; left is more frugal)</text>"
        f'<text x="14" y="{top + ph / 2:.1f}" text-anchor="middle" fill="{text}" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})">pass@1</text>'
    )
    rank = {id(c): i for i, c in enumerate(study.cells, 1)}
    # Points at one pass@1 get their rank numbers staggered, so none covers another.
    seen: dict[float, int] = {}
    for c in cells:
        f = c.frugality
        assert f is not None and c.pass_at_1 is not None
        cy = y(c.pass_at_1)
        k = seen.get(c.pass_at_1, 0)
        seen[c.pass_at_1] = k + 1
        dy = -(9 + 12 * (k % 3)) if k % 2 == 0 else 18 + 12 * (k % 3)
        ci = f", 95% CI {fmt.sig(f.low)}–{fmt.sig(f.high)}" if f.low and f.high else ""
        tip = (
            f"{_label(c, study)}: {fmt.ratio(f.value)}{ci} over {f.n} task(s); "
            f"pass@1 {c.pass_at_1:.0%}"
        )
        out.append(f'<g class="cell"><title>{_esc(tip)}</title>')
        if f.low and f.high:
            out.append(
                f'<line x1="{x(f.low):.1f}" x2="{x(f.high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
                f'stroke="{text}" stroke-width="2"/>'
                f'<line x1="{x(f.low):.1f}" x2="{x(f.low):.1f}" y1="{cy - 5:.1f}" '
                f'y2="{cy + 5:.1f}" stroke="{text}" stroke-width="2"/>'
                f'<line x1="{x(f.high):.1f}" x2="{x(f.high):.1f}" y1="{cy - 5:.1f}" '
                f'y2="{cy + 5:.1f}" stroke="{text}" stroke-width="2"/>'
            )
        fill = PALETTE["attributed_text"] if not c.is_reference else muted
        out.append(
            f'<circle cx="{x(f.value):.1f}" cy="{cy:.1f}" r="6" fill="{fill}" '
            f'stroke="{PALETTE["bg"]}" stroke-width="1.5"/>'
            f'<text x="{x(f.value):.1f}" y="{cy + dy:.1f}" text-anchor="middle" '
            f'font-weight="600" fill="{text}">{rank[id(c)]}</text></g>'
        )
    # The key: rank, cell and frugality, in the right margin.
    for i, c in enumerate(cells):
        f = c.frugality
        assert f is not None
        out.append(
            f'<text x="{left + pw + 14}" y="{top + 12 + i * 16}" fill="{text}">'
            f'<tspan font-weight="600">{rank[id(c)]}</tspan> '
            f"{_esc(_label(c, study))} {_esc(fmt.ratio(f.value))}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _heat_color(ratio: float) -> str:
    t = max(-1.0, min(1.0, math.log10(ratio) / SATURATE_LOG10))
    end = COSTLIER if t > 0 else CHEAPER
    a = abs(t)
    r, g, b = (round(255 + (e - 255) * a) for e in end)
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(study: Study) -> str | None:
    """Tasks (rows) x cells (columns), coloured by the log of each task's ratio."""
    cells = [c for c in study.cells if c.task_ratios()]
    tasks = sorted({t for c in study.cells for t in c.tasks})
    if not cells or not tasks:
        return None
    names = [study.task_names.get(t, t) for t in tasks]
    label_w = min(max(len(n) for n in names) * 7 + 12, 240)
    cw, rh, head = 64, 16, 120
    w = max(label_w + cw * len(cells) + 170, 640)
    h = head + rh * len(tasks) + 20
    out = [_svg_open("chart-heatmap", w, h, "Energy ratio to the reference, per task and cell")]
    text, muted = PALETTE["text"], PALETTE["muted"]
    for j, c in enumerate(cells):
        cx = label_w + j * cw + cw / 2
        out.append(
            f'<text x="{cx:.1f}" y="{head - 6}" fill="{text}" '
            f'transform="rotate(-40 {cx:.1f} {head - 6})">{_esc(_label(c, study))}</text>'
        )
    for i, (task, name) in enumerate(zip(tasks, names, strict=True)):
        ty = head + i * rh
        out.append(
            f'<text x="{label_w - 6}" y="{ty + rh - 4}" text-anchor="end" fill="{text}">'
            f"{_esc(name)}</text>"
        )
        for j, c in enumerate(cells):
            tc = c.tasks.get(task)
            r = tc.ratio if tc is not None else None
            x0 = label_w + j * cw
            if r is None:
                why = "not attempted" if tc is None else "not solved"
                tip, fill = f"{name} · {_label(c, study)}: {why}", PALETTE["card"]
            else:
                verdict = tc.verdict if tc is not None else None
                tip = f"{name} · {_label(c, study)}: {fmt.ratio(r)}" + (
                    f" ({verdict})" if verdict else ""
                )
                fill = _heat_color(r)
            out.append(
                f'<rect x="{x0 + 1}" y="{ty + 1}" width="{cw - 2}" height="{rh - 2}" '
                f'fill="{fill}" stroke="{PALETTE["border"]}" stroke-width="0.5">'
                f"<title>{_esc(tip)}</title></rect>"
            )
    # The legend: a colour ramp with plain ticks.
    lx, ly, lh = label_w + cw * len(cells) + 30, head, 160
    steps = 20
    for k in range(steps):
        frac = k / (steps - 1)
        v = 10 ** (SATURATE_LOG10 - 2 * SATURATE_LOG10 * frac)
        out.append(
            f'<rect x="{lx}" y="{ly + k * lh / steps:.1f}" width="14" '
            f'height="{lh / steps + 0.5:.1f}" '
            f'fill="{_heat_color(v)}"/>'
        )
    for t in (100, 10, 1, 0.1, 0.01):
        frac = (SATURATE_LOG10 - math.log10(t)) / (2 * SATURATE_LOG10)
        out.append(
            f'<text class="tick" x="{lx + 20}" y="{ly + frac * lh + 4:.1f}" fill="{muted}">'
            f"{tick_label(t)}</text>"
        )
    out.append(f'<text x="{lx}" y="{ly + lh + 20}" fill="{muted}">grey: not solved</text></svg>')
    return "".join(out)


def study_of(records: Sequence[Mapping[str, Any]]) -> Study:
    return compute_study(records)


def study_section(records: Sequence[Mapping[str, Any]]) -> str:
    """The "Study" section: headline sentences and the leaderboard, then the charts and
    every head-to-head sentence. Empty without prompt records."""
    study = compute_study(records)
    if not study.cells:
        return ""
    out = ['<section aria-labelledby="h-study" id="study"><h2 id="h-study">Study</h2>']
    lines = headline(study)
    if lines:
        out.append(
            '<ul class="headline">' + "".join(f"<li>{_esc(s)}</li>" for s in lines) + "</ul>"
        )
    out.append(leaderboard_table(study))
    out.append(
        f'<p class="note">Frugality: {_esc(INTERVAL_METHOD)}; 1× is the reference solution, '
        "below 1× is cheaper. Each task's ratio was measured interleaved with the reference "
        "on one machine.</p>"
    )
    graded = percentile_lines(study)
    if graded:  # tasks with graded references: the median energy percentile per cell
        out.append(f'<h3 id="h-percentile">{_esc(graded[0])}</h3><ul class="percentile">')
        out += [f"<li>{_esc(line.strip())}</li>" for line in graded[1:]]
        out.append(
            f'</ul><p class="note">Per answer: {_esc(GRADED_METHOD)}. Per cell: '
            f"{_esc(PERCENTILE_METHOD)}.</p>"
        )
    for w in study.warnings:
        out.append(f'<p class="warn">{_esc(w)}</p>')
    chart = frugality_chart(study)
    if chart:
        out.append(
            f"<figure>{chart}<figcaption>Each point is a (model, strategy) cell: its "
            "frugality with the 95% interval over tasks (bars), against its pass@1; the "
            "dashed line is the reference solution (1×), left of it is more frugal. Hover a "
            "point for its numbers.</figcaption></figure>"
        )
    heat = heat_map(study)
    if heat:
        out.append(
            f'<figure class="heat">{heat}<figcaption>Each square is one task in one cell: '
            "blue is cheaper than the reference, red costlier (log scale, saturating at "
            "100×); hover a square for the task and its ratio.</figcaption></figure>"
        )
    if study.pairs:
        out.append(f'<h3>Head-to-head</h3><p class="note">{_esc(TEST_METHOD)}.</p><ul>')
        out += [f"<li>{_esc(p.sentence)}</li>" for p in study.pairs]
        out.append("</ul>")
    out.append("</section>")
    return "\n".join(out)


#: CSS the section needs (added to the page's style sheet).
CSS = (
    "ul.headline{font-size:1.05rem;margin:.4rem 0 .8rem;padding-left:1.2rem}"
    "ul.headline li{margin:.15rem 0}"
    "#leaderboard th[scope=row]{min-width:9rem;word-break:normal}"
)


def models_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per-model carbon and pass rates (model_summary's rows): frugality as a geometric
    mean of ratios, never a median of different tasks' absolute energies."""
    if not rows:
        return ""
    body = []
    for r in rows:
        pr = r.get("pass_at_1")
        low, high = r.get("frugality_low"), r.get("frugality_high")
        ci = f"{fmt.sig(low)}–{fmt.sig(high)}" if low is not None and high is not None else None
        body.append(
            "<tr>"
            f'<th scope="row" data-v="{_esc(r.get("model"))}">{_esc(r.get("model"))}</th>'
            + _cell(r.get("frugality"), title="geometric mean over solved tasks", unit="×")
            + _cell(ci, "text")
            + _cell(r.get("items"))
            + _cell(r.get("correct"))
            + _cell(pr * 100 if isinstance(pr, (int, float)) else None)
            + _cell(r.get("execution_gco2e_g"), unit="gCO2e")
            + _cell(r.get("execution_method"), "method")
            + _cell(r.get("generation_gco2e_g"), unit="gCO2e")
            + _cell(r.get("generation_method"), "method")
            + _cell(r.get("gco2e_per_correct_g"), unit="gCO2e")
            + "</tr>"
        )
    heads = [
        _th("model"),
        _th("frugality", "num", "geometric mean of per-task energy ratios to the reference"),
        _th("95% CI", "text", INTERVAL_METHOD),
        _th("items", "num"),
        _th("correct", "num"),
        _th("pass@1 (%)", "num", "share of correct samples, averaged over tasks"),
        _th("execution", "num", "gCO2e of one call per answer, summed"),
        _th("execution method"),
        _th("generation", "num", "gCO2e of the LLM calls"),
        _th("generation method"),
        _th("gCO2e per correct", "num", "(execution + generation) / correct answers"),
    ]
    return (
        '<div class="tablewrap"><table class="sortable" id="models">'
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
