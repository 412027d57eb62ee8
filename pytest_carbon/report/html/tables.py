"""The page's tables: every record, and one row per model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.report import format as fmt
from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.format import NOT_MEASURED, num
from pytest_carbon.report.html.common import (
    _cell,
    _component_order,
    _components,
    _esc,
    _prompt,
    _text,
    _th,
    _unit_text,
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


#: The "All records" table's script: search, filters, sorting and grouping by file over
#: rows that are only turned into elements when shown.
RECORDS_JS = r"""
(function () {
  var table = document.getElementById('records');
  var src = document.getElementById('records-data');
  if (!table || !src) { return; }
  var D = JSON.parse(src.textContent);
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var ncol = heads.length;
  var PAGE = 200;
  var PREFIX = {T: 1e12, G: 1e9, M: 1e6, k: 1e3, m: 1e-3, '\u00b5': 1e-6, n: 1e-9, p: 1e-12};
  // A shown text back to a number for sorting: "1.23 mJ" -> 0.00123, "1.50 min" -> 90.
  function parse(text) {
    if (text === null || text === undefined || text === '') { return null; }
    var m = /^([-+\u2212]?[\d,]*\.?\d+)\s*(\S*)/.exec(text);
    if (!m) { return null; }
    var v = parseFloat(m[1].replace(/,/g, '').replace('\u2212', '-'));
    var u = m[2];
    if (u === 'min') { return v * 60; }
    if (u === 'h') { return v * 3600; }
    var f = PREFIX[u.charAt(0)];
    if (f && u.length > 1 && !/^(m|min)$/.test(u)) { v *= f; }
    return v;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  var rows = [];
  if (D.rows) {
    D.rows.forEach(function (r, i) {
      var path = D.files[r[0]][0];
      rows.push({i: i, f: r[0], o: r[2], m: r[3], d: r,
                 s: (path + '::' + r[1]).toLowerCase(), tr: null});
    });
  } else {
    Array.prototype.forEach.call(body.rows, function (tr, i) {
      rows.push({i: i, f: +tr.getAttribute('data-f'), o: tr.getAttribute('data-o'),
                 m: tr.getAttribute('data-m'), d: null,
                 s: tr.cells[0].getAttribute('data-v').toLowerCase(), tr: tr});
    });
  }
  // Text with a line-break opportunity after each "/", "::" and "[" (as the HTML rows).
  function breakable(parent, text) {
    text.split(/(?<=\/|::|\[)/).forEach(function (part, i) {
      if (i) { parent.appendChild(document.createElement('wbr')); }
      parent.appendChild(document.createTextNode(part));
    });
  }
  function build(row) {
    if (row.tr) { return row.tr; }
    var r = row.d, tr = el('tr'), path = D.files[r[0]][0];
    var th = el('th');
    th.scope = 'row';
    th.setAttribute('data-v', path ? path + '::' + r[1] : r[1]);
    if (path) { var f = el('span', 'f'); breakable(f, path + '::'); th.appendChild(f); }
    breakable(th, r[1]);
    tr.appendChild(th);
    var oc = D.outcomes[r[2]] || [r[2] || '\u2014', 'muted'];
    var to = el('td', oc[1], oc[0]);
    to.setAttribute('data-v', r[2]);
    tr.appendChild(to);
    var tm = el('td');
    tm.setAttribute('data-v', r[3]);
    var badge = /^(measured|attributed|estimated)$/.test(r[3]) ? r[3] : 'other';
    tm.appendChild(r[3] ? el('span', 'badge ' + badge, r[3]) : el('span', 'null', '\u2014'));
    tr.appendChild(tm);
    for (var c = 4; c < r.length; c++) {
      var td;
      if (r[c] === null) {
        td = el('td', 'num null', '\u2014');
        td.title = 'not measured';
        td.setAttribute('data-v', '');
      } else {
        td = el('td', 'num', r[c]);
        var k = parse(r[c]);
        td.setAttribute('data-v', k === null ? '' : String(k));
      }
      tr.appendChild(td);
    }
    row.tr = tr;
    return tr;
  }
  function key(row, col) {
    if (col === 0) { return row.s; }
    if (row.tr) { var v = row.tr.cells[col].getAttribute('data-v'); return v === '' ? null : v; }
    if (col === 1) { return row.o || null; }
    if (col === 2) { return row.m || null; }
    return parse(row.d[col + 1]);  // row: file, name, outcome, method, cells
  }
  var q = document.getElementById('rec-q'), fo = document.getElementById('rec-o'),
      fm = document.getElementById('rec-m'), fg = document.getElementById('rec-g'),
      count = document.getElementById('rec-n');
  var state = {sort: null, asc: true, open: {}, more: {}, flat: PAGE};
  function matching() {
    var text = q.value.trim().toLowerCase(), o = fo.value, m = fm.value;
    var out = rows.filter(function (r) {
      return (!text || r.s.indexOf(text) >= 0) && (!o || r.o === o) && (!m || r.m === m);
    });
    if (state.sort !== null) {
      var col = state.sort, numeric = heads[col].getAttribute('data-type') === 'num';
      var sign = state.asc ? 1 : -1;
      out.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        if (x === null || y === null) {
          return x === y ? a.i - b.i : (x === null ? 1 : -1);  // not measured: last
        }
        var c = numeric ? parseFloat(x) - parseFloat(y) : String(x).localeCompare(String(y));
        return c ? sign * c : a.i - b.i;
      });
    }
    return out;
  }
  function moreRow(n, onclick) {
    var tr = el('tr', 'more'), td = el('td');
    td.colSpan = ncol;
    var b = el('button', null, 'show ' + n + ' more');
    b.type = 'button';
    b.addEventListener('click', onclick);
    td.appendChild(b);
    tr.appendChild(td);
    return tr;
  }
  function render() {
    var list = matching(), frag = document.createDocumentFragment();
    var filtered = list.length < rows.length;
    table.classList.toggle('grouped', fg.checked);
    count.textContent = (filtered ? list.length + ' of ' : '') + rows.length + ' records';
    if (fg.checked) {
      var groups = {};
      list.forEach(function (r) { (groups[r.f] = groups[r.f] || []).push(r); });
      var few = list.length <= PAGE;
      D.files.forEach(function (file, fi) {
        var g = groups[fi];
        if (!g) { return; }
        var open = state.open[fi] !== undefined ? state.open[fi] : few;
        var tr = el('tr', 'group'), th = el('th');
        th.colSpan = ncol;
        th.scope = 'rowgroup';
        var b = el('button', null, (open ? '\u25be ' : '\u25b8 ') + (file[0] || '(no file)'));
        b.type = 'button';
        b.setAttribute('aria-expanded', open ? 'true' : 'false');
        b.addEventListener('click', function () { state.open[fi] = !open; render(); });
        th.appendChild(b);
        var n = (g.length < file[1] ? g.length + ' of ' : '') + file[1] +
          ' record' + (file[1] === 1 ? '' : 's');
        th.appendChild(el('span', 'note', ' ' + n + (file[2] ? ' \u00b7 ' + file[2] : '')));
        tr.appendChild(th);
        frag.appendChild(tr);
        if (!open) { return; }
        var limit = state.more[fi] || PAGE;
        g.slice(0, limit).forEach(function (r) { frag.appendChild(build(r)); });
        if (g.length > limit) {
          frag.appendChild(moreRow(Math.min(PAGE * 5, g.length - limit), function () {
            state.more[fi] = limit + PAGE * 5; render();
          }));
        }
      });
    } else {
      list.slice(0, state.flat).forEach(function (r) { frag.appendChild(build(r)); });
      if (list.length > state.flat) {
        frag.appendChild(moreRow(Math.min(PAGE * 5, list.length - state.flat), function () {
          state.flat += PAGE * 5; render();
        }));
      }
    }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    body.appendChild(frag);
  }
  heads.forEach(function (th, col) {
    var button = th.querySelector('button');
    if (!button) { return; }
    button.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      state.sort = col;
      state.asc = asc;
      render();
    });
  });
  var timer = null;
  q.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.open = {}; state.flat = PAGE; render(); }, 120);
  });
  [fo, fm, fg].forEach(function (e) {
    e.addEventListener('change', function () { state.open = {}; state.flat = PAGE; render(); });
  });
  render();
})();
"""

#: Up to this many records, the rows are written into the page as HTML; above it, as
#: compact JSON that the page's script turns into rows only when they are shown (a page of
#: 8,000 records stays light and opens fast).
INLINE_MAX = 1000
#: From this many records (and more than one file) the table opens grouped by file.
GROUP_FROM = 20


def _breakable(text: str) -> str:
    """Escaped, with a line-break opportunity after each ``/``, ``::`` and ``[``: a long id
    wraps between its parts, not in the middle of a name."""
    out = _esc(text)
    for sep in ("/", "::", "["):
        out = out.replace(sep, sep + "<wbr>")
    return out


def _file_and_name(nodeid: str) -> tuple[str, str]:
    """``("tests/test_x.py", "TestA::test_b[1]")``: the file is the rows' common part, shown
    once per group; a nodeid without ``::`` is its own name, in no file."""
    if "::" in nodeid:
        path, name = nodeid.split("::", 1)
        return path, name
    return "", nodeid


def _columns(records: Sequence[Mapping[str, Any]], rounds: int | None) -> list[_Col]:
    """The columns: what fits beside the test's name at 1400 px without scrolling sideways.
    Dynamic energy, power and the prompt fields are in the JSON report and the Models table."""
    comps = _component_order(c for r in records for c in _components(r))
    per_call = any(per_call_energy_j(r) is not None for r in records)
    prompts = any(_prompt(r) for r in records)
    cols: list[_Col] = []
    if per_call:
        cols.append(_Col("energy per call", "J", "median energy of one call", per_call_energy_j))
    if prompts:
        cols.append(
            _Col(
                "ratio to reference",
                "×",
                "energy per call / the reference solution's, with its 95% interval when "
                "measured in interleaved pairs (≈1: indistinguishable)",
                rowinfo.reference_ratio,
            )
        )
    energy_title = "total energy in the measured window" + (
        f", the sum of {rounds} rounds" if rounds else ""
    )
    energy_label = "energy" + (f" ({rounds} rounds)" if rounds else "")
    if per_call:
        energy_label += " (window)"
        energy_title += "; for a per-call row, the whole measuring window of repeated calls"
    cols += [
        _Col(energy_label, "J", energy_title, lambda r: r.get("energy_j")),
        _Col("time", "s", "duration of the measured window", lambda r: r.get("duration_s")),
        _Col("EDP", "J·s", "energy-delay product: energy x time", lambda r: r.get("edp_js")),
        _Col("carbon", "gCO2e", "operational gCO2e", lambda r: r.get("gco2e_g")),
    ]
    for c in comps:
        cols.append(_Col(c, "J", f"{c} energy", lambda r, c=c: _components(r).get(c)))
    return cols


class _Col:
    def __init__(self, label: str, unit: str, title: str, get: Any) -> None:
        self.label, self.unit, self.title, self.get = label, unit, title, get

    def text(self, rec: Mapping[str, Any]) -> str | None:
        if self.unit == "×":
            if rowinfo.reference_ratio(rec) is None:
                return None
            return rowinfo.ratio_text(rec, compact=True)
        return _text(self.get(rec), self.unit)

    def cell(self, rec: Mapping[str, Any]) -> str:
        if self.unit == "×":
            ratio = rowinfo.reference_ratio(rec)
            if ratio is None:
                return _cell(None)
            pr = rowinfo.reference_comparison(rec)
            title = pr.describe("the reference") if pr is not None else None
            pct = _prompt(rec).get("energy_percentile")
            if isinstance(pct, dict) and pct.get("value") is not None:
                from pytest_carbon.compare.graded import describe

                title = f"{title or ''}; energy percentile {describe(pct)}".lstrip("; ")
            t_attr = f' title="{_esc(title)}"' if title else ""
            text = rowinfo.ratio_text(rec, compact=True)
            return f'<td class="num" data-v="{ratio!r}"{t_attr}>{_esc(text)}</td>'
        return _cell(self.get(rec), unit=self.unit)


def _records_table(records: Sequence[Mapping[str, Any]], rounds: int | None = None) -> str:
    """Every record, ranked as the terminal ranks them (energy per call first where the
    work was repeated), searchable, filterable by outcome and method, and grouped by file
    (the file said once per group, with its record count and energy). Up to
    :data:`INLINE_MAX` records the rows are HTML; above, compact JSON rendered on demand
    by the page's script, a group's rows only once it is opened."""
    if not records:
        return '<p class="note">No records.</p>'
    cols = _columns(records, rounds)
    ordered = rowinfo.ranked(records)
    files: dict[str, list[Any]] = {}
    split = [_file_and_name(str(r.get("nodeid", ""))) for r in ordered]
    for rec, (path, _) in zip(ordered, split, strict=True):
        entry = files.setdefault(path, [path, 0, 0.0, 0])
        entry[1] += 1
        if (e := num(rec.get("energy_j"))) is not None:
            entry[2] += e
            entry[3] += 1
    index = {path: i for i, path in enumerate(files)}
    file_rows = [
        [path, n, _unit_text(fmt.energy(e)) if measured else None]
        for path, n, e, measured in files.values()
    ]
    inline = len(records) <= INLINE_MAX
    # Grouping helps where files hold several tests (a prompt suite has one task a file).
    grouped = len(records) >= GROUP_FROM and 1 < len(files) <= len(records) / 2
    heads = [_th("test"), _th("outcome"), _th("method")]
    heads += [_th(c.label, "num", c.title) for c in cols]
    rows: list[str] = []
    data_rows: list[list[Any]] = []
    for rec, (path, name) in zip(ordered, split, strict=True):
        nodeid = str(rec.get("nodeid", ""))
        outcome = str(rec.get("outcome") or "")
        method = str(rec.get("method") or "")
        if inline:
            where = f'<span class="f">{_breakable(path + "::")}</span>' if path else ""
            cells = [
                f'<th scope="row" data-v="{_esc(nodeid)}">{where}{_breakable(name)}</th>',
                _cell(outcome or None, "outcome"),
                _cell(method or None, "method"),
            ]
            cells += [c.cell(rec) for c in cols]
            rows.append(
                f'<tr data-f="{index[path]}" data-o="{_esc(outcome)}" data-m="{_esc(method)}">'
                f"{''.join(cells)}</tr>"
            )
        else:
            data_rows.append([index[path], name, outcome, method, *(c.text(rec) for c in cols)])
    outcomes = sorted({str(r.get("outcome") or "") for r in records} - {""})
    methods = sorted({str(r.get("method") or "") for r in records} - {""})
    data: dict[str, Any] = {
        "files": file_rows,
        "grouped": grouped,
        "outcomes": {w: list(rowinfo.outcome(w)) for w in outcomes},
        "units": [c.unit for c in cols],
    }
    if not inline:
        data["rows"] = data_rows
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>, "</" would end the element: JSON escapes it as "<\/".
    payload = payload.replace("</", "<\\/")
    options = "".join(
        f'<option value="{_esc(w)}">{_esc(rowinfo.outcome(w)[0])}</option>' for w in outcomes
    )
    method_options = "".join(f'<option value="{_esc(m)}">{_esc(m)}</option>' for m in methods)
    controls = (
        '<div class="rec-controls" role="search">'
        '<label>Search <input type="search" id="rec-q" placeholder="part of a test id" '
        'autocomplete="off"></label>'
        '<label>Outcome <select id="rec-o"><option value="">all</option>'
        f"{options}</select></label>"
        '<label>Method <select id="rec-m"><option value="">all</option>'
        f"{method_options}</select></label>"
        f'<label><input type="checkbox" id="rec-g"{" checked" if grouped else ""}> '
        "group by file</label>"
        f'<span id="rec-n" class="note" aria-live="polite">{len(records)} records</span></div>'
    )
    body = "".join(rows)
    widths = "".join(
        '<col class="c-ratio">' if c.unit == "×" else '<col class="c-num">' for c in cols
    )
    return (
        f"{controls}"
        f'<script type="application/json" id="records-data">{payload}</script>'
        '<div class="tablewrap"><table class="records" id="records">'
        '<caption class="note" style="text-align:left;padding:.4rem .5rem">'
        f"{len(records)} records in {len(files)} file{'s' if len(files) != 1 else ''}, "
        "the most energy per call first. Click a column header to sort, a file to open "
        f"it; {NOT_MEASURED} means not measured.</caption>"
        f'<colgroup><col class="c-test"><col class="c-outcome"><col class="c-method">{widths}'
        "</colgroup>"
        f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{body}</tbody></table></div>"
        + (
            ""
            if inline
            else f'<noscript><p class="note">The {len(records)} rows are drawn by the '
            "page's script: enable JavaScript, or read the JSON report.</p></noscript>"
        )
    )
