"""The page's tables: every record, and one row per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.format import NOT_MEASURED
from pytest_carbon.report.html.common import (
    _cell,
    _component_order,
    _components,
    _esc,
    _prompt,
    _sub,
    _th,
)
from pytest_carbon.report.totals import per_call_energy_j


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


def _records_table(records: Sequence[Mapping[str, Any]], rounds: int | None = None) -> str:
    """Every record, ranked as the terminal ranks them (energy per call first where the
    work was repeated); per-call rows lead with the energy of one call and the ratio to
    the reference, and their "energy" is labelled as the measuring window's."""
    if not records:
        return '<p class="note">No records.</p>'
    comps = _component_order(c for r in records for c in _components(r))
    prompts = any(_prompt(r) for r in records)
    per_call = any(per_call_energy_j(r) is not None for r in records)
    heads = [_th("test"), _th("outcome"), _th("method")]
    if per_call:
        heads.append(_th("energy per call", "num", "median energy of one call"))
    if prompts:
        heads.append(
            _th(
                "ratio to reference",
                "num",
                "energy per call / the reference solution's, with its 95% interval when "
                "measured in interleaved pairs",
            )
        )
    energy_title = "total energy in the measured window" + (
        f", the sum of {rounds} rounds" if rounds else ""
    )
    energy_label = "energy" + (f" ({rounds} rounds)" if rounds else "")
    if per_call:
        energy_label += " (window for per-call rows)"
    heads += [
        _th(energy_label, "num", energy_title),
        _th("dynamic", "num", "energy minus idle power x duration"),
        _th("time", "num"),
        _th("power", "num"),
        _th("EDP", "num", "energy-delay product"),
        _th("carbon", "num", "operational gCO2e"),
    ]
    heads += [_th(f"{c}", "num", f"{c} energy") for c in comps]
    if prompts:
        heads += [
            _th("model"),
            _th("task"),
            _th("correct"),
            _th("generation", "num", "carbon of the LLM call that wrote the code"),
            _th("generation method"),
        ]
    rows = []
    for rec in rowinfo.ranked(records):
        methods = _sub(rec, "component_methods")
        comp_vals = _components(rec)
        nodeid = str(rec.get("nodeid", ""))
        cells = [
            f'<th scope="row" data-v="{_esc(nodeid)}">{_esc(nodeid)}</th>',
            _cell(rec.get("outcome"), "outcome"),
            _cell(rec.get("method"), "method"),
        ]
        if per_call:
            cells.append(_cell(per_call_energy_j(rec), unit="J"))
        if prompts:
            ratio = rowinfo.reference_ratio(rec)
            pr = rowinfo.reference_comparison(rec)
            title = pr.describe("the reference") if pr is not None else None
            pct = _prompt(rec).get("energy_percentile")
            if isinstance(pct, dict) and pct.get("value") is not None:
                from pytest_carbon.compare.graded import describe

                title = f"{title or ''}; energy percentile {describe(pct)}".lstrip("; ")
            text = rowinfo.ratio_text(rec, compact=True)
            if ratio is None:
                cells.append(_cell(None))
            else:
                t_attr = f' title="{_esc(title)}"' if title else ""
                cells.append(f'<td class="num" data-v="{ratio!r}"{t_attr}>{_esc(text)}</td>')
        cells += [
            _cell(rec.get("energy_j"), unit="J"),
            _cell(rec.get("dynamic_energy_j"), unit="J"),
            _cell(rec.get("duration_s"), unit="s"),
            _cell(rec.get("power_w"), unit="W"),
            _cell(rec.get("edp_js"), unit="J·s"),
            _cell(rec.get("gco2e_g"), unit="gCO2e"),
        ]
        cells += [_cell(comp_vals.get(c), title=str(methods.get(c) or ""), unit="J") for c in comps]
        if prompts:
            p = _prompt(rec)
            gen = _sub(p, "generation")
            correct = p.get("correct")
            cells += [
                _cell(p.get("model"), "text"),
                _cell(p.get("task"), "text"),
                _cell(None if correct is None else ("yes" if correct else "no"), "text"),
                _cell(gen.get("gco2e_g"), unit="gCO2e"),
                _cell(gen.get("method"), "method"),
            ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<div class="tablewrap"><table class="sortable" id="records">'
        '<caption class="note" style="text-align:left;padding:.4rem .5rem">'
        f"{len(records)} records, the most energy per call first. Click a column header "
        f"to sort; {NOT_MEASURED} means not measured.</caption>"
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
