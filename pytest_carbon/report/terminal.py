"""The terminal summary: a table of tests by energy, the totals, and how they were obtained."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_carbon.report.units import si

if TYPE_CHECKING:
    from pytest_carbon.session import CarbonSession

METHOD_NOTE = (
    "methods: measured = hardware counter; estimated = model (CPU time x power per core, "
    "memory x time); attributed = share of a machine-wide counter by CPU time. "
    "per call: median energy of one call, where the work was repeated."
)


def _fit(text: str, width: int) -> str:
    """Fit a node id: drop directories first, then the file, then cut from the left, so
    the test's own name (what tells rows apart) survives."""
    if len(text) <= width:
        return text.ljust(width)
    path, sep, name = text.partition("::")
    if sep:
        for candidate in (path.rsplit("/", 1)[-1] + sep + name, name):
            if len(candidate) <= width:
                return candidate.ljust(width)
    return "…" + text[-(width - 1) :]


def _per_call(r: Mapping[str, Any]) -> float | None:
    per_call = r.get("per_call") or {}
    value = (per_call.get("energy_j") or {}).get("median")
    return float(value) if value is not None else None


def _row(name: str, cells: Sequence[str], cols: Sequence[tuple[str, int]], name_w: int) -> str:
    return _fit(name, name_w) + "".join(
        " " + str(v).rjust(w)[-w:] for v, (_, w) in zip(cells, cols, strict=True)
    )


def table_lines(
    records: Sequence[Mapping[str, Any]], width: int = 100, limit: int | None = 20
) -> list[str]:
    """Rows sorted by energy (unmeasured last), per-component columns, a total line."""
    comps: list[str] = []
    for r in records:
        for c in r.get("components") or {}:
            if c not in comps:
                comps.append(c)
    order = {"cpu": 0, "dram": 1, "gpu": 2}
    comps.sort(key=lambda c: (order.get(c, 9), c))
    per_call = any(_per_call(r) is not None for r in records)
    cols = (
        [("energy", 8)]
        + [(c, 8) for c in comps]
        + ([("per call", 8)] if per_call else [])
        + [("method", 10), ("EDP", 9), ("CO2e", 8), ("time", 7)]
    )
    name_w = max(width - sum(w + 1 for _, w in cols), 24)
    header = _row("test", [n for n, _ in cols], cols, name_w)
    rule = "-" * len(header)
    lines = [header, rule]
    ordered = sorted(records, key=lambda r: (r.get("energy_j") is None, -(r.get("energy_j") or 0)))
    shown = ordered if limit is None else ordered[:limit]
    for r in shown:
        measured = r.get("energy_j") is not None
        cells = [si(r.get("energy_j"), "J")]
        cells += [si((r.get("components") or {}).get(c), "J") if measured else "—" for c in comps]
        if per_call:
            cells.append(si(_per_call(r), "J"))
        cells += [
            r.get("method") or "not meas.",
            si(r.get("edp_js"), "J·s"),
            si(r.get("gco2e_g"), "g"),
            si(r.get("duration_s"), "s"),
        ]
        lines.append(_row(r["nodeid"], cells, cols, name_w))
    if limit is not None and len(ordered) > limit:
        lines.append(f"... {len(ordered) - limit} more (use -v or --carbon-top=N to see them)")
    done = [r for r in records if r.get("energy_j") is not None]
    methods = sorted({r["method"] for r in done if r.get("method")})
    cells = [si(sum(r["energy_j"] for r in done), "J")]
    cells += [si(sum((r.get("components") or {}).get(c, 0.0) for r in done), "J") for c in comps]
    if per_call:
        cells.append("")
    cells += [
        methods[0] if len(methods) == 1 else ("mixed" if methods else "—"),
        "",
        si(sum(r.get("gco2e_g") or 0.0 for r in done), "g"),
        si(sum(r.get("duration_s") or 0.0 for r in done), "s"),
    ]
    not_measured = len(records) - len(done)
    label = f"total ({len(done)} measured" + (
        f", {not_measured} not measured)" if not_measured else ")"
    )
    lines += [rule, _row(label, cells, cols, name_w)]
    return lines


def header_lines(cs: CarbonSession) -> list[str]:
    acc = cs.accounting
    where = acc.region or acc.country or "world average"
    default = " (default: set --carbon-country)" if acc.is_default else ""
    year = f", {acc.intensity_year}" if acc.intensity_year else ""
    pue_note = " (default)" if cs.settings.sources.get("carbon_pue") == "default" else ""
    lines = [
        f"location: {where}, {acc.intensity_g_per_kwh:g} gCO2e/kWh{default}"
        f" [{acc.intensity_source}{year}]",
        f"PUE: {acc.pue:g}{pue_note}",
    ]
    sensors = []
    for st in cs.sensor_statuses():
        if st["available"]:
            detail = st.get("details", {}).get("cpu_source")
            sensors.append(
                f"{st['name']} ({st['method']}: {', '.join(st['components'])}"
                + (f"; {detail}" if detail else "")
                + ")"
            )
    if sensors:
        lines.insert(0, "sensors: " + "; ".join(sensors))
    idle = cs.idle_power_w
    if idle:
        lines.append(
            "idle power: "
            + ", ".join(f"{c} {si(w, 'W')}" for c, w in idle.items())
            + " (subtracted for dynamic_energy_j)"
        )
    return lines


def terminal_summary(cs: CarbonSession, tr: Any) -> None:
    verbose = tr.config.getoption("verbose", 0) > 0
    width = max(min(tr.config.get_terminal_writer().fullwidth, 140), 80)
    tr.write_sep("=", "pytest-carbon: energy and carbon")
    records = cs.records
    if not records:
        tr.write_line("no test was measured")
    else:
        for line in header_lines(cs):
            tr.write_line(line)
        tr.write_line("")
        limit = None if verbose else cs.settings.carbon_top
        for line in table_lines(records, width=width, limit=limit):
            tr.write_line(line)
        tr.write_line(METHOD_NOTE)
        _equivalences(cs, records, tr)
    if any(r.get("prompt") for r in records):
        from pytest_carbon.prompts.summary import model_summary, render_model_summary

        tr.write_line("")
        for line in render_model_summary(model_summary(records)):
            tr.write_line(line)
    for line in getattr(cs, "comparison_lines", []):
        tr.write_line(line)
    warnings = list(cs.warnings)
    per_record = sorted({w for r in records for w in r.get("warnings") or []})
    if per_record and not verbose:
        warnings.append(f"{len(per_record)} distinct per-test caveat(s); -v lists them")
    elif per_record:
        warnings.extend(per_record)
    for w in warnings:
        tr.write_line(f"warning: {w}", yellow=True)
    for kind, path in getattr(cs, "written", []):
        tr.write_line(f"{kind} report: {path}")


def _equivalences(cs: CarbonSession, records: Sequence[Mapping[str, Any]], tr: Any) -> None:
    from pytest_carbon.carbon.equivalences import equivalences

    measured = [r for r in records if r.get("energy_j") is not None]
    total_e = sum(r["energy_j"] for r in measured)
    total_g = sum(r.get("gco2e_g") or 0.0 for r in measured)
    if total_e <= 0:
        return  # nothing measured: "0 km by car" says nothing
    # Plain arithmetic on constants: nothing to catch.
    items = equivalences(total_g, total_e)
    if items:
        text = "; ".join(f"{i['value']:.3g} {i['unit']} ({i['label']})" for i in items[:3])
        tr.write_line(f"equivalent to: {text}")
