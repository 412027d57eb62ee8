"""The study as text: the leaderboard (terminal and Markdown) and the head-to-head sentences.

Every ratio goes through the project's one formatter (:mod:`pytest_carbon.report.format`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_carbon.report import format as fmt
from pytest_carbon.study.stats import INTERVAL_METHOD, TEST_METHOD, Cell, Study

WIDTH = 100
HEADERS = (
    "#",
    "cell",
    "frugality",
    "95% CI",
    "tasks",
    "pass@1",
    "pass@k",
    ">1/≈/<1",
    "gen/correct",
)
#: Head-to-head sentences shown at most in the terminal (the JSON and `study` show all).
MAX_PAIRS = 10


def _ci(cell: Cell) -> str:
    f = cell.frugality
    if cell.is_reference:
        return "by definition"
    if f is None or f.low is None or f.high is None:
        return "-"
    return f"{fmt.sig(f.low)}–{fmt.sig(f.high)}"


def _frugality(cell: Cell) -> str:
    if cell.frugality is None:
        return "-"
    text = fmt.ratio(cell.frugality.value)
    return text + " (ref)" if cell.is_reference else text


def row_cells(cell: Cell, with_strategy: bool) -> tuple[str, ...]:
    """The leaderboard's cells of one row, as text (shared by terminal and Markdown)."""
    v = cell.verdicts()
    n = cell.frugality.n if cell.frugality is not None else 0
    pk = ", ".join(f"@{k} {p:.0%}" for k, p in cell.pass_at_k.items()) or "-"
    _, g = cell.per_correct()
    counts = f"{v['costlier']}/{v['indistinguishable']}/{v['cheaper']}"
    if v["no interval"]:
        counts += f" +{v['no interval']}"
    verdicts = "-" if cell.is_reference else counts
    return (
        cell.label(with_strategy),
        _frugality(cell),
        _ci(cell),
        f"{n}/{cell.solved}/{cell.attempted}",
        "-" if cell.pass_at_1 is None else f"{cell.pass_at_1:.0%}",
        pk,
        verdicts,
        fmt.carbon(g) if g is not None else "-",
    )


def notes(study: Study) -> list[str]:
    return [
        f"frugality: energy ratio to the reference, {INTERVAL_METHOD} (below 1×: cheaper)",
        "tasks: with a ratio / solved / attempted; >1/≈/<1: solved tasks costlier than, "
        "indistinguishable from, cheaper than the reference by their own 95% intervals "
        "(+N: tasks whose ratio has no 95% interval, too few pairs); "
        "gen/correct: generation gCO2e of all samples per correct one",
    ]


def leaderboard_lines(study: Study, width: int = WIDTH) -> list[str]:
    """The leaderboard as terminal lines (each at most ``width`` columns)."""
    if not study.cells:
        return []
    import textwrap

    several = study.several_strategies
    keep = [
        i for i, h in enumerate(HEADERS) if h != "pass@k" or any(c.pass_at_k for c in study.cells)
    ]
    heads = [HEADERS[i] for i in keep]
    table = [
        [(str(n), *row_cells(c, several))[i] for i in keep] for n, c in enumerate(study.cells, 1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(heads)]
    fixed = sum(widths) - widths[1] + 2 * (len(heads) - 1)
    widths[1] = min(widths[1], max(width - fixed, 16))

    def fmt_row(cells: Sequence[str]) -> str:
        name = cells[1]
        if len(name) > widths[1]:  # shortened in the middle: model and strategy survive
            from pytest_carbon.report.rows import shorten

            name = shorten(name, widths[1])
        parts = [cells[0].rjust(widths[0]), name.ljust(widths[1])]
        parts += [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(parts).rstrip()[:width]

    title = (
        "study: (model · strategy) cells, most frugal first"
        if several
        else ("study: models, most frugal first")
    )
    lines = [title, fmt_row(heads), *(fmt_row(r) for r in table)]
    for note in notes(study):
        lines += textwrap.wrap(note, width, subsequent_indent="  ")
    return lines


def pair_lines(study: Study, limit: int | None = MAX_PAIRS, width: int = WIDTH) -> list[str]:
    """The head-to-head sentences, wrapped to ``width`` columns."""
    if not study.pairs:
        return []
    import textwrap

    pairs = study.pairs if limit is None else study.pairs[:limit]
    out = [f"head-to-head ({TEST_METHOD}):"]
    for p in pairs:
        out += textwrap.wrap(p.sentence, width, initial_indent="- ", subsequent_indent="  ")
    if limit is not None and len(study.pairs) > limit:
        out.append(f"  ... {len(study.pairs) - limit} more pairs: pytest-carbon study REPORT.json")
    return out


def percentile_lines(study: Study) -> list[str]:
    """Cells whose tasks have graded references: the median energy percentile over those
    tasks with its interval (none: no line at all)."""
    cells = [c for c in study.cells if c.percentile is not None]
    if not cells:
        return []
    several = study.several_strategies
    out = [
        "energy percentile on graded references (0-100, higher: more frugal), median over tasks:"
    ]
    for c in cells:
        p = c.percentile
        assert p is not None
        span = f"{p.low:.4g}–{p.high:.4g}"
        if p.coverage + 1e-12 >= 0.95:
            interval = f"95% CI {span}"
        else:
            interval = f"range {span}, covering {p.coverage:.0%}: too few tasks"
        tasks = "task" if p.n == 1 else "tasks"
        out.append(f"  {c.label(several)}: {p.value:.4g} ({interval}, {p.n} {tasks})")
    return out


def study_lines(study: Study, limit: int | None = MAX_PAIRS, width: int = WIDTH) -> list[str]:
    """Leaderboard, sentences and warnings: the terminal section and `pytest-carbon study`."""
    lines = leaderboard_lines(study, width)
    graded = percentile_lines(study)
    if graded:
        lines += ["", *graded]
    pairs = pair_lines(study, limit, width)
    if pairs:
        lines += ["", *pairs]
    lines += [f"warning: {w}" for w in study.warnings]
    return lines


def _md(value: str) -> str:
    """Report text as Markdown text (a model's or a warning's words are shown, never
    read as markup): the one escaping of ``report/mdtext.py``."""
    from pytest_carbon.report.mdtext import text

    return text(value)


def markdown_lines(study: Study) -> list[str]:
    """The leaderboard and the sentences as Markdown (the report's "Study" section)."""
    if not study.cells:
        return []
    several = study.several_strategies
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|--:|---|" + "--:|" * (len(HEADERS) - 2),
    ]
    for i, c in enumerate(study.cells, 1):
        cells = row_cells(c, several)
        from pytest_carbon.report.mdtext import code

        lines.append(f"| {i} | {code(cells[0])} | " + " | ".join(_md(x) for x in cells[1:]) + " |")
    lines += ["", "<sub>" + " ".join(_md(n) + "." for n in notes(study)) + "</sub>"]
    graded = percentile_lines(study)
    if graded:
        lines += ["", _md(graded[0]), ""] + [f"- {_md(g.strip())}" for g in graded[1:]]
    if study.pairs:
        lines += ["", f"Head-to-head ({TEST_METHOD}):", ""]
        lines += [f"- {_md(p.sentence)}" for p in study.pairs]
    if study.warnings:
        lines += [""] + [f"- warning: {_md(w)}" for w in study.warnings]
    return lines
