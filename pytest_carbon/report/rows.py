"""What every report says about one record: its leading energy (per call for prompt
items), its ratio to the reference, its outcome, and its name shortened to fit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_carbon.report import format as fmt
from pytest_carbon.report.totals import per_call_energy_j

#: pytest's outcome words -> (what a reader sees, CSS/markup class). A word not listed
#: (a future pytest's, a plugin's) is shown as written with the class "other".
OUTCOMES: dict[str, tuple[str, str]] = {
    "passed": ("passed", "good"),
    "failed": ("failed", "bad"),
    "error": ("error", "bad"),
    "skipped": ("skipped", "muted"),
    "xfailed": ("xfailed (expected failure)", "muted"),
    "xpassed": ("xpassed (unexpected pass)", "warn"),
}


def outcome(word: Any) -> tuple[str, str]:
    """``(text, class)`` of an outcome word; ``("—", "muted")`` when absent."""
    if not word:
        return fmt.NOT_MEASURED, "muted"
    return OUTCOMES.get(str(word), (str(word), "other"))


def prompt_of(rec: Mapping[str, Any]) -> dict[str, Any]:
    p = rec.get("prompt")
    return p if isinstance(p, dict) else {}


def lead_energy_j(rec: Mapping[str, Any]) -> float | None:
    """What a row ranks and leads with: energy per call where the work was repeated in a
    window (a prompt item, a ``carbon(func)`` call), else the test's energy."""
    per_call = per_call_energy_j(rec)
    return per_call if per_call is not None else fmt.num(rec.get("energy_j"))


def ranked(
    records: Sequence[Mapping[str, Any]], limit: int | None = None
) -> list[Mapping[str, Any]]:
    """Most energy first by :func:`lead_energy_j`; unmeasured last, in their order.
    ``limit``: only the first ``limit`` of them (the same rows, found without sorting
    all). Each record's energy is read once."""
    keyed = []
    for i, r in enumerate(records):
        e = r.get("energy_j")
        if not r.get("per_call") and type(e) is float and math.isfinite(e):
            lead: float | None = e  # what lead_energy_j gives such a record, without calls
        else:
            lead = lead_energy_j(r)
        keyed.append((lead is None, -(lead or 0.0), i))
    if limit is None or limit >= len(keyed):
        keyed.sort()
    else:
        import heapq

        keyed = heapq.nsmallest(limit, keyed)
    return [records[k[2]] for k in keyed]


def reference_ratio(rec: Mapping[str, Any]) -> float | None:
    """The energy ratio to the reference: a float (current records) or the older
    ``{"energy": x, "duration": y}``."""
    value = prompt_of(rec).get("reference_ratio")
    if isinstance(value, dict):
        value = value.get("energy")
    return fmt.num(value)


def reference_comparison(rec: Mapping[str, Any]) -> Any:
    """The :class:`~pytest_carbon.compare.paired.PairedRatio` of the record's
    ``prompt.reference_comparison``, or None (older reports, the reference itself)."""
    from pytest_carbon.compare.paired import PairedRatio

    return PairedRatio.parse(prompt_of(rec).get("reference_comparison"))


def ratio_text(rec: Mapping[str, Any], *, compact: bool = False) -> str:
    """The ratio to the reference with its interval when the record has one (in words,
    from :meth:`PairedRatio.describe`), plain otherwise; "—" when there is none.
    ``compact``: ``0.421× [0.400–0.440]`` for a table cell (``≈1`` marks an interval
    that contains 1.0)."""
    pr = reference_comparison(rec)
    if pr is not None:
        if compact:
            mark = " ≈1" if pr.contains_one else ""
            return f"{fmt.ratio(pr.ratio)} [{fmt.sig(pr.low)}–{fmt.sig(pr.high)}]{mark}"
        return str(pr.describe("the reference"))
    return fmt.ratio(reference_ratio(rec))


def middle(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (its start and end survive)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def shorten(nodeid: str, width: int) -> str:
    """A node id in at most ``width`` characters that still tells rows apart: drop the
    directories, then the file; then cut the test's name and its parameters each in its
    middle, so the task (the start) and the model (the start of the brackets) and the
    sample (the end) all survive."""
    if len(nodeid) <= width:
        return nodeid
    path, sep, name = nodeid.partition("::")
    if sep:
        for candidate in (path.rsplit("/", 1)[-1] + sep + name, name):
            if len(candidate) <= width:
                return candidate
    else:
        name = nodeid
    base, bracket, params = name.partition("[")
    if not bracket:
        return middle(name, width)
    params = bracket + params
    base_w = min(len(base), max(width // 2, width - len(params)))
    return middle(base, base_w) + middle(params, width - base_w)


def _fit(text: str, width: int, *, keep_end: bool) -> str:
    """``text`` in ``width`` characters: its start (or its end) kept, ``…`` for the rest."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return "…" + text[len(text) - width + 1 :] if keep_end else text[: width - 1] + "…"


def _distinct_part(name: str, prefix: str, suffix: str, width: int) -> str:
    """``name`` in ``width`` characters with what tells it from its neighbours whole: the
    part between the ``prefix`` and ``suffix`` they share, which are cut first."""
    end = len(name) - len(suffix)
    core = name[len(prefix) : end]
    if len(core) + 2 >= width:  # the distinct part alone fills the room: cut its middle
        return "…" + middle(core, width - 1) if prefix else middle(core, width)
    room = width - len(core)
    head_w = min(len(prefix), max(room // 2, room - len(suffix)))
    tail_w = room - head_w
    return _fit(prefix, head_w, keep_end=False) + core + _fit(suffix, tail_w, keep_end=True)


def _name_before(base: str, params: str, width: int) -> str:
    """``base`` whole and as much of the shared ``params`` as fits, from their start."""
    if len(base) + 2 <= width:
        return base + _fit(params, width - len(base), keep_end=False)
    return middle(base, width - 1) + "…"


def shorten_all(nodeids: Sequence[str], width: int) -> list[str]:
    """:func:`shorten` for the rows of one table, which must stay distinct at any width:
    rows whose short names collide (``TestDraft201…uated_items`` five times at 80 columns)
    are shortened again, their common start and end cut before what tells them apart.
    Linear in the number of rows (a collision group's common parts are computed once)."""
    import os.path

    out = [shorten(n, width) for n in nodeids]
    # Every row with the same parameters (a prompt run of one model: [reference-plain-0]):
    # they tell no row apart, so they are cut before the names, which do.
    tails = [n.partition("::")[2] or n for n in nodeids]
    params = {t[t.find("[") :] if "[" in t else "" for t in tails}
    common = next(iter(params)) if len(nodeids) > 1 and len(params) == 1 else ""
    if common:
        out = [
            _name_before(t[: -len(common)], common, width) if len(short) < len(t) else short
            for t, short in zip(tails, out, strict=True)
        ]
    groups: dict[str, list[int]] = {}
    for i, short in enumerate(out):
        groups.setdefault(short, []).append(i)
    for members in groups.values():
        names = list(dict.fromkeys(nodeids[i] for i in members))
        if len(names) < 2:
            continue
        # The test's own name (the file is the same, or did not fit anyway).
        tails = [n.partition("::")[2] or n for n in names]
        prefix = os.path.commonprefix(tails)
        suffix = os.path.commonprefix([t[len(prefix) :][::-1] for t in tails])[::-1]
        again = {
            n: _distinct_part(t, prefix, suffix, width) for n, t in zip(names, tails, strict=True)
        }
        for i in members:
            out[i] = again[nodeids[i]]
    return out
