"""What every part of the HTML page shares: colours, escaping, badges, cells, lists.

Numbers go through :mod:`pytest_carbon.report.format`, the one formatter of every report.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_carbon.report import format as fmt
from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.format import NOT_MEASURED, num

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

_NOT_MEASURED_TITLE = "not measured"


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
        if (f := num(v)) is not None:
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


def _unit_text(text: str) -> str:
    """A formatted quantity as the page shows it: CO₂ with its subscript, so no browser
    can break "mgCO2e" between "CO2" and "e"."""
    return text.replace("CO2e", "CO₂e")


def _qty(text: str) -> str:
    """A formatted quantity (``"2.65 mgCO2e"``) as HTML that never breaks: one nowrap
    span, with a non-breaking space between the number and its unit."""
    return f'<span class="q">{_esc(_unit_text(text)).replace(" ", "&nbsp;")}</span>'


def _text(value: Any, unit: str = "") -> str | None:
    """The text of a number cell (the one formatter's), or None when not measured."""
    v = num(value)
    if v is None:
        return None
    if unit == "×":
        return fmt.ratio(v)
    if unit == "gCO2e":
        return _unit_text(fmt.carbon(v))
    if unit == "s":
        return fmt.duration(v)
    if unit:
        return fmt.si(v, unit)
    return fmt.plain(value)


def _cell(value: Any, kind: str = "num", title: str | None = None, unit: str = "") -> str:
    """One table cell with its sort key in ``data-v``; null is "—" titled "not measured".
    ``unit``: the value is shown with an SI prefix (``4.37 mJ``), sorted by its raw value."""
    if kind == "num":
        v = num(value)
        text = _text(value, unit)
        if v is None or text is None:
            return (
                f'<td class="num null" data-v="" title="{_NOT_MEASURED_TITLE}">{NOT_MEASURED}</td>'
            )
        t = f' title="{_esc(title)}"' if title else ""
        return f'<td class="num" data-v="{v!r}"{t}>{_esc(text)}</td>'
    if kind == "method":
        return f'<td data-v="{_esc(value or "")}">{_method_badge(value)}</td>'
    if kind == "outcome":
        text, cls = rowinfo.outcome(value)
        return f'<td data-v="{_esc(value or "")}" class="{cls}">{_esc(text)}</td>'
    if value is None or value == "":
        return f'<td class="null" data-v="" title="{_NOT_MEASURED_TITLE}">{NOT_MEASURED}</td>'
    return f'<td data-v="{_esc(value)}">{_esc(value)}</td>'


def _th(label: str, kind: str = "text", title: str | None = None) -> str:
    t = f' title="{_esc(title)}"' if title else ""
    return (
        f'<th scope="col" data-type="{kind}"{t}><button type="button">{_esc(label)}</button></th>'
    )


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already HTML."""
    return "<dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"
