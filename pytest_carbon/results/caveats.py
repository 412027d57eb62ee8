"""Caveats of a run, in a form every report shares: warnings grouped by kind, and how far
to trust a total.

Per-test warnings often embed the test's node id (a meter window is named after its test)
and a number of its own ("lasted 0.006 ms"). Grouping by the raw text would count tests,
not caveats: on a 5,000-test suite, one caveat became 4,659 lines. A kind is the text
with the node id and the numbers taken out; each kind keeps a count and a few examples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Example tests kept per kind.
EXAMPLES = 3

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
_QUOTES = "'\""
_NEXT_QUOTE = re.compile("['\"]")


def _forms(nodeid: str) -> list[str]:
    """How a node id can appear in a warning: as is, or escaped as ``repr`` writes it (a
    window key is quoted with ``!r``: ``test_x[a\\b]`` appears as ``test_x[a\\\\b]``)."""
    forms = [nodeid]
    for escaped in (repr(nodeid)[1:-1], nodeid.encode("unicode_escape").decode("ascii")):
        if escaped not in forms:
            forms.append(escaped)
    # The longest first: an escaped form contains the plain one's pieces, not the reverse.
    return sorted(forms, key=len, reverse=True)


def _replace(text: str, form: str) -> str:
    """Each occurrence of ``form`` becomes ``<test>``; a quoted name that starts with it
    (a window key: ``'nodeid::benchmark'``) becomes ``<test>`` whole, quotes included.
    One pass over the text, no regular expression compiled per node id."""
    out: list[str] = []
    pos = 0
    while True:
        i = text.find(form, pos)
        if i < 0:
            out.append(text[pos:])
            return "".join(out)
        start, end = i, i + len(form)
        if i > pos and text[i - 1] in _QUOTES:
            m = _NEXT_QUOTE.search(text, end)
            if m is not None and m.group() == text[i - 1]:
                start, end = i - 1, m.end()
        out.append(text[pos:start])
        out.append("<test>")
        pos = end


def strip_nodeid(text: str, nodeid: str) -> str:
    """The warning without its test's name: ``window 'a.py::t' lasted`` -> ``window lasted``
    would lose the subject, so the name becomes ``<test>``. Linear in the text's length;
    the name is found as is and as ``repr`` escapes it."""
    if not nodeid:
        return text
    for form in _forms(nodeid):
        if form in text:
            text = _replace(text, form)
    return text


def kind_of(text: str, nodeid: str = "") -> str:
    """The grouping key of a warning: no node id, numbers as ``…``."""
    return _NUMBER.sub("…", strip_nodeid(text, nodeid))


def aggregate(
    records: Iterable[Mapping[str, Any]], examples: int = EXAMPLES
) -> list[dict[str, Any]]:
    """Per-test warnings grouped by kind, most frequent first: ``{"kind", "count",
    "examples"}``. ``count`` is the number of tests with that kind of warning. When every
    test in a kind had the same text (the numbers agree too), ``kind`` keeps the numbers."""
    kinds: dict[str, dict[str, Any]] = {}
    for r in records:
        ws = r.get("warnings")
        if not ws:  # most records: nothing to group
            continue
        nodeid = str(r.get("nodeid") or "")
        seen: set[str] = set()
        for w in ws:
            stripped = strip_nodeid(str(w), nodeid)
            key = _NUMBER.sub("…", stripped)
            if key in seen:
                continue
            seen.add(key)
            k = kinds.get(key)
            if k is None:
                k = kinds[key] = {"kind": key, "count": 0, "examples": [], "_text": stripped}
            elif k["_text"] != stripped:
                k["_text"] = None
            k["count"] += 1
            if len(k["examples"]) < examples and nodeid:
                k["examples"].append(nodeid)
    out = []
    for k in kinds.values():
        text = k.pop("_text")
        if text is not None:
            k["kind"] = text
        out.append(k)
    out.sort(key=lambda k: (-k["count"], k["kind"]))
    return out


def kind_lines(kinds: Iterable[Mapping[str, Any]], examples: int = 1) -> list[str]:
    """One line per kind: the text, how many tests, and example tests."""
    lines = []
    for k in kinds:
        shown = list(k.get("examples") or [])[:examples]
        count = int(k.get("count") or 0)
        where = f"{count} test{'s' if count != 1 else ''}"
        if shown:
            more = ", …" if count > len(shown) else ""
            where += ": " + ", ".join(shown) + more
        lines.append(f"{k['kind']} ({where})")
    return lines


def kinds_of_report(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's warning kinds (computed from its records when an older report lacks
    them)."""
    kinds = report.get("warning_kinds")
    if isinstance(kinds, list):
        return kinds
    return aggregate(report.get("tests") or [])


#: How far a total can be trusted, by the weakest method behind it. Short on purpose.
TRUST = {
    "estimated": (
        "estimated totals follow a model (CPU time x power per core): the power per core "
        "alone is uncertain by about a factor of 2 (4-15 W per core for server parts); "
        "between runs, the same suite moves with its CPU time, by tens of % on a busy "
        "machine"
    ),
    "measured": (
        "measured totals include everything else the machine did meanwhile: on a shared "
        "or busy machine, the same suite moves by tens of % between runs"
    ),
    "attributed": (
        "attributed totals split machine-wide counters by CPU-time share: on a shared or "
        "busy machine, the same suite moves by tens of % between runs"
    ),
}


def trust_note(methods: Iterable[str]) -> str:
    """One sentence on how much to trust the totals, for the methods present."""
    present = [m for m in ("estimated", "attributed", "measured") if m in set(methods)]
    if not present:
        return ""
    return (
        "how far to trust the totals: "
        + "; ".join(TRUST[m] for m in present)
        + ". Compare runs with --carbon-compare, not by eye."
    )
