"""Render a JSON report as one self-contained HTML page: header card, inline-SVG charts, tables.

The page makes no network request: CSS and the table-sorting script are inline, charts are
inline SVG drawn by matplotlib (the ``[html]`` extra, imported only here, inside the render
call), text uses the reader's system fonts, and a Content-Security-Policy forbids any fetch.
Every string that comes from the report (node ids, model names, sources) is escaped.

Every number is shown with the method that produced it: ``measured``, ``estimated`` or
``attributed``. In the per-test chart the method is the bar's hatching (none, crosses,
diagonal lines) *and* a text label at the end of the bar. Null energies (items that
measured nothing) are skipped in sums and charts and shown as "—" ("not measured").
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.carbon.accounting import J_PER_KWH
from pytest_carbon.results.atomic import write_text_atomic

#: Records shown in the per-test energy chart (the table shows all of them).
TOP_N = 20
#: Records whose power trace is drawn (those with the most energy).
TRACE_MAX = 4

#: Colours of the page. Text pairs below are checked for WCAG AA contrast (>= 4.5:1) by
#: the tests; change them together.
PALETTE: dict[str, str] = {
    "text": "#1b1f24",
    "muted": "#4b5563",
    "bg": "#ffffff",
    "card": "#f6f8fa",
    "border": "#d0d7de",
    "head": "#eef1f4",
    "warn_bg": "#fff8e1",
    "warn_text": "#3d2a00",
    "measured_bg": "#dff5e3",
    "measured_text": "#0b4a1c",
    "attributed_bg": "#e3ecff",
    "attributed_text": "#1d3b8a",
    "estimated_bg": "#fff1d6",
    "estimated_text": "#5c3c00",
    "bad_text": "#9a1c1c",
    "good_text": "#0b4a1c",
}
#: (foreground, background) pairs used for text on the page.
TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("text", "bg"),
    ("muted", "bg"),
    ("text", "card"),
    ("muted", "card"),
    ("text", "head"),
    ("warn_text", "warn_bg"),
    ("measured_text", "measured_bg"),
    ("attributed_text", "attributed_bg"),
    ("estimated_text", "estimated_bg"),
    ("bad_text", "bg"),
    ("good_text", "bg"),
)

#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
COMPONENT_COLORS: dict[str, str] = {
    "cpu": "#0072B2",
    "dram": "#E69F00",
    "gpu": "#009E73",
    "total": "#999999",
}
_EXTRA_COLORS = ("#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
#: Hatching per method: measured is solid, the two indirect methods are patterned.
# (Line hatches only: matplotlib draws dot hatches as thousands of curves, 150 kB each.)
METHOD_HATCH: dict[str, str] = {"measured": "", "attributed": "///", "estimated": "xx"}
_COMPONENT_ORDER = ("cpu", "dram", "gpu")

NOT_MEASURED = "—"
_NOT_MEASURED_TITLE = "not measured"


# ----------------------------------------------------------------------------- numbers


def _num(value: Any) -> float | None:
    """A finite float, or None for null, NaN, booleans and anything non-numeric."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _sig(x: float, digits: int = 3) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits + 3) or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:,.{max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))}f}"


def fmt_energy(energy_j: Any) -> str:
    e = _num(energy_j)
    if e is None:
        return NOT_MEASURED
    for scale, unit in ((1e6, "MJ"), (1e3, "kJ"), (1.0, "J"), (1e-3, "mJ")):
        if abs(e) >= scale:
            return f"{_sig(e / scale)} {unit}"
    return f"{_sig(e)} J"


def fmt_carbon(gco2e_g: Any) -> str:
    g = _num(gco2e_g)
    if g is None:
        return NOT_MEASURED
    for scale, unit in ((1e6, "tCO2e"), (1e3, "kgCO2e"), (1.0, "gCO2e"), (1e-3, "mgCO2e")):
        if abs(g) >= scale:
            return f"{_sig(g / scale)} {unit}"
    return f"{_sig(g)} gCO2e"


def fmt_duration(duration_s: Any) -> str:
    d = _num(duration_s)
    if d is None:
        return NOT_MEASURED
    if d >= 3600:
        return f"{d / 3600:.2f} h"
    if d >= 60:
        return f"{d / 60:.1f} min"
    return f"{_sig(d)} s"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _records(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    tests = report.get("tests") or []
    return [r for r in tests if isinstance(r, dict)]


def _prompt(rec: Mapping[str, Any]) -> dict[str, Any]:
    p = rec.get("prompt")
    return p if isinstance(p, dict) else {}


def _sub(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = mapping.get(key)
    return v if isinstance(v, dict) else {}


def _components(rec: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in _sub(rec, "components").items():
        if (f := _num(v)) is not None:
            out[str(k)] = f
    return out


def _component_order(names: Iterable[str]) -> list[str]:
    found = set(names)
    first = [c for c in _COMPONENT_ORDER if c in found]
    return first + sorted(found - set(first))


def _component_color(name: str, order: Sequence[str]) -> str:
    if name in COMPONENT_COLORS:
        return COMPONENT_COLORS[name]
    extras = [c for c in order if c not in COMPONENT_COLORS]
    return _EXTRA_COLORS[extras.index(name) % len(_EXTRA_COLORS)]


def _method_badge(method: Any) -> str:
    if not method:
        return f'<span class="null" title="{_NOT_MEASURED_TITLE}">{NOT_MEASURED}</span>'
    m = str(method)
    cls = m if m in METHOD_HATCH else "other"
    return f'<span class="badge {cls}">{_esc(m)}</span>'


# ------------------------------------------------------------------------ per-model data


def model_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-model rows: :func:`pytest_carbon.prompts.summary.model_summary`'s, the code the
    terminal uses, so the numbers agree everywhere; plus ``generation_method`` and
    ``execution_method`` (the weakest of each, split from its ``methods``)."""
    from pytest_carbon.measure.sensors.base import weakest_method
    from pytest_carbon.prompts.summary import model_summary

    rows = []
    for row in model_summary([dict(r) for r in records]):
        methods = [str(m) for m in row.get("methods") or []]
        gen = {m.split(":", 1)[1] for m in methods if m.startswith("generation:")}
        exe = {m for m in methods if ":" not in m}
        rows.append(
            {
                **row,
                "generation_method": weakest_method(gen) if gen else None,
                "execution_method": weakest_method(exe) if exe else None,
            }
        )
    return rows


# ------------------------------------------------------------------------------ charts


def _rc() -> dict[str, Any]:
    return {
        "svg.fonttype": "none",  # text stays text: small, selectable, readable by screen readers
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "text.color": PALETTE["text"],
        "axes.labelcolor": PALETTE["text"],
        "axes.edgecolor": PALETTE["muted"],
        "xtick.color": PALETTE["text"],
        "ytick.color": PALETTE["text"],
        "axes.grid": True,
        "grid.color": "#e1e4e8",
        "grid.linewidth": 0.6,
        "axes.axisbelow": True,
        "hatch.color": PALETTE["text"],
        "hatch.linewidth": 0.6,
        "legend.frameon": False,
    }


def _plain(label: str, width: int = 64) -> str:
    """A chart label: shortened from the left (a node id's end says most) and with ``$``
    escaped so matplotlib never reads it as mathtext."""
    s = str(label)
    if len(s) > width:
        s = "…" + s[-(width - 1) :]
    return s.replace("$", r"\$")


class _Charts:
    """Draws the charts; holds the matplotlib classes, imported on first use."""

    def __init__(self) -> None:
        import matplotlib
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        self.mpl = matplotlib
        self.Figure = Figure
        self.Canvas = FigureCanvasSVG
        self.Patch = Patch

    def figure(self, width_in: float, height_in: float) -> Any:
        return self.Figure(figsize=(width_in, height_in), layout="constrained")

    def svg(self, fig: Any, name: str, label: str) -> str:
        """Inline SVG: no prolog, no fixed size (it scales to its container), a <title>."""
        buf = io.StringIO()
        # A salt per chart keeps ids deterministic and distinct between charts on one page.
        with self.mpl.rc_context({"svg.hashsalt": f"pytest-carbon/{name}", "svg.id": name}):
            self.Canvas(fig).print_svg(  # type: ignore[no-untyped-call]
                buf, metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
            )
        text = buf.getvalue()
        text = text[text.index("<svg") :]
        head_end = text.index(">") + 1
        head = re.sub(r'\s(width|height)="[^"]*"', "", text[: head_end - 1])
        title_id = f"{name}-title"
        return (
            f'{head} role="img" aria-labelledby="{title_id}" preserveAspectRatio="xMidYMin meet">'
            f'<title id="{title_id}">{_esc(label)}</title>{text[head_end:].strip()}'
        )

    # -- energy per test ---------------------------------------------------------------
    def energy_per_test(self, records: Sequence[Mapping[str, Any]], top_n: int) -> str | None:
        measured = [r for r in records if _num(r.get("energy_j")) is not None]
        if not measured:
            return None
        top = sorted(measured, key=lambda r: -(_num(r.get("energy_j")) or 0.0))[:top_n]
        order = _component_order(c for r in top for c in (_components(r) or {"total": 0}))
        fig = self.figure(10.0, 1.4 + 0.34 * len(top))
        ax = fig.add_subplot()
        ys = list(range(len(top)))
        used_methods: set[str] = set()
        for y, rec in zip(ys, top, strict=True):
            comps = _components(rec) or {"total": _num(rec.get("energy_j")) or 0.0}
            methods = _sub(rec, "component_methods")
            left = 0.0
            for comp in order:
                value = comps.get(comp)
                if not value:
                    continue
                method = str(methods.get(comp) or rec.get("method") or "estimated")
                used_methods.add(method)
                ax.barh(
                    y,
                    value,
                    left=left,
                    color=_component_color(comp, order),
                    hatch=METHOD_HATCH.get(method, "++"),
                    edgecolor=PALETTE["text"],
                    linewidth=0.4,
                    height=0.7,
                )
                left += value
            total = _num(rec.get("energy_j")) or left
            ax.text(
                max(left, total),
                y,
                f"  {fmt_energy(total)} · {rec.get('method') or 'estimated'}",
                va="center",
                fontsize=9,
                parse_math=False,
            )
        ax.set_yticks(ys, [_plain(str(r.get("nodeid", ""))) for r in top], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel("energy per test (J)")
        ax.margins(x=0.22)
        ax.set_title(f"Energy per test: the {len(top)} largest of {len(measured)} measured")
        comp_handles = [
            self.Patch(facecolor=_component_color(c, order), edgecolor=PALETTE["text"], label=c)
            for c in order
        ]
        method_handles = [
            self.Patch(facecolor="white", edgecolor=PALETTE["text"], hatch=METHOD_HATCH[m], label=m)
            for m in METHOD_HATCH
            if m in used_methods
        ]
        ax.legend(
            handles=comp_handles + method_handles,
            loc="lower right",
            fontsize=9,
            title="component · method",
            title_fontsize=9,
        )
        return self.svg(
            fig,
            "chart-energy-per-test",
            f"Energy per test in joules, the {len(top)} largest, stacked by component; "
            "hatching shows the method",
        )

    # -- prompt suites -------------------------------------------------------------------
    def frontier(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        pts = [
            (str(r["model"]), e, p * 100.0)
            for r in rows
            if (e := _num(r.get("median_energy_j"))) is not None
            and (p := _num(r.get("pass_at_1"))) is not None
        ]
        if not pts:
            return None
        fig = self.figure(10.0, 4.6)
        ax = fig.add_subplot()
        energies = [e for _, e, _ in pts]
        if min(energies) > 0 and max(energies) / min(energies) > 20:
            ax.set_xscale("log")
        ax.scatter(
            energies,
            [p for _, _, p in pts],
            s=60,
            color=COMPONENT_COLORS["cpu"],
            edgecolor=PALETTE["text"],
            zorder=3,
        )
        for model, e, p in pts:
            ax.annotate(
                _plain(model, 40), (e, p), xytext=(6, 6), textcoords="offset points", fontsize=10
            )
        # The frontier: models no other model beats on both energy and pass rate.
        frontier, best = [], -1.0
        for _model, e, p in sorted(pts, key=lambda t: (t[1], -t[2])):
            if p > best:
                frontier.append((e, p))
                best = p
        if len(frontier) > 1:
            ax.step(
                [e for e, _ in frontier],
                [p for _, p in frontier],
                where="post",
                color=PALETTE["muted"],
                linestyle="--",
                linewidth=1,
                label="frugality frontier",
            )
            ax.legend(loc="lower right", fontsize=9)
        ax.set_ylim(-5, 108)
        ax.set_xlabel("median energy of a correct answer's execution (J)")
        ax.set_ylabel("pass rate (%)")
        ax.set_title("Pass rate vs energy per model (up and left is better)")
        return self.svg(
            fig,
            "chart-frontier",
            "Pass rate in percent against median execution energy in joules, per model",
        )

    def generation_vs_execution(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        data = [
            (
                str(r["model"]),
                _num(r.get("generation_gco2e_g")),
                _num(r.get("execution_gco2e_g")),
                r.get("generation_method"),
                r.get("execution_method"),
            )
            for r in rows
        ]
        data = [d for d in data if d[1] is not None or d[2] is not None]
        if not data:
            return None
        fig = self.figure(10.0, 1.5 + 0.7 * len(data))
        ax = fig.add_subplot()
        positive = [v for d in data for v in d[1:3] if v]
        if positive and max(positive) / min(positive) > 100:
            ax.set_xscale("log")
        h = 0.38
        for i, (_, gen, exe, gen_m, exe_m) in enumerate(data):
            for off, value, method, color, what in (
                (-h / 2, gen, gen_m, COMPONENT_COLORS["dram"], "generation"),
                (h / 2, exe, exe_m, COMPONENT_COLORS["cpu"], "execution"),
            ):
                if value is None or value <= 0:
                    # x in axes coordinates: a zero or missing bar has no place on a log axis.
                    text = "not measured" if value is None else f"0 gCO2e · {method or 'unknown'}"
                    ax.text(
                        0.005,
                        i + off,
                        f" {what}: {text}",
                        va="center",
                        fontsize=9,
                        transform=ax.get_yaxis_transform(),
                        parse_math=False,
                    )
                    continue
                ax.barh(
                    i + off,
                    value,
                    height=h,
                    color=color,
                    edgecolor=PALETTE["text"],
                    linewidth=0.4,
                    hatch=METHOD_HATCH.get(str(method), "++"),
                )
                ax.text(
                    value,
                    i + off,
                    f"  {fmt_carbon(value)} · {method or 'unknown'}",
                    va="center",
                    fontsize=9,
                    parse_math=False,
                )
        ax.set_yticks(range(len(data)), [_plain(d[0], 40) for d in data])
        ax.set_ylim(len(data) - 0.5, -0.5)  # inverted, and room for rows drawn as text only
        ax.margins(x=0.3)
        ax.set_xlabel("carbon (gCO2e)")
        ax.set_title("Generation (LLM call) vs execution (measured run) per model")
        ax.legend(
            handles=[
                self.Patch(
                    facecolor=COMPONENT_COLORS["dram"],
                    edgecolor=PALETTE["text"],
                    label="generation",
                ),
                self.Patch(
                    facecolor=COMPONENT_COLORS["cpu"], edgecolor=PALETTE["text"], label="execution"
                ),
            ],
            loc="lower right",
            fontsize=9,
        )
        return self.svg(
            fig,
            "chart-generation-execution",
            "Generation and execution carbon in grams CO2e per model",
        )

    def reference_ratio(self, records: Sequence[Mapping[str, Any]]) -> str | None:
        by_model: dict[str, list[float]] = {}
        for rec in records:
            p = _prompt(rec)
            ratio = _num(_sub(p, "reference_ratio").get("energy"))
            if p and ratio is not None and ratio > 0:
                by_model.setdefault(str(p.get("model")), []).append(ratio)
        if not by_model:
            return None
        models = list(by_model)
        fig = self.figure(10.0, 4.2)
        ax = fig.add_subplot()
        values = [by_model[m] for m in models]
        ax.boxplot(
            values,
            positions=range(len(models)),
            widths=0.5,
            showfliers=False,
            medianprops={"color": PALETTE["text"]},
        )
        for i, vals in enumerate(values):
            # Deterministic spread of the points so overlapping ones stay visible.
            n = len(vals)
            xs = [i + (0.25 * (k / (n - 1) - 0.5) if n > 1 else 0.0) for k in range(n)]
            ax.scatter(xs, vals, s=18, color=COMPONENT_COLORS["cpu"], alpha=0.8, zorder=3)
        ax.axhline(
            1.0, color=PALETTE["muted"], linestyle="--", linewidth=1, label="reference solution = 1"
        )
        flat = [v for vs in values for v in vs]
        if max(flat) / min(flat) > 10:
            ax.set_yscale("log")
        ax.set_xticks(range(len(models)), [_plain(m, 30) for m in models])
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylabel("energy / reference energy (ratio)")
        ax.set_title("Execution energy relative to the reference solution (below 1 is frugal)")
        ax.legend(loc="upper right", fontsize=9)
        return self.svg(
            fig,
            "chart-reference-ratio",
            "Ratio of execution energy to the reference solution's, per model",
        )

    # -- power trace ---------------------------------------------------------------------
    def power_trace(self, records: Sequence[Mapping[str, Any]]) -> str | None:
        traced = [r for r in records if isinstance(r.get("trace"), list) and r["trace"]]
        if not traced:
            return None
        traced.sort(key=lambda r: -(_num(r.get("energy_j")) or 0.0))
        traced = traced[:TRACE_MAX]
        fig = self.figure(10.0, 0.6 + 2.3 * len(traced))
        axes = fig.subplots(len(traced), 1, squeeze=False)[:, 0]
        for ax, rec in zip(axes, traced, strict=True):
            methods = _sub(rec, "component_methods")
            series: dict[str, tuple[list[float], list[float]]] = {}
            for point in rec["trace"]:
                if not (isinstance(point, (list, tuple)) and len(point) == 2):
                    continue
                t, powers = _num(point[0]), point[1]
                if t is None or not isinstance(powers, dict):
                    continue
                for comp, w in powers.items():
                    if (w := _num(w)) is not None:
                        xs, ys = series.setdefault(str(comp), ([], []))
                        xs.append(t)
                        ys.append(w)
            order = _component_order(series)
            for comp in order:
                xs, ys = series[comp]
                ax.plot(
                    xs,
                    ys,
                    color=_component_color(comp, order),
                    linewidth=1.4,
                    label=f"{comp} ({methods.get(comp) or rec.get('method') or 'estimated'})",
                )
            ax.set_title(_plain(str(rec.get("nodeid", "")), 90), fontsize=10, loc="left")
            ax.set_ylabel("power (W)")
            ax.set_ylim(bottom=0)
            if series:
                ax.legend(loc="upper right", fontsize=9)
        axes[-1].set_xlabel("time since the test's start (s)")
        return self.svg(fig, "chart-power-trace", "Power in watts over time in seconds")


# -------------------------------------------------------------------------------- HTML


_CSS = """
:root{{color-scheme:light}}
*{{box-sizing:border-box}}
body{{margin:0;background:{bg};color:{text};
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}}
main{{max-width:1100px;margin:0 auto;padding:1.2rem 1.2rem 3rem}}
h1{{font-size:1.6rem;margin:.2rem 0 .2rem}} h2{{font-size:1.25rem;margin:2rem 0 .6rem;
 border-bottom:1px solid {border};padding-bottom:.3rem}} h3{{font-size:1.05rem;margin:1rem 0 .4rem}}
.sub,.note,figcaption,.src{{color:{muted}}} .note,figcaption,.src{{font-size:.88rem}}
.cards{{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:.8rem}}
.card{{background:{card};border:1px solid {border};border-radius:8px;padding:.7rem .9rem}}
.card h3{{margin:0 0 .4rem;font-size:1rem}}
.card dl{{margin:0;display:grid;grid-template-columns:auto 1fr;gap:.15rem .7rem}}
.card dt{{color:{muted}}} .card dd{{margin:0;overflow-wrap:anywhere}}
.card ul{{margin:0;padding-left:1.1rem}} .card.wide{{grid-column:1/-1}}
.equiv{{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.3rem 1.6rem}}
.big{{font-size:1.35rem;font-weight:600}}
.badge{{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.82rem;
 font-weight:600;white-space:nowrap}}
.badge.measured{{background:{measured_bg};color:{measured_text}}}
.badge.attributed{{background:{attributed_bg};color:{attributed_text}}}
.badge.estimated,.badge.other,.badge.default{{background:{estimated_bg};color:{estimated_text}}}
.warn{{background:{warn_bg};color:{warn_text};border:1px solid #b26a00;border-radius:8px;
 padding:.6rem .9rem;margin:.8rem 0}} .warn ul{{margin:.2rem 0;padding-left:1.2rem}}
figure{{margin:1rem 0}} figure svg{{display:block;width:100%;height:auto}}
.tablewrap{{overflow-x:auto;border:1px solid {border};border-radius:8px}}
table{{border-collapse:collapse;width:100%;font-size:.88rem}}
th,td{{padding:.3rem .5rem;border-bottom:1px solid {border};text-align:left;vertical-align:top}}
thead th{{background:{head};position:sticky;top:0}}
td.num{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
th[scope=row]{{font-weight:400;font-family:ui-monospace,"DejaVu Sans Mono",monospace;
 font-size:.82rem;word-break:break-all;min-width:16rem}}
#models th[scope=row],#totals th[scope=row]{{min-width:7rem;word-break:normal}}
thead button{{all:unset;cursor:pointer;font-weight:600}}
thead button:focus-visible{{outline:2px solid {attributed_text};outline-offset:2px}}
th[aria-sort=ascending] button::after{{content:" ▲"}}
th[aria-sort=descending] button::after{{content:" ▼"}}
.null{{color:{muted}}} .bad{{color:{bad_text};font-weight:600}} .good{{color:{good_text}}}
"""

_JS = """
(function () {
  function key(cell) { return cell ? cell.getAttribute('data-v') : null; }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector('button');
      if (!button) { return; }
      button.addEventListener('click', function () {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var numeric = th.getAttribute('data-type') === 'num';
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var xe = x === null || x === '', ye = y === null || y === '';
          if (xe || ye) { return xe === ye ? 0 : (xe ? 1 : -1); }  // not measured: last
          var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already HTML."""
    return "<dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _machines(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    machines = [m for m in report.get("machines") or [] if isinstance(m, dict)]
    machine = report.get("machine")
    if isinstance(machine, dict) and machine not in machines:
        machines.insert(0, machine)
    return machines


def _machine_card(machine: Mapping[str, Any]) -> str:
    gpus = machine.get("gpus") or []
    gpu_text = (
        ", ".join(
            _esc(g.get("name") or g.get("model") or g) if isinstance(g, dict) else _esc(g)
            for g in gpus
        )
        or "none"
    )
    items = [
        ("host", _esc(machine.get("hostname") or "unknown")),
        ("machine id", _esc(machine.get("machine_id") or "unknown")),
        (
            "CPU",
            _esc(machine.get("cpu_model") or "unknown")
            + (f" ({_esc(machine.get('cpu_count'))} logical)" if machine.get("cpu_count") else ""),
        ),
        ("RAM", f"{_esc(machine.get('ram_gb'))} GB" if machine.get("ram_gb") else "unknown"),
        ("GPUs", gpu_text),
        (
            "system",
            _esc(
                " · ".join(
                    str(x)
                    for x in (
                        machine.get("system"),
                        f"Python {machine.get('python')}" if machine.get("python") else None,
                    )
                    if x
                )
            )
            or "unknown",
        ),
    ]
    if machine.get("virtualized"):
        items.append(("virtualized", "yes (counters may be unavailable)"))
    return f'<section class="card" aria-label="machine"><h3>Machine</h3>{_dl(items)}</section>'


def _sensors_card(machines: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for machine in machines:
        for s in machine.get("sensors") or []:
            if not isinstance(s, dict):
                continue
            comps = ", ".join(_esc(c) for c in s.get("components") or [])
            if s.get("available", True):
                lines.append(
                    f"<li><strong>{_esc(s.get('name'))}</strong> "
                    f"{_method_badge(s.get('method'))} {comps}</li>"
                )
            else:
                why = _esc(s.get("reason") or "unavailable")
                fix = f" — fix: {_esc(s['fix'])}" if s.get("fix") else ""
                lines.append(
                    f"<li><strong>{_esc(s.get('name'))}</strong>: "
                    f'<span class="note">not used: {why}{fix}</span></li>'
                )
    body = f"<ul>{''.join(lines)}</ul>" if lines else '<p class="note">not recorded</p>'
    return f'<section class="card" aria-label="sensors"><h3>Sensors</h3>{body}</section>'


def _accounting_card(acc: Mapping[str, Any]) -> str:
    place = " / ".join(str(x) for x in (acc.get("country"), acc.get("region")) if x)
    intensity = _num(acc.get("intensity_g_per_kwh"))
    intensity_html = f"{_sig(intensity)} gCO2e/kWh" if intensity is not None else NOT_MEASURED
    if acc.get("intensity_is_default"):
        intensity_html += (
            ' <span class="badge default" title="no location was given">default</span>'
        )
    source = _esc(acc.get("intensity_source") or "unknown")
    if acc.get("intensity_year"):
        source += f" ({_esc(acc['intensity_year'])})"
    pue = _num(acc.get("pue"))
    items = [
        ("location", _esc(place) if place else "not given (world average used)"),
        ("intensity", intensity_html),
        ("source", f'<span class="src">{source}</span>'),
        ("PUE", f"{pue:g}" if pue is not None else "unknown"),
    ]
    for key, label, unit in (("water_l_per_kwh", "water", "L/kWh"),):
        if (v := _num(acc.get(key))) is not None:
            items.append((label, f"{_sig(v)} {unit}"))
    return (
        f'<section class="card" aria-label="carbon accounting"><h3>Location and grid</h3>'
        f"{_dl(items)}</section>"
    )


def totals(report: Mapping[str, Any]) -> dict[str, Any]:
    """Run totals from the records (nulls skipped, never counted as zero)."""
    recs = _records(report)
    measured = [r for r in recs if _num(r.get("energy_j")) is not None]
    methods: dict[str, int] = {}
    for r in measured:
        m = str(r.get("method") or "estimated")
        methods[m] = methods.get(m, 0) + 1
    summary = _sub(report, "summary")
    run = _sub(report, "run")

    def total(key: str) -> float | None:
        if not measured:
            return None  # a summary's 0.0 over no measurement would be a false number
        if (v := _num(summary.get(key))) is not None:
            return v
        vals = [v for r in measured if (v := _num(r.get(key))) is not None]  # noqa: B023
        return sum(vals) if vals else None

    return {
        "tests": len(recs),
        "measured": len(measured),
        "not_measured": len(recs) - len(measured),
        "energy_j": total("energy_j"),
        "gco2e_g": total("gco2e_g"),
        "duration_s": _num(run.get("duration_s")) or total("duration_s"),
        "methods": summary.get("methods") if isinstance(summary.get("methods"), dict) else methods,
    }


def _totals_card(t: Mapping[str, Any]) -> str:
    methods = (
        " ".join(f"{_method_badge(m)}&nbsp;{_esc(n)}" for m, n in sorted(t["methods"].items()))
        or NOT_MEASURED
    )
    energy = _num(t["energy_j"])
    kwh = f" ({_sig(energy / J_PER_KWH)} kWh)" if energy is not None else ""
    items = [
        ("energy", f'<span class="big">{fmt_energy(energy)}</span>{kwh}'),
        ("carbon", f'<span class="big">{fmt_carbon(t["gco2e_g"])}</span>'),
        ("run time", fmt_duration(t["duration_s"])),
        ("tests", f"{t['tests']} ({t['measured']} measured, {t['not_measured']} not)"),
        ("methods", methods),
    ]
    return f'<section class="card" aria-label="totals"><h3>Totals</h3>{_dl(items)}</section>'


def _equivalences_card(t: Mapping[str, Any]) -> str:
    g, e = _num(t["gco2e_g"]), _num(t["energy_j"])
    if g is None or e is None:
        return ""
    try:
        from pytest_carbon.carbon.equivalences import equivalences
    except ImportError:
        return ""
    lines = []
    for item in equivalences(g, e):
        value = _num(item.get("value"))
        if value is None:
            continue
        lines.append(
            f"<li>{_sig(value)} {_esc(item.get('unit'))} of {_esc(item.get('label'))}"
            f'<br><span class="src">{_esc(item.get("source"))}</span></li>'
        )
    if not lines:
        return ""
    return (
        '<section class="card wide" aria-label="equivalences"><h3>Roughly the same as</h3>'
        f'<ul class="equiv">{"".join(lines)}</ul>'
        '<p class="note">For orientation only: orders of magnitude, not offsets.</p></section>'
    )


def _cell(value: Any, kind: str = "num", title: str | None = None) -> str:
    """One table cell with its sort key in ``data-v``; null is "—" titled "not measured"."""
    if kind == "num":
        v = _num(value)
        if v is None:
            return (
                f'<td class="num null" data-v="" title="{_NOT_MEASURED_TITLE}">{NOT_MEASURED}</td>'
            )
        t = f' title="{_esc(title)}"' if title else ""
        text = f"{int(v):,}" if isinstance(value, int) else _sig(v)
        return f'<td class="num" data-v="{v!r}"{t}>{text}</td>'
    if kind == "method":
        return f'<td data-v="{_esc(value or "")}">{_method_badge(value)}</td>'
    if value is None or value == "":
        return f'<td class="null" data-v="" title="{_NOT_MEASURED_TITLE}">{NOT_MEASURED}</td>'
    return f'<td data-v="{_esc(value)}">{_esc(value)}</td>'


def _th(label: str, kind: str = "text", title: str | None = None) -> str:
    t = f' title="{_esc(title)}"' if title else ""
    return (
        f'<th scope="col" data-type="{kind}"{t}><button type="button">{_esc(label)}</button></th>'
    )


def _records_table(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return '<p class="note">No records.</p>'
    comps = _component_order(c for r in records for c in _components(r))
    prompts = any(_prompt(r) for r in records)
    heads = [
        _th("test"),
        _th("outcome"),
        _th("method"),
        _th("energy (J)", "num", "total energy in the measured window"),
        _th("dynamic (J)", "num", "energy minus idle power x duration"),
        _th("time (s)", "num"),
        _th("power (W)", "num"),
        _th("EDP (J·s)", "num", "energy-delay product"),
        _th("carbon (gCO2e)", "num"),
    ]
    heads += [_th(f"{c} (J)", "num", f"{c} energy") for c in comps]
    if prompts:
        heads += [
            _th("model"),
            _th("task"),
            _th("correct"),
            _th("generation (gCO2e)", "num", "carbon of the LLM call that wrote the code"),
            _th("generation method"),
            _th("ratio to reference", "num", "execution energy / reference solution energy"),
        ]
    rows = []
    for rec in records:
        methods = _sub(rec, "component_methods")
        comp_vals = _components(rec)
        cells = [
            f'<th scope="row" data-v="{_esc(rec.get("nodeid", ""))}">'
            f"{_esc(rec.get('nodeid', ''))}</th>",
            _cell(rec.get("outcome"), "text"),
            _cell(rec.get("method"), "method"),
            _cell(rec.get("energy_j")),
            _cell(rec.get("dynamic_energy_j")),
            _cell(rec.get("duration_s")),
            _cell(rec.get("power_w")),
            _cell(rec.get("edp_js")),
            _cell(rec.get("gco2e_g")),
        ]
        cells += [_cell(comp_vals.get(c), title=str(methods.get(c) or "")) for c in comps]
        if prompts:
            p = _prompt(rec)
            gen = _sub(p, "generation")
            correct = p.get("correct")
            cells += [
                _cell(p.get("model"), "text"),
                _cell(p.get("task"), "text"),
                _cell(None if correct is None else ("yes" if correct else "no"), "text"),
                _cell(gen.get("gco2e_g")),
                _cell(gen.get("method"), "method"),
                _cell(_sub(p, "reference_ratio").get("energy")),
            ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<div class="tablewrap"><table class="sortable" id="records">'
        '<caption class="note" style="text-align:left;padding:.4rem .5rem">'
        f"{len(records)} records. Click a column header to sort; "
        f"{NOT_MEASURED} means not measured.</caption>"
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _model_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    body = []
    for r in rows:
        pr = _num(r.get("pass_at_1"))
        body.append(
            "<tr>"
            f'<th scope="row" data-v="{_esc(r.get("model"))}">{_esc(r.get("model"))}</th>'
            + _cell(r.get("items"))
            + _cell(r.get("correct"))
            + _cell(pr * 100 if pr is not None else None)
            + _cell(r.get("median_energy_j"))
            + _cell(r.get("median_ratio_energy"))
            + _cell(r.get("execution_gco2e_g"))
            + _cell(r.get("execution_method"), "method")
            + _cell(r.get("generation_gco2e_g"))
            + _cell(r.get("generation_method"), "method")
            + _cell(r.get("gco2e_per_correct_g"))
            + "</tr>"
        )
    heads = [
        _th("model"),
        _th("items", "num"),
        _th("correct", "num"),
        _th("pass@1 (%)", "num", "share of correct samples, averaged over tasks"),
        _th("median energy of correct (J)", "num"),
        _th("median ratio to reference", "num", "execution energy / reference energy"),
        _th("execution (gCO2e)", "num"),
        _th("execution method"),
        _th("generation (gCO2e)", "num"),
        _th("generation method"),
        _th("gCO2e per correct", "num", "(execution + generation) / correct answers"),
    ]
    return (
        '<div class="tablewrap"><table class="sortable" id="models">'
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


_STATUS_ORDER = ("regression", "improvement", "unmeasured", "new", "missing", "noise")


def _comparison_section(comparison: Mapping[str, Any]) -> str:
    """The changes against a baseline. Knows ``Comparison.to_json``
    (totals, counts, changes with a status); any other rows are shown as a plain table."""
    changes = comparison.get("changes")
    if not (isinstance(changes, list) and all(isinstance(c, dict) for c in changes)):
        return _generic_comparison(comparison)
    parts = ['<section aria-labelledby="h-compare"><h2 id="h-compare">Against the baseline</h2>']
    info = [
        ("baseline", _esc(comparison.get("base", "baseline"))),
        ("this run", _esc(comparison.get("current", "this run"))),
    ]
    if comparison.get("fail"):
        info.append(("fails on", _esc(", ".join(str(f) for f in comparison["fail"]))))
    counts = comparison.get("counts")
    if isinstance(counts, dict):
        info.append(
            ("tests", ", ".join(f"{_esc(k)}: {_esc(v)}" for k, v in counts.items() if v) or "0")
        )
    parts.append(f'<div class="card">{_dl(info)}</div>')
    totals_ = comparison.get("totals")
    if isinstance(totals_, dict) and totals_:
        rows = []
        for metric, pair in totals_.items():
            pair = pair if isinstance(pair, dict) else {}
            base, cur = _num(pair.get("base")), _num(pair.get("current"))
            change = (cur / base - 1) * 100 if base and cur is not None else None
            rows.append(
                f'<tr><th scope="row" data-v="{_esc(metric)}">{_esc(metric)}</th>'
                + _cell(base)
                + _cell(cur)
                + _cell(change)
                + "</tr>"
            )
        parts.append(
            '<h3>Totals over the tests in both runs</h3><div class="tablewrap">'
            '<table class="sortable" id="totals"><thead><tr>'
            + _th("metric")
            + _th("baseline", "num")
            + _th("this run", "num")
            + _th("change (%)", "num")
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    def rank(c: Mapping[str, Any]) -> tuple[int, float]:
        status = str(c.get("status"))
        order = _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)
        return order, -abs(_num(c.get("change")) or 0.0)

    rows = []
    for c in sorted(changes, key=rank):
        status = str(c.get("status") or "")
        cls = {"regression": "bad", "improvement": "good"}.get(status, "")
        change = _num(c.get("change"))
        unit = f" ({c['unit']})" if c.get("unit") else ""
        rows.append(
            f'<tr><th scope="row" data-v="{_esc(c.get("nodeid"))}">{_esc(c.get("nodeid"))}</th>'
            + _cell(f"{c.get('metric')}{unit}", "text")
            + _cell(c.get("base"))
            + _cell(c.get("current"))
            + _cell(change * 100 if change is not None else None)
            + f'<td data-v="{_esc(status)}" class="{cls}">'
            + f"{_esc(status) or NOT_MEASURED}{' (fails the run)' if c.get('failing') else ''}"
            + "</td>"
            + _cell(c.get("method"), "text")
            + _cell(c.get("p_value"))
            + _cell(c.get("detail"), "text")
            + "</tr>"
        )
    if rows:
        parts.append(
            '<h3>Per test</h3><div class="tablewrap"><table class="sortable" id="changes">'
            "<thead><tr>"
            + _th("test")
            + _th("metric")
            + _th("baseline (median)", "num")
            + _th("this run (median)", "num")
            + _th("change (%)", "num")
            + _th("status")
            + _th("statistical test")
            + _th("p-value", "num")
            + _th("detail")
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    else:
        parts.append('<p class="note">No test in common with the baseline.</p>')
    warns = [w for w in comparison.get("warnings") or [] if w]
    if warns:
        items = "".join(f"<li>{_esc(w)}</li>" for w in warns)
        parts.append(f'<div class="warn" role="note"><ul>{items}</ul></div>')
    parts.append("</section>")
    return "".join(parts)


def _generic_comparison(comparison: Mapping[str, Any]) -> str:
    """Any other comparison dict: its scalars, then its first list of rows as a table."""
    info = [
        (str(k), _esc(v))
        for k, v in comparison.items()
        if isinstance(v, (str, int, float, bool)) or v is None
    ]
    rows: list[Mapping[str, Any]] = []
    for value in comparison.values():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            rows = value
            break
    parts = ['<section aria-labelledby="h-compare"><h2 id="h-compare">Against the baseline</h2>']
    if info:
        parts.append(f'<div class="card">{_dl(info)}</div>')
    if rows:
        flat = [_flatten_one(r) for r in rows]
        cols: list[str] = []
        for r in flat:
            cols += [c for c in r if c not in cols]
        numeric = {
            c
            for c in cols
            if any(_num(r.get(c)) is not None for r in flat)
            and all(r.get(c) is None or _num(r.get(c)) is not None for r in flat)
        }
        head = "".join(_th(c, "num" if c in numeric else "text") for c in cols)
        body = "".join(
            "<tr>"
            + "".join(_cell(r.get(c), "num" if c in numeric else "text") for c in cols)
            + "</tr>"
            for r in flat
        )
        parts.append(
            '<div class="tablewrap"><table class="sortable" id="changes">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
    elif not info:
        parts.append('<p class="note">The comparison is empty.</p>')
    parts.append("</section>")
    return "".join(parts)


def _flatten_one(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if not isinstance(v2, (dict, list)):
                    out[f"{k}.{k2}"] = v2
        elif isinstance(v, list):
            out[str(k)] = ", ".join(str(x) for x in v if not isinstance(x, (dict, list)))
        else:
            out[str(k)] = v
    return out


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def render_html(
    report: Mapping[str, Any],
    comparison: Any = None,
    *,
    top_n: int = TOP_N,
) -> str:
    """The report as one self-contained HTML document (a str).

    ``comparison``: the changes against a baseline (``baseline.Comparison`` or its
    ``to_json()`` dict), rendered as tables when given.
    Charts need matplotlib (``pip install 'pytest-carbon[html]'``); without it the page
    says so and shows everything else.
    """
    if not isinstance(report, Mapping):
        raise TypeError(f"render_html expects a report dict, got {type(report).__name__}")
    records = _records(report)
    prompt_records = [r for r in records if _prompt(r)]
    t = totals(report)
    machines = _machines(report)
    acc = _sub(report, "accounting")

    charts: dict[str, str | None] = {}
    chart_note = ""
    try:
        drawer = _Charts()
    except ImportError:
        drawer = None
        chart_note = (
            '<p class="warn">Charts need matplotlib: '
            "<code>pip install 'pytest-carbon[html]'</code>. Tables follow.</p>"
        )
    rows = model_rows(prompt_records) if prompt_records else []
    if drawer is not None:
        # A chart must never fail a test run: matplotlib's warnings (a glyph missing from the
        # font, a layout that does not fit) are not the user's test failures.
        with warnings.catch_warnings(), drawer.mpl.rc_context(_rc()):
            warnings.simplefilter("ignore")
            charts["energy"] = drawer.energy_per_test(records, top_n)
            if prompt_records:
                charts["frontier"] = drawer.frontier(rows)
                charts["genexe"] = drawer.generation_vs_execution(rows)
                charts["ratio"] = drawer.reference_ratio(prompt_records)
            charts["trace"] = drawer.power_trace(records)

    created = report.get("created")
    out: list[str] = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>pytest-carbon report{' · ' + _esc(created) if created else ''}</title>",
        f"<style>{_CSS.format(**PALETTE)}</style></head><body><main>",
        "<header><h1>pytest-carbon report</h1>",
        f'<p class="sub">{_esc(created or "date unknown")} · schema '
        f"{_esc(report.get('schema', 'unknown'))} · pytest-carbon "
        f"{_esc(report.get('version', '?'))}</p></header>",
    ]
    if report.get("complete") is False:
        out.append(
            '<p class="warn"><strong>Incomplete run:</strong> '
            + _esc(report.get("incomplete_reason") or "the session was interrupted")
            + "; totals cover only the tests that finished.</p>"
        )
    out.append('<section aria-label="summary" class="cards">')
    out += [_machine_card(m) for m in machines] or [_machine_card({})]
    out += [_sensors_card(machines), _accounting_card(acc), _totals_card(t), _equivalences_card(t)]
    out.append("</section>")
    from pytest_carbon.results.caveats import kind_lines, kinds_of_report, trust_note

    report_warnings = [w for w in report.get("warnings") or [] if w]
    report_warnings += kind_lines(kinds_of_report(report), examples=3)
    trust = trust_note(rec.get("method") or "" for rec in report.get("tests") or [])
    if trust:
        report_warnings.append(trust)
    if report_warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in report_warnings)
        out.append(f'<div class="warn" role="note"><strong>Caveats</strong><ul>{items}</ul></div>')
    out.append(chart_note)

    out.append('<section aria-labelledby="h-energy"><h2 id="h-energy">Energy per test</h2>')
    if t["measured"]:
        out.append(
            _figure(
                charts.get("energy"),
                "Bars are stacked by component (colour). The method is the hatching and is also "
                "written after each bar: solid = measured (hardware counter), diagonal lines = "
                "attributed (a CPU-time share of a machine-wide counter), crosses = estimated "
                "(CPU time × power model).",
            )
        )
    else:
        out.append('<p class="note">No test was measured.</p>')
    out.append("</section>")

    if prompt_records:
        out.append('<section aria-labelledby="h-models"><h2 id="h-models">Models</h2>')
        out.append(_model_table(rows))
        out.append(
            _figure(
                charts.get("frontier"),
                "Each point is a model. The dashed line joins the models no other "
                "model beats on both pass rate and energy.",
            )
        )
        unplaced = [str(r.get("model")) for r in rows if _num(r.get("median_energy_j")) is None]
        if unplaced:
            out.append(
                f'<p class="note">Not in the pass-rate chart (no correct answer was '
                f"measured): {_esc(', '.join(unplaced))}.</p>"
            )
        out.append(
            _figure(
                charts.get("genexe"),
                "Generation: the LLM call that wrote the code (its method is usually "
                "estimated). Execution: running the generated code.",
            )
        )
        out.append(
            _figure(
                charts.get("ratio"),
                "Each point is one correct sample; the box spans the middle half.",
            )
        )
        out.append("</section>")

    if charts.get("trace"):
        out.append('<section aria-labelledby="h-trace"><h2 id="h-trace">Power over time</h2>')
        out.append(
            _figure(
                charts["trace"],
                "Power as sampled during the tests that recorded a "
                f"trace (at most {TRACE_MAX}, the most energy first).",
            )
        )
        out.append("</section>")

    if comparison is not None:
        if hasattr(comparison, "to_json"):  # a baseline.Comparison
            comparison = comparison.to_json()
        out.append(_comparison_section(comparison))

    out.append('<section aria-labelledby="h-records"><h2 id="h-records">All records</h2>')
    out.append(_records_table(records))
    out.append("</section>")
    out.append(
        '<footer><p class="note">Made by pytest-carbon. Energy is the total in each '
        "test's window; dynamic energy excludes the idle baseline. Carbon = energy "
        "(kWh) × PUE × grid intensity.</p></footer>"
    )
    out.append(f"</main><script>{_JS}</script></body></html>\n")
    return "\n".join(part for part in out if part)


def write_html(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    comparison: Any = None,
) -> Path:
    """Render and write the page atomically (a temporary file, then a rename)."""
    return write_text_atomic(path, render_html(report, comparison))
