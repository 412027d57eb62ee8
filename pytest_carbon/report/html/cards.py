"""The summary cards at the top of the page: machine, sensors, grid, totals, equivalents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.carbon.accounting import J_PER_KWH
from pytest_carbon.report import format as fmt
from pytest_carbon.report.format import NOT_MEASURED, num
from pytest_carbon.report.html.common import _dl, _esc, _method_badge, _qty
from pytest_carbon.report.totals import Totals


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
    intensity = num(acc.get("intensity_g_per_kwh"))
    intensity_html = (
        _qty(f"{fmt.plain(intensity)} gCO2e/kWh") if intensity is not None else NOT_MEASURED
    )
    if acc.get("intensity_is_default"):
        intensity_html += (
            ' <span class="badge default" title="no location was given">default</span>'
        )
    source = _esc(acc.get("intensity_source") or "unknown")
    if acc.get("intensity_year"):
        source += f" ({_esc(acc['intensity_year'])})"
    pue = num(acc.get("pue"))
    items = [
        ("location", _esc(place) if place else "not given (world average used)"),
        ("intensity", intensity_html),
        ("source", f'<span class="src">{source}</span>'),
        ("PUE", fmt.setting(pue) if pue is not None else "unknown"),
    ]
    for key, label, unit in (("water_l_per_kwh", "water", "L/kWh"),):
        if (v := num(acc.get(key))) is not None:
            items.append((label, _qty(f"{fmt.plain(v)} {unit}")))
    return (
        f'<section class="card" aria-label="carbon accounting"><h3>Location and grid</h3>'
        f"{_dl(items)}</section>"
    )


def _totals_card(t: Totals) -> str:
    methods = (
        " ".join(f"{_method_badge(m)}&nbsp;{_esc(n)}" for m, n in sorted(t.methods.items()))
        or NOT_MEASURED
    )
    energy = t.energy_j
    kwh = f" ({_qty(fmt.si(energy / J_PER_KWH * 1000, 'Wh'))})" if energy is not None else ""
    rounds = f" over {t.rounds} rounds" if t.rounds else ""
    items = [
        ("energy", f'<span class="big">{_qty(fmt.energy(energy))}</span>{kwh}{rounds}'),
        ("carbon", f'<span class="big">{_qty(fmt.carbon(t.gco2e_g))}</span> (operational)'),
    ]
    if t.embodied_gco2e_g is not None:
        items.append(("embodied", f"{_qty(fmt.carbon(t.embodied_gco2e_g))} (manufacturing share)"))
    if t.water_l is not None:
        items.append(("water", _qty(fmt.water(t.water_l))))
    items += [
        ("measured time", _qty(fmt.duration(t.duration_s))),
        ("tests", f"{t.tests} ({t.measured} measured, {t.not_measured} not)"),
        ("methods", methods),
    ]
    if t.windows:
        items.append(
            (
                "windows",
                f"{t.windows} per-call item(s): energy = the measuring window",
            )
        )
    if t.phases:
        items.append(
            (
                "phases",
                "<ul>"
                + "".join(
                    f"<li><code>{_esc(name)}</code> {_qty(fmt.energy(ph['energy_j']))}, "
                    f"{_qty(fmt.carbon(ph['gco2e_g']))} in {ph['tests']} test(s)</li>"
                    for name, ph in t.phases.items()
                )
                + "</ul>",
            )
        )
    return (
        f'<section class="card" aria-label="totals"><h3>{_esc(t.label().capitalize())}</h3>'
        f"{_dl(items)}</section>"
    )


def _equivalences_card(t: Totals) -> str:
    if not t.energy_j or t.gco2e_g is None:
        return ""
    from pytest_carbon.carbon.equivalences import equivalences

    lines = [
        f"<li>{_esc(fmt.equivalence(item))}"
        f'<br><span class="src">{_esc(item.get("source"))}</span></li>'
        for item in equivalences(t.gco2e_g, t.energy_j)[:3]
    ]
    return (
        '<section class="card wide" aria-label="equivalences"><h3>Roughly the same as</h3>'
        f'<ul class="equiv">{"".join(lines)}</ul>'
        '<p class="note">For orientation only: orders of magnitude, not offsets.</p></section>'
    )
