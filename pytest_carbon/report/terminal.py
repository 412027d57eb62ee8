"""The terminal summary: a table of tests by energy, the totals, and how they were obtained;
and the energy regressions counted in pytest's last line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_carbon.report import format as fmt
from pytest_carbon.report import rows as rowinfo
from pytest_carbon.report.totals import Totals, compute, per_call_energy_j

if TYPE_CHECKING:
    from pytest_carbon.session import CarbonSession

#: Comparison metric -> the word in pytest's last line ("1 energy regression").
REGRESSION_WORDS: dict[str, str] = {
    "energy": "energy",
    "dynamic_energy": "dynamic-energy",
    "duration": "time",
    "gco2e": "gCO2e",
    "edp": "EDP",
}


def _row(name: str, cells: Sequence[str], widths: Sequence[int], name_w: int) -> str:
    return name.ljust(name_w) + "".join(
        " " + str(v).rjust(w) for v, w in zip(cells, widths, strict=True)
    )


class _Layout(NamedTuple):
    cols: list[tuple[str, int]]
    comps: list[str]
    per_call: bool
    ratio: bool
    show_edp: bool


def _layout(records: Sequence[Mapping[str, Any]], t: Totals, width: int, verbose: bool) -> _Layout:
    """The table's columns: what a narrow terminal drops first is the per-component split,
    then EDP (the JSON, HTML and ``-v`` keep them)."""
    comps = sorted(t.components, key=lambda c: ({"cpu": 0, "dram": 1, "gpu": 2}.get(c, 9), c))
    # A record without per_call (or prompt) has neither figure: skip it without a call.
    per_call = any(r.get("per_call") and per_call_energy_j(r) is not None for r in records)
    ratio = any(r.get("prompt") and rowinfo.reference_ratio(r) is not None for r in records)
    energy_head = "energy" + (f" ({t.rounds} rounds)" if t.rounds else "")
    cols: list[tuple[str, int]] = []
    if per_call:
        cols.append(("per call", 9))
    if ratio:
        widest = max(len(rowinfo.ratio_text(r, compact=True)) for r in records)
        cols.append(("vs ref", max(widest, 8)))
    cols.append((energy_head, max(9, len(energy_head))))
    optional = list(comps)
    fixed = sum(w + 1 for _, w in cols) + 11 + 12 + 10 + 11 * (len(comps) + 1)
    while not verbose and (per_call or ratio) and optional and fixed > width - 24:
        optional.pop()
        fixed -= 10
    show_edp = verbose or fixed <= width - 24 or not per_call
    cols += [(c, 9) for c in optional]
    cols += [("method", 10)] + ([("EDP", 10)] if show_edp else []) + [("CO2e", 11), ("time", 9)]
    return _Layout(cols, optional, per_call, ratio, show_edp)


def table_lines(
    records: Sequence[Mapping[str, Any]],
    width: int = 100,
    limit: int | None = 20,
    totals: Totals | None = None,
    verbose: bool = False,
    layout: _Layout | None = None,
) -> list[str]:
    """Rows ranked by energy per call where there is one (else energy), unmeasured last;
    per-component columns; a total line whose label is never cut. ``totals``: the records'
    totals when the caller has them (computed once per summary). Per-component energy and
    EDP are shown where they fit in ``width``, and always with ``verbose`` (``-v``): the
    table is then wider than a narrow terminal rather than without them."""
    t = totals if totals is not None else compute(records)
    if layout is None:
        layout = _layout(records, t, width, verbose)
    cols, comps, per_call, ratio, show_edp = layout
    widths = [w for _, w in cols]
    label = t.label()
    name_w = max(width - sum(w + 1 for w in widths), 24)
    # A total label longer than the name column goes on a line of its own (never cut):
    # the table keeps to the terminal's width.
    own_line = len(label) > name_w
    header = _row("test", [n for n, _ in cols], widths, name_w)
    rule = "-" * len(header)
    lines = [header, rule]
    shown = rowinfo.ranked(records, limit)
    names = rowinfo.shorten_all([str(r.get("nodeid", "")) for r in shown], name_w)
    for r, name in zip(shown, names, strict=True):
        measured = fmt.num(r.get("energy_j")) is not None
        cells: list[str] = []
        if per_call:
            cells.append(fmt.energy(per_call_energy_j(r)))
        if ratio:
            cells.append(rowinfo.ratio_text(r, compact=True))
        cells.append(fmt.energy(r.get("energy_j")))
        comp_values = r.get("components") or {}
        cells += [fmt.energy(comp_values.get(c)) if measured else fmt.NOT_MEASURED for c in comps]
        cells.append(r.get("method") or "not meas.")
        cells += [fmt.si(r.get("edp_js"), "J·s")] if show_edp else []
        cells += [fmt.carbon(r.get("gco2e_g")), fmt.duration(r.get("duration_s"))]
        lines.append(_row(name, cells, widths, name_w))
    if limit is not None and len(records) > limit:
        lines.append(f"... {len(records) - limit} more (use -v or --carbon-top=N to see them)")
    cells = [""] * (int(per_call) + int(ratio))
    cells.append(fmt.energy(t.energy_j))
    cells += [fmt.energy(t.components.get(c)) for c in comps]
    cells += [t.method] + ([""] if show_edp else [])
    cells += [fmt.carbon(t.gco2e_g), fmt.duration(t.duration_s)]
    if own_line:
        lines += [rule, label + ":", _row("", cells, widths, name_w)]
    else:
        lines += [rule, _row(label, cells, widths, name_w)]
    return lines


#: Where every label of the summary is explained (the footnote line links it).
LABELS_DOC = "docs/reading-the-output.md"


def legend_line(
    records: Sequence[Mapping[str, Any]],
    width: int = 100,
    totals: Totals | None = None,
    verbose: bool = False,
    layout: _Layout | None = None,
) -> str:
    """One footnote line that says what each label of the table printed above means (only
    the columns and total words it shows), and where every other label is explained.
    ``layout``: the table's, when the caller has it (one pass over the records)."""
    t = totals if totals is not None else compute(records)
    if layout is None:
        layout = _layout(records, t, width, verbose)
    cols, comps, per_call, ratio, show_edp = layout
    parts: list[str] = []
    if per_call:
        parts.append("per call = median energy of one repeated call (rows rank by it)")
    if ratio:
        parts.append(
            "vs ref = energy per call / the reference solution's [95% interval], "
            "≈1 = indistinguishable"
        )
    energy = "energy = the call phase's"
    if t.rounds:
        energy = f"energy ({t.rounds} rounds) = the sum of {t.rounds} repeated call phases'"
    parts.append(energy + (", the whole measuring window for per-call rows" if per_call else ""))
    if comps:
        parts.append(f"{'/'.join(comps)} = that component's share")
    parts.append(
        "method = measured (hardware counter), estimated (CPU time x power model) or "
        "attributed (own share of a machine-wide counter)"
    )
    if show_edp:
        parts.append("EDP = energy x time")
    parts.append("CO2e = energy x PUE x grid intensity")
    words = ["N measured = tests with a figure"]
    if t.not_measured:
        words.append("not measured = no figure (—)")
    if t.windows:
        words.append("window totals = per-call rows, whose energy is their measuring window")
    parts.append(f"total ({', '.join(words)})")
    return "columns: " + "; ".join(parts) + f"; every label: {LABELS_DOC}"


def extra_total_lines(t: Totals) -> list[str]:
    """Embodied emissions, water and ``carbon.measure()`` phases, where the totals are."""
    lines = []
    if t.embodied_gco2e_g is not None:
        share = ""
        if t.gco2e_g:
            share = f" ({fmt.sig(t.embodied_gco2e_g / t.gco2e_g)}x the operational figure)"
        lines.append(f"embodied: {fmt.carbon(t.embodied_gco2e_g)}{share}")
    if t.water_l is not None:
        lines.append(f"water: {fmt.water(t.water_l)}")
    if t.phases:
        parts = [
            f"{name} {fmt.energy(ph['energy_j'])}, {fmt.carbon(ph['gco2e_g'])} "
            f"({ph['tests']} test{'s' if ph['tests'] > 1 else ''})"
            for name, ph in t.phases.items()
        ]
        lines.append("phases (carbon.measure): " + "; ".join(parts))
    return lines


def header_lines(cs: CarbonSession) -> list[str]:
    acc = cs.accounting
    where = acc.region or acc.country or "world average"
    default = " (default: set --carbon-country)" if acc.is_default else ""
    year = f", {acc.intensity_year}" if acc.intensity_year else ""
    pue_note = " (default)" if cs.settings.sources.get("carbon_pue") == "default" else ""
    lines = [
        f"location: {where}, {fmt.setting(acc.intensity_g_per_kwh)} gCO2e/kWh{default}"
        f" [{acc.intensity_source}{year}]",
        f"PUE: {fmt.setting(acc.pue)}{pue_note}",
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
            + ", ".join(f"{c} {fmt.power(w)}" for c, w in idle.items())
            + " (subtracted for dynamic_energy_j)"
        )
    return lines


def _width(tr: Any) -> int:
    try:
        full = int(tr.config.get_terminal_writer().fullwidth)
    except (AttributeError, TypeError, ValueError):
        full = 100
    return max(min(full, 140), 80)


def terminal_summary(cs: CarbonSession, tr: Any) -> None:
    verbose = tr.config.getoption("verbose", 0) > 0
    tr.write_sep("=", "pytest-carbon: energy and carbon")
    records = cs.summary_records()
    if not records:
        tr.write_line("no test was measured")
    else:
        for line in header_lines(cs):
            tr.write_line(line)
        tr.write_line("")
        limit = None if verbose else cs.settings.carbon_top
        totals = compute(records)
        width = _width(tr)
        layout = _layout(records, totals, width, verbose)
        table = table_lines(records, width, limit, totals, verbose, layout)
        for line in table:
            tr.write_line(line)
        for line in extra_total_lines(totals):
            tr.write_line(line)
        counts, subtests = pytest_counts(tr)
        tr.write_line(
            outcomes_line(records, counts, measuring_all=cs.settings.carbon, subtests=subtests)
        )
        tr.write_line(legend_line(records, width, totals, verbose, layout))
        equivalent = equivalences_line(totals)
        if equivalent:
            tr.write_line(equivalent)
    if any(r.get("prompt") for r in records):
        from pytest_carbon.prompts.summary import model_summary, render_model_summary
        from pytest_carbon.study.render import study_lines
        from pytest_carbon.study.stats import compute_study

        tr.write_line("")
        for line in render_model_summary(model_summary(records)):
            tr.write_line(line)
        tr.write_line("")
        for line in study_lines(compute_study(records)):
            tr.write_line(line, yellow=line.startswith("warning:"))
    for line in getattr(cs, "comparison_lines", []):
        tr.write_line(line)
    for line in caveat_lines(cs, records, verbose):
        tr.write_line(line, yellow=line.startswith("warning:"))
    for kind, path in getattr(cs, "written", []):
        tr.write_line(f"{kind} report: {path}")
    if any(r.get("prompt") for r in records):
        from pytest_carbon.prompts.summary import closing_line

        closing = closing_line(list(records), _paths(tr))
        if closing:
            tr.write_line(closing, bold=True)
    count_regressions(getattr(cs, "comparison", None), tr)


def _paths(tr: Any) -> list[str]:
    """The paths named on pytest's command line (to repeat them in a suggested command)."""
    import os

    try:
        args = [str(a) for a in tr.config.invocation_params.args]
    except AttributeError:
        return []
    return [a for a in args if not a.startswith("-") and os.path.exists(a.split("::")[0])]


def equivalences_line(t: Totals) -> str | None:
    if not t.energy_j or t.gco2e_g is None:
        return None  # nothing measured: "0 m by car" says nothing
    from pytest_carbon.carbon.equivalences import equivalences

    items = equivalences(t.gco2e_g, t.energy_j)[:3]
    return "equivalent to: " + "; ".join(fmt.equivalence(i) for i in items)


class _Regression:
    """One failing change in ``terminalreporter.stats``: pytest counts the entries of
    each key in its last line ("3 passed, 1 energy regression")."""

    count_towards_summary = True

    def __init__(self, change: Any) -> None:
        self.change = change


def count_regressions(comparison: Any, tr: Any) -> None:
    """Add the failing changes to pytest's last line. ``terminalreporter.stats`` is what
    that line counts: any key is printed as "N key" (as pytest-rerunfailures' "rerun")."""
    by_key: dict[str, list[Any]] = {}
    for change in getattr(comparison, "failures", None) or []:
        word = REGRESSION_WORDS.get(str(change.metric), str(change.metric))
        by_key.setdefault(word, []).append(change)
    for word, changes in by_key.items():
        key = f"{word} regression{'s' if len(changes) > 1 else ''}"
        tr.stats.setdefault(key, []).extend(_Regression(c) for c in changes)


#: Kinds of per-test caveat listed without -v (the JSON report keeps them all).
KINDS_SHOWN = 5


def pytest_counts(tr: Any) -> tuple[dict[str, int] | None, dict[str, int]]:
    """The outcome counts of pytest's own last line, from the terminal reporter's stats,
    in one pass: the tests' (a test skipped at setup has no call phase, hence no record,
    but pytest counts it; None without stats), and apart from them the subtests'
    (pytest's ``subtests`` fixture, pytest-subtests, unittest's ``subTest``: their
    reports carry a context), which pytest's line counts beside the tests ("failed"
    for a failed subtest). Only what pytest's line counts: at its default verbosity it
    keeps passed subtests out of its counts, and so does this."""
    from pytest_carbon.results.record import OUTCOMES, is_subtest_report, outcome_of

    stats = getattr(tr, "stats", None)
    if not isinstance(stats, dict):
        return None, {}
    counts: dict[str, int] = {}
    subtests: dict[str, int] = {}
    for word, reports in stats.items():
        if word not in OUTCOMES and not str(word).startswith("subtests"):
            continue
        for rep in reports:
            if not getattr(rep, "count_towards_summary", True):
                continue
            if is_subtest_report(rep):
                out = outcome_of(rep)
                subtests[out] = subtests.get(out, 0) + 1
            elif word in OUTCOMES:
                counts[word] = counts.get(word, 0) + 1
    return counts, subtests


def outcomes_line(
    records: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int] | None = None,
    *,
    measuring_all: bool = True,
    subtests: Mapping[str, int] | None = None,
) -> str:
    """``outcomes: 3 passed, 1 xfailed; 1 test rerun`` in pytest's order and words.
    ``counts``: pytest's own (:func:`pytest_counts`), which then give the figures, and
    the tests without a record are said to be so: with ``--carbon`` (``measuring_all``)
    those without a call phase (skipped at setup), without it those not asked for (no
    ``carbon`` marker or fixture)."""
    from pytest_carbon.results.record import OUTCOMES

    own: dict[str, int] = {}
    for r in records:
        word = str(r.get("outcome") or "unknown")
        own[word] = own.get(word, 0) + 1
    counts = dict(counts) if counts else own
    order = [*OUTCOMES, *sorted(set(counts) - set(OUTCOMES))]
    text = ", ".join(f"{counts[w]} {w}" for w in order if w in counts)
    without = sum(counts.values()) - len(records)
    if counts is not own and without > 0:
        why = (
            "without a call phase, so without a record"
            if measuring_all
            else "not measured: no carbon marker or fixture, and no --carbon"
        )
        text += f" ({without} {why})"
    reruns = sum(1 for r in records if (r.get("attempts") or 1) > 1)
    if reruns:
        text += f"; {reruns} test{'s' if reruns != 1 else ''} rerun (last attempt kept)"
    if subtests:
        n = sum(subtests.values())
        sub_order = [*OUTCOMES, *sorted(set(subtests) - set(OUTCOMES))]
        parts = ", ".join(f"{subtests[w]} {w}" for w in sub_order if w in subtests)
        text += f"; {n} subtest{'s' if n != 1 else ''} inside them: {parts}"
    return f"outcomes: {text}"


def caveat_lines(
    cs: CarbonSession, records: Sequence[Mapping[str, Any]], verbose: bool
) -> list[str]:
    """Run warnings, per-test warnings grouped by kind (-v: more example tests, never one
    line per test), how far to trust the totals, and why a run is incomplete."""
    from pytest_carbon.report.caveat_text import merged
    from pytest_carbon.results.caveats import aggregate, kind_lines, trust_note

    run_warnings, kinds = merged(cs.warnings, aggregate(records))
    lines = [f"warning: {w}" for w in run_warnings]
    shown = kinds if verbose else kinds[:KINDS_SHOWN]
    lines += [f"warning: {k}" for k in kind_lines(shown, examples=3 if verbose else 1)]
    if len(shown) < len(kinds):
        lines.append(f"warning: {len(kinds) - len(shown)} more kinds of caveat (-v lists them)")
    trust = trust_note(r["method"] for r in records if r.get("method"))
    if trust:
        lines.append(trust)
    incomplete = getattr(cs, "incomplete_reason", "")
    if incomplete:
        lines.append(f"warning: incomplete run ({incomplete}): totals cover only what ran")
    return lines
