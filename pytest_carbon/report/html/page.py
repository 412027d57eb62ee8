"""Render a JSON report as one self-contained HTML page: header card, inline-SVG charts, tables.

The page makes no network request: CSS and the table-sorting script are inline, charts are
inline SVG drawn by matplotlib (the ``[html]`` extra, imported only in
:mod:`.charts`, inside the render call), text uses the reader's system fonts, and a
Content-Security-Policy forbids any fetch. Every string from the report (node ids,
model names, sources) is escaped.

Every number is shown with the method that produced it: ``measured``, ``estimated`` or
``attributed``. In the per-test chart the method is the bar's hatching (none, crosses,
diagonal lines) *and* a text label at the end of the bar. Null energies (items that
measured nothing) are skipped in sums and charts and shown as "—" ("not measured").
Prompt items lead with the energy of one call and the ratio to the reference.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_carbon.report.html.cards import (
    _accounting_card,
    _equivalences_card,
    _machine_card,
    _machines,
    _sensors_card,
    _totals_card,
)
from pytest_carbon.report.html.charts import _Charts, _rc
from pytest_carbon.report.html.common import (
    PALETTE,
    TOP_N,
    TRACE_MAX,
    _esc,
    _figure,
    _prompt,
    _records,
    _sub,
)
from pytest_carbon.report.html.compare import _comparison_section, banner
from pytest_carbon.report.html.study import CSS as STUDY_CSS
from pytest_carbon.report.html.study import models_table, study_section
from pytest_carbon.report.html.tables import RECORDS_JS, _records_table, model_rows
from pytest_carbon.report.totals import compute
from pytest_carbon.results.atomic import write_text_atomic

_CSS = """
:root{{color-scheme:light}}
*{{box-sizing:border-box}}
body{{margin:0;background:{bg};color:{text};
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}}
main{{max-width:1320px;margin:0 auto;padding:1.2rem 1.2rem 3rem}}
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
.q{{white-space:nowrap}}
.rec-controls{{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center;
 margin:.4rem 0 .6rem}}
.rec-controls input[type=search]{{width:18rem;font:inherit;padding:.15rem .3rem}}
.rec-controls select{{font:inherit}}
#records{{table-layout:fixed}} #records col.c-test{{width:auto}}
#records col.c-num{{width:5.7rem}} #records col.c-ratio{{width:8.5rem}}
#records col.c-outcome{{width:5rem}} #records col.c-method{{width:6.4rem}}
#records th[scope=row]{{min-width:0;word-break:normal;overflow-wrap:anywhere}}
#records.grouped .f{{display:none}} #records .f{{color:{muted}}}
#records tr.group th{{background:{card};font-weight:600;font-family:inherit}}
#records tr.group button,#records tr.more button{{all:unset;cursor:pointer;color:{attributed_text}}}
#records tr.group button:focus-visible,#records tr.more button:focus-visible{{
 outline:2px solid {attributed_text}}}
thead button{{all:unset;cursor:pointer;font-weight:600}}
thead button:focus-visible{{outline:2px solid {attributed_text};outline-offset:2px}}
th[aria-sort=ascending] button::after{{content:" ▲"}}
th[aria-sort=descending] button::after{{content:" ▼"}}
.null{{color:{muted}}} .bad{{color:{bad_text};font-weight:600}} .good{{color:{good_text}}}
.muted{{color:{muted}}} td.warn{{background:{warn_bg};color:{warn_text}}}
.banner{{border-radius:8px;padding:.7rem 1rem;margin:.6rem 0 1rem;font-size:1.05rem;
 border:2px solid}} .banner ul{{margin:.3rem 0 0;padding-left:1.2rem;font-size:.92rem}}
.banner.fail{{background:#fdecec;color:{bad_text};border-color:{bad_text}}}
.banner.pass{{background:{measured_bg};color:{measured_text};border-color:{measured_text}}}
.banner.info{{background:{card};color:{text};border-color:{border}}}
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


def render_html(
    report: Mapping[str, Any],
    comparison: Any = None,
    *,
    top_n: int = TOP_N,
) -> str:
    """The report as one self-contained HTML document (a str).

    ``comparison``: the changes against a baseline (``baseline.Comparison`` or its
    ``to_json()`` dict), rendered as tables when given.
    Charts need matplotlib (the ``[html]`` extra: ``pip install -e '.[html]'`` in a clone of
    pytest-carbon); without it the page
    says so and shows everything else. Lone surrogates in any string are shown escaped.
    """
    if not isinstance(report, Mapping):
        raise TypeError(f"render_html expects a report dict, got {type(report).__name__}")
    from pytest_carbon.sandbox.safe_text import scrub_surrogates

    # A lone surrogate stops matplotlib's text layout and every encoder: escaped first.
    report = scrub_surrogates(dict(report))
    records = _records(report)
    prompt_records = [r for r in records if _prompt(r)]
    t = compute(records)
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
            "<code>pip install -e '.[html]'</code> in a clone of pytest-carbon (or "
            "<code>pip install matplotlib</code>). Tables follow.</p>"
        )
    rows = model_rows(prompt_records) if prompt_records else []
    if drawer is not None:
        # A chart must never fail a test run: matplotlib's warnings (a glyph missing from the
        # font, a layout that does not fit) are not the user's test failures.
        with warnings.catch_warnings(), drawer.mpl.rc_context(_rc()):
            warnings.simplefilter("ignore")
            charts["energy"] = drawer.energy_per_test(records, top_n, t.rounds)
            charts["per_call"] = drawer.energy_per_call(records, top_n)
            if prompt_records:
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
        f"<style>{_CSS.format(**PALETTE)}{STUDY_CSS}</style></head><body><main>",
        "<header><h1>pytest-carbon report</h1>",
        f'<p class="sub">{_esc(created or "date unknown")} · schema '
        f"{_esc(report.get('schema', 'unknown'))} · pytest-carbon "
        f"{_esc(report.get('version', '?'))}</p></header>",
    ]
    if comparison is not None:
        # The verdict opens the page: the reader came to learn whether the run passed.
        as_json = comparison.to_json() if hasattr(comparison, "to_json") else comparison
        if isinstance(as_json, Mapping) and isinstance(as_json.get("changes"), list):
            out.append(banner(as_json))
    if report.get("complete") is False:
        out.append(
            '<p class="warn"><strong>Incomplete run:</strong> '
            + _esc(report.get("incomplete_reason") or "the session was interrupted")
            + "; totals cover only the tests that finished.</p>"
        )
    if prompt_records:
        # The study's headline and leaderboard: the first screen of a prompt-suite page.
        out.append(study_section(prompt_records))
    out.append('<section aria-label="summary" class="cards">')
    out += [_machine_card(m) for m in machines] or [_machine_card({})]
    out += [_sensors_card(machines), _accounting_card(acc), _totals_card(t), _equivalences_card(t)]
    out.append("</section>")
    from pytest_carbon.report.caveat_text import merged
    from pytest_carbon.results.caveats import kind_lines, kinds_of_report, trust_note

    report_warnings, kinds = merged(report.get("warnings") or [], kinds_of_report(report))
    report_warnings += kind_lines(kinds, examples=3)
    trust = trust_note(rec.get("method") or "" for rec in report.get("tests") or [])
    if trust:
        report_warnings.append(trust)
    if report_warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in report_warnings)
        out.append(f'<div class="warn" role="note"><strong>Caveats</strong><ul>{items}</ul></div>')
    out.append(chart_note)

    if comparison is not None:
        if hasattr(comparison, "to_json"):  # a baseline.Comparison
            comparison = comparison.to_json()
        out.append(_comparison_section(comparison))
    out.append('<section aria-labelledby="h-energy"><h2 id="h-energy">Energy</h2>')
    if charts.get("per_call"):
        out.append(
            _figure(
                charts.get("per_call"),
                "The energy of one call, median of the calls measured: what a prompt item "
                "ranks by. Each bar says its method and its ratio to the reference solution "
                "(with its 95% interval where it was measured in interleaved pairs; ≈1: "
                "indistinguishable from the reference).",
            )
        )
    if t.measured:
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
        out.append(models_table(rows))
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
                "Each point is one correct sample, with its 95% interval where one was "
                "measured; a box spans the middle half where a model has 5 points or more.",
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

    out.append('<section aria-labelledby="h-records"><h2 id="h-records">All records</h2>')
    out.append(_records_table(records, t.rounds))
    out.append("</section>")
    out.append(
        '<footer><p class="note">Made by pytest-carbon. Energy is the total in each '
        "test's window; dynamic energy excludes the idle baseline. Carbon = energy "
        "(kWh) × PUE × grid intensity. Embodied emissions and water, when asked for, are "
        "reported beside it, never added to it.</p></footer>"
    )
    out.append(f"</main><script>{RECORDS_JS}{_JS}</script></body></html>\n")
    return "\n".join(part for part in out if part)


def write_html(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    comparison: Any = None,
) -> Path:
    """Render and write the page atomically (a temporary file, then a rename)."""
    return write_text_atomic(path, render_html(report, comparison))
