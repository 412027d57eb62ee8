"""The comparison with a baseline: a pass/fail banner first, then totals and changes.

Reads ``Comparison.to_json()`` (compare/baseline.py) as it is; any other dict of rows is
shown as a plain table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_carbon.report import format as fmt
from pytest_carbon.report.format import NOT_MEASURED, num
from pytest_carbon.report.html.common import _cell, _dl, _esc, _th

#: Units of the comparison's metrics, for the cells (gco2e in the one carbon format).
_UNITS = {
    "energy": "J",
    "dynamic_energy": "J",
    "duration": "s",
    "gco2e": "gCO2e",
    "edp": "J·s",
}
_METRIC_WORDS = {"gco2e": "gCO2e", "duration": "time", "dynamic_energy": "dynamic-energy"}


def banner(comparison: Mapping[str, Any]) -> str:
    """The verdict at a glance: FAIL with the regressions that fail the run (one threshold
    decides both), PASS when thresholds were given and none was crossed, else a note."""
    failures = [f for f in comparison.get("failures") or [] if isinstance(f, dict)]
    specs = [str(s) for s in comparison.get("fail") or []]
    if failures:
        by_metric: dict[str, int] = {}
        for f in failures:
            word = _METRIC_WORDS.get(str(f.get("metric")), str(f.get("metric")))
            by_metric[word] = by_metric.get(word, 0) + 1
        counts = ", ".join(
            f"{n} {w} regression{'s' if n > 1 else ''}" for w, n in by_metric.items()
        )
        items = "".join(
            f"<li><code>{_esc(f.get('nodeid'))}</code>: {_esc(f.get('metric'))} "
            f"{_esc(fmt.change(f.get('change')))} beyond {_esc(f.get('threshold'))}</li>"
            for f in failures[:10]
        )
        more = f"<li>and {len(failures) - 10} more</li>" if len(failures) > 10 else ""
        return (
            '<div class="banner fail" role="status"><strong>FAIL</strong> '
            f"{_esc(counts)}: the run fails.<ul>{items}{more}</ul></div>"
        )
    if specs:
        return (
            '<div class="banner pass" role="status"><strong>PASS</strong> no regression '
            f"beyond {_esc(', '.join(specs))}.</div>"
        )
    return (
        '<div class="banner info" role="status"><strong>No threshold</strong> '
        "(--carbon-compare-fail): the changes below are shown, nothing fails.</div>"
    )


_STATUS_ORDER = ("regression", "improvement", "unmeasured", "new", "missing", "noise")


def _comparison_section(comparison: Mapping[str, Any]) -> str:
    """The changes against a baseline. Knows ``Comparison.to_json``
    (totals, counts, changes with a status); any other rows are shown as a plain table."""
    changes = comparison.get("changes")
    if not (isinstance(changes, list) and all(isinstance(c, dict) for c in changes)):
        return _generic_comparison(comparison)
    parts = ['<section aria-labelledby="h-compare"><h2 id="h-compare">Against the baseline</h2>']
    info = [("baseline", _esc(comparison.get("base", "baseline")))]
    current = comparison.get("current")
    if current and current != "this run":  # "this run: this run" says nothing
        info.append(("compared run", _esc(current)))
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
            base, cur = num(pair.get("base")), num(pair.get("current"))
            change = (cur / base - 1) * 100 if base and cur is not None else None
            rows.append(
                f'<tr><th scope="row" data-v="{_esc(metric)}">{_esc(metric)}</th>'
                + _cell(base, unit=_UNITS.get(str(metric), ""))
                + _cell(cur, unit=_UNITS.get(str(metric), ""))
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
        return order, -abs(num(c.get("change")) or 0.0)

    notable: list[str] = []
    quiet: list[str] = []
    for c in sorted(changes, key=rank):
        status = str(c.get("status") or "")
        cls = {"regression": "bad", "improvement": "good"}.get(status, "")
        change = num(c.get("change"))
        detail = str(c.get("detail") or "")
        title = f' title="{_esc(detail)}"' if detail else ""
        unit = _UNITS.get(str(c.get("metric")), "")
        row = (
            f'<tr><th scope="row" data-v="{_esc(c.get("nodeid"))}">{_esc(c.get("nodeid"))}</th>'
            + _cell(c.get("metric"), "text")
            + _cell(c.get("base"), unit=unit)
            + _cell(c.get("current"), unit=unit)
            + _cell(change * 100 if change is not None else None)
            + f'<td data-v="{_esc(status)}" class="{cls}"{title}>'
            + f"{_esc(status) or NOT_MEASURED}{' (fails the run)' if c.get('failing') else ''}"
            + "</td>"
            + _cell(c.get("method"), "text")
            + _cell(c.get("p_value"))
            + "</tr>"
        )
        (quiet if status == "noise" else notable).append(row)
    head = (
        "<thead><tr>"
        + _th("test")
        + _th("metric")
        + _th("baseline (median of rounds)", "num")
        + _th("this run (median of rounds)", "num")
        + _th("change (%)", "num")
        + _th("status", title="hover a status for how it was decided")
        + _th("statistical test")
        + _th("p-value", "num")
        + "</tr></thead>"
    )
    if notable:
        parts.append(
            '<h3>Per test</h3><div class="tablewrap"><table class="sortable" id="changes">'
            + head
            + f"<tbody>{''.join(notable)}</tbody></table></div>"
        )
    if quiet:
        # Within the noise: counted, and listed only on request (as in the terminal).
        table_id = "noise" if notable else "changes"
        parts.append(
            f"<details><summary>{len(quiet)} change(s) within the noise</summary>"
            f'<div class="tablewrap"><table class="sortable" id="{table_id}">'
            + head
            + f"<tbody>{''.join(quiet)}</tbody></table></div></details>"
        )
    if not notable and not quiet:
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
            if any(num(r.get(c)) is not None for r in flat)
            and all(r.get(c) is None or num(r.get(c)) is not None for r in flat)
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
