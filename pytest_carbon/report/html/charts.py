"""The page's charts: inline SVG drawn by matplotlib (imported here, on first use)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.report import format as fmt
from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.format import num
from pytest_carbon.report.html.common import (
    _EXTRA_COLORS,
    COMPONENT_COLORS,
    METHOD_HATCH,
    PALETTE,
    TRACE_MAX,
    _component_color,
    _component_order,
    _components,
    _esc,
    _prompt,
    _sub,
)
from pytest_carbon.report.totals import per_call_energy_j


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
    """A chart label: a node id shortened in the middle (task and model survive), with
    ``$`` escaped so matplotlib never reads it as mathtext."""
    return rowinfo.shorten(str(label), width).replace("$", r"\$")


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

    def si_axis(self, axis: Any, unit: str) -> None:
        """Tick labels with SI prefixes (``100 µJ``), as every number of the page: never
        ``1e-4`` or ``0.00002``."""
        from matplotlib.ticker import EngFormatter, NullFormatter

        axis.set_major_formatter(EngFormatter(unit=unit, sep=" "))
        axis.set_minor_formatter(NullFormatter())

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
    def energy_per_test(
        self, records: Sequence[Mapping[str, Any]], top_n: int, rounds: int | None = None
    ) -> str | None:
        """Tests whose energy is their own (per-call windows have their own chart)."""
        measured = [
            r
            for r in records
            if num(r.get("energy_j")) is not None and per_call_energy_j(r) is None
        ]
        if not measured:
            return None
        top = sorted(measured, key=lambda r: -(num(r.get("energy_j")) or 0.0))[:top_n]
        order = _component_order(c for r in top for c in (_components(r) or {"total": 0}))
        fig = self.figure(10.0, 1.4 + 0.34 * len(top))
        ax = fig.add_subplot()
        ys = list(range(len(top)))
        used_methods: set[str] = set()
        for y, rec in zip(ys, top, strict=True):
            comps = _components(rec) or {"total": num(rec.get("energy_j")) or 0.0}
            methods = _sub(rec, "component_methods")
            left = 0.0
            for comp in order:
                value = comps.get(comp)
                if not value:
                    continue
                method = str(methods.get(comp) or rec.get("method") or "unknown")
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
            total = num(rec.get("energy_j")) or left
            ax.text(
                max(left, total),
                y,
                f"  {fmt.energy(total)} · {rec.get('method') or 'unknown'}",
                va="center",
                fontsize=9,
                parse_math=False,
            )
        ax.set_yticks(ys, [_plain(str(r.get("nodeid", ""))) for r in top], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel("energy per test (J)" + (f", the sum of {rounds} rounds" if rounds else ""))
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
        self.si_axis(ax.xaxis, "J")
        # Below the axes: inside, it covered the labels written after the longest bars.
        fig.legend(
            handles=comp_handles + method_handles,
            loc="outside lower center",
            ncols=len(comp_handles) + len(method_handles),
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
    def generation_vs_execution(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        data = [
            (
                str(r["model"]),
                num(r.get("generation_gco2e_g")),
                num(r.get("execution_gco2e_g")),
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
                    f"  {fmt.carbon(value)} · {method or 'unknown'}",
                    va="center",
                    fontsize=9,
                    parse_math=False,
                )
        ax.set_yticks(range(len(data)), [_plain(d[0], 40) for d in data])
        ax.set_ylim(len(data) - 0.5, -0.5)  # inverted, and room for rows drawn as text only
        ax.margins(x=0.3)
        ax.set_xlabel("carbon (gCO2e)")
        self.si_axis(ax.xaxis, "g")
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

    def energy_per_call(self, records: Sequence[Mapping[str, Any]], top_n: int) -> str | None:
        """Prompt items (and carbon(func) calls): the energy of one call, ranked, each bar
        labelled with its ratio to the reference. The measuring window's total (about
        min_time_s x power, the same for every item) would rank nothing."""
        rows = [r for r in records if per_call_energy_j(r) is not None]
        if not rows:
            return None
        top = rowinfo.ranked(rows)[:top_n]
        models = list(dict.fromkeys(str(_prompt(r).get("model") or "test") for r in top))
        palette = [COMPONENT_COLORS["cpu"], COMPONENT_COLORS["dram"], *_EXTRA_COLORS]
        colour = {m: palette[i % len(palette)] for i, m in enumerate(models)}
        fig = self.figure(10.0, 1.4 + 0.34 * len(top))
        ax = fig.add_subplot()
        values = [per_call_energy_j(r) or 0.0 for r in top]
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 100:
            ax.set_xscale("log")
        for y, (rec, value) in enumerate(zip(top, values, strict=True)):
            model = str(_prompt(rec).get("model") or "test")
            ax.barh(
                y,
                value,
                color=colour[model],
                hatch=METHOD_HATCH.get(str(rec.get("method") or "unknown"), "++"),
                edgecolor=PALETTE["text"],
                linewidth=0.4,
                height=0.7,
            )
            ratio = rowinfo.ratio_text(rec, compact=True)
            extra = f" · {ratio} vs reference" if ratio != fmt.NOT_MEASURED else ""
            ax.text(
                value,
                y,
                f"  {fmt.energy(value)} · {rec.get('method') or 'unknown'}{extra}",
                va="center",
                fontsize=9,
                parse_math=False,
            )
        ax.set_yticks(
            range(len(top)), [_plain(str(r.get("nodeid", "")), 48) for r in top], fontsize=9
        )
        ax.invert_yaxis()
        ax.margins(x=0.45)
        ax.set_xlabel("energy of one call (J), median of the calls measured")
        self.si_axis(ax.xaxis, "J")
        ax.set_title(f"Energy per call: the {len(top)} largest of {len(rows)}")
        if len(models) > 1:
            # Below the axes: inside, it would cover the labels written after the bars.
            fig.legend(
                handles=[
                    self.Patch(facecolor=colour[m], edgecolor=PALETTE["text"], label=m)
                    for m in models
                ],
                loc="outside lower center",
                ncols=min(len(models), 6),
                fontsize=9,
                title="model",
                title_fontsize=9,
            )
        return self.svg(
            fig,
            "chart-energy-per-call",
            f"Energy of one call in joules, the {len(top)} largest, with the ratio to the "
            "reference solution",
        )

    def reference_ratio(self, records: Sequence[Mapping[str, Any]]) -> str | None:
        """Ratios to the reference per model: a box where a model has 5 points or more,
        the points always. With one model, one point per task, with its interval."""
        by_model: dict[str, list[tuple[str, float, Any]]] = {}
        for rec in records:
            p = _prompt(rec)
            ratio = rowinfo.reference_ratio(rec)
            if p and ratio is not None and ratio > 0:
                by_model.setdefault(str(p.get("model")), []).append(
                    (str(p.get("task")), ratio, rowinfo.reference_comparison(rec))
                )
        if not by_model:
            return None
        if len(by_model) == 1:
            ((model, points),) = by_model.items()
            labels = [t for t, _, _ in points]
            groups = [[(v, pr)] for _, v, pr in points]
            xlabel = f"task ({model})"
        else:
            labels = list(by_model)
            groups = [[(v, pr) for _, v, pr in by_model[m]] for m in labels]
            xlabel = "model"
        fig = self.figure(10.0, 4.2 if len(labels) <= 12 else 5.6)
        ax = fig.add_subplot()
        for i, group in enumerate(groups):
            vals = [v for v, _ in group]
            if len(vals) >= 5:
                ax.boxplot(
                    [vals],
                    positions=[i],
                    widths=0.5,
                    showfliers=False,
                    medianprops={"color": PALETTE["text"]},
                )
            n = len(vals)
            # Deterministic spread of the points so overlapping ones stay visible.
            xs = [i + (0.25 * (k / (n - 1) - 0.5) if n > 1 else 0.0) for k in range(n)]
            for x, (v, pr) in zip(xs, group, strict=True):
                if pr is not None:
                    ax.errorbar(
                        [x],
                        [v],
                        yerr=[[max(v - pr.low, 0.0)], [max(pr.high - v, 0.0)]],
                        fmt="none",
                        ecolor=PALETTE["muted"],
                        capsize=3,
                        linewidth=1,
                    )
            ax.scatter(xs, vals, s=22, color=COMPONENT_COLORS["cpu"], alpha=0.9, zorder=3)
        ax.axhline(
            1.0, color=PALETTE["muted"], linestyle="--", linewidth=1, label="reference solution = 1"
        )
        flat = [v for g in groups for v, _ in g]
        if max(flat) / min(flat) > 10:
            ax.set_yscale("log")
        if len(labels) > 12:  # side by side, 41 task names overprint each other
            ax.set_xticks(
                range(len(labels)),
                [rowinfo.middle(x, 24) for x in labels],
                rotation=90,
                fontsize=8,
            )
        else:
            ax.set_xticks(range(len(labels)), [rowinfo.middle(x, 30) for x in labels])
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("energy per call / reference's (ratio)")
        ax.set_title("Energy per call relative to the reference solution (below 1 is frugal)")
        ax.legend(loc="upper right", fontsize=9)
        return self.svg(
            fig,
            "chart-reference-ratio",
            "Ratio of the energy of one call to the reference solution's, per "
            + ("task" if len(by_model) == 1 else "model"),
        )

    # -- power trace ---------------------------------------------------------------------
    def power_trace(self, records: Sequence[Mapping[str, Any]]) -> str | None:
        traced = [r for r in records if isinstance(r.get("trace"), list) and r["trace"]]
        if not traced:
            return None
        traced.sort(key=lambda r: -(num(r.get("energy_j")) or 0.0))
        traced = traced[:TRACE_MAX]
        fig = self.figure(10.0, 0.6 + 2.3 * len(traced))
        axes = fig.subplots(len(traced), 1, squeeze=False)[:, 0]
        for ax, rec in zip(axes, traced, strict=True):
            methods = _sub(rec, "component_methods")
            series: dict[str, tuple[list[float], list[float]]] = {}
            for point in rec["trace"]:
                if not (isinstance(point, (list, tuple)) and len(point) == 2):
                    continue
                t, powers = num(point[0]), point[1]
                if t is None or not isinstance(powers, dict):
                    continue
                for comp, w in powers.items():
                    if (w := num(w)) is not None:
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
                    label=f"{comp} ({methods.get(comp) or rec.get('method') or 'unknown'})",
                )
            ax.set_title(_plain(str(rec.get("nodeid", "")), 90), fontsize=10, loc="left")
            ax.set_ylabel("power (W)")
            ax.set_ylim(bottom=0)
            if series:
                ax.legend(loc="upper right", fontsize=9)
        axes[-1].set_xlabel("time since the test's start (s)")
        return self.svg(fig, "chart-power-trace", "Power in watts over time in seconds")
