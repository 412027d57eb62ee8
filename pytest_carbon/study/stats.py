"""Study statistics over prompt-suite records: one cell per (model, prompt strategy).

Everything here is computed from records alone (never from a run's state), so a report
merged from shards gives exactly the study of the run's records: tasks are keyed by their
file and id, every sum is :func:`math.fsum` (correctly rounded, whatever the order), and
every list is sorted before it is used.

For each cell:

* **tasks attempted and solved**, **pass@1** (the mean over tasks of the share of correct
  samples) and, with several samples per task, the **unbiased pass@k** of Chen et al.
  (2021), ``1 - C(n-c, k) / C(n, k)`` averaged over tasks, computed as the product
  ``prod_{i=n-c+1..n} (1 - k/i)`` (no huge binomials);
* **frugality**: the geometric mean, over the tasks the cell solved, of each task's
  paired energy ratio to the reference (the median of per-pair ratios measured
  interleaved on one machine: :mod:`pytest_carbon.compare.paired`). Its 95% interval is a
  **Student t interval on the mean of the log ratios** across tasks, exact when the
  tasks' log ratios are normally distributed (no resampling, so no seed: the same records
  always give the same interval). With one task there is no interval;
* how many solved tasks were **costlier, indistinguishable or cheaper** by their own
  95% intervals (a task with several correct samples counts as costlier only when every
  sample's interval lies above 1, cheaper only when every one lies below);
* the **generation footprint per correct solution**: the generation energy and gCO2e of
  every sample of the cell (incorrect ones included: they were paid for), divided by the
  number of correct samples.

No statistic ever takes a median, or a mean, of different tasks' absolute energies: a
task's energy says how heavy the task is, not how frugal the code is.

**Head-to-head**, for each pair of cells other than the reference, on the tasks both
solved: the geometric mean of the ratio of their ratios (A/ref / B/ref) with the same t
interval, a Wilcoxon signed-rank test on the log ratios (scipy, imported lazily) and
Holm's step-down correction across all pairs; "clear" means the Holm-adjusted p-value is
below 0.05 and the interval excludes 1. An interval that excludes 1 without a significant
corrected test is said so in words (few tasks cannot beat the correction over many pairs).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The strategy of records written before strategies existed, and the default one.
DEFAULT_STRATEGY = "plain"
#: The built-in model whose code every ratio is taken against.
REFERENCE = "reference"
CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
INTERVAL_METHOD = (
    "geometric mean over tasks; 95% Student t interval on the mean of the tasks' log ratios"
)
TEST_METHOD = "Wilcoxon signed-rank test on per-task log ratios, Holm-corrected across pairs"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``n`` samples of which ``c`` are correct
    (Chen et al. 2021, eq. 1), as the numerically stable product
    ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= correct <= samples, got {c} of {n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= samples ({n})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: (pvalues[i], i))
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


@dataclass(frozen=True)
class Interval:
    """A geometric mean of ratios over ``n`` tasks and its 95% interval (None with fewer
    than two tasks)."""

    value: float
    low: float | None
    high: float | None
    n: int

    @property
    def contains_one(self) -> bool:
        return self.low is None or self.high is None or self.low <= 1.0 <= self.high

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student t quantile (scipy, imported here only)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2.0, df))


def geometric_interval(logs: Sequence[float]) -> Interval | None:
    """The geometric mean of ``exp(logs)`` with a t interval on the mean of the logs."""
    n = len(logs)
    if n == 0:
        return None
    mean = math.fsum(logs) / n
    if n == 1:
        return Interval(math.exp(mean), None, None, 1)
    sd = statistics.stdev(sorted(logs))  # exact arithmetic inside: order does not matter
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n)


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (zeros dropped); 1.0 when no
    difference is non-zero."""
    nonzero = sorted(d for d in diffs if d != 0.0)
    if not nonzero:
        return 1.0
    from scipy import stats

    return float(stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided").pvalue)


# -- reading records ------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def strategy_of(prompt: Mapping[str, Any]) -> str:
    return str(prompt.get("strategy") or DEFAULT_STRATEGY)


def task_key(rec: Mapping[str, Any]) -> str:
    """``FILE::TASK``: a task id is unique only within its file."""
    prompt = rec.get("prompt") or {}
    path = str(rec.get("nodeid") or "").split("::", 1)[0]
    return f"{path}::{prompt.get('task')}"


@dataclass(frozen=True)
class SampleRatio:
    """One correct sample's energy ratio to the reference and its interval (None: no
    interleaved interval, as for the reference itself or an older record)."""

    ratio: float
    low: float | None = None
    high: float | None = None


def sample_ratio(prompt: Mapping[str, Any]) -> SampleRatio | None:
    """The ratio of a correct sample: its paired comparison, else ``reference_ratio``."""
    from pytest_carbon.compare.paired import PairedRatio

    pr = PairedRatio.parse(prompt.get("reference_comparison"))
    if pr is not None and pr.ratio > 0:
        if pr.coverage + 1e-12 >= CONFIDENCE:
            return SampleRatio(pr.ratio, pr.low, pr.high)
        return SampleRatio(pr.ratio)
    raw = prompt.get("reference_ratio")
    r = _num(raw.get("energy") if isinstance(raw, dict) else raw)
    return SampleRatio(r) if r is not None and r > 0 else None


# -- graded references: the energy percentile per cell (issue 22, item 3) ----------------
PERCENTILE_METHOD = (
    "median over tasks of each task's energy percentile on its graded references (the "
    "median of its correct samples'); exact order-statistic interval for the median"
)


@dataclass(frozen=True)
class Percentile:
    """The median over ``n`` tasks of their energy percentiles, with the order-statistic
    interval for the median and its exact ``coverage`` (below 95% with fewer than 6
    tasks: then ``low``/``high`` are the range, and say so)."""

    value: float
    low: float
    high: float
    coverage: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "coverage": self.coverage,
            "n": self.n,
            "method": PERCENTILE_METHOD,
        }


def median_percentile(values: Sequence[float]) -> Percentile | None:
    """:class:`Percentile` of per-task percentiles (None without any)."""
    from pytest_carbon.compare.paired import median_interval

    if not values:
        return None
    xs = sorted(values)
    low, high, coverage = median_interval(xs, CONFIDENCE)
    return Percentile(statistics.median(xs), low, high, coverage, len(xs))


def _sample_percentile(prompt: Mapping[str, Any]) -> float | None:
    pct = prompt.get("energy_percentile")
    return _num(pct.get("value")) if isinstance(pct, Mapping) else None


@dataclass
class TaskCell:
    """One task in one cell: its samples and the ratios of the correct ones."""

    task: str
    samples: int = 0
    correct: int = 0
    ratios: list[SampleRatio] = field(default_factory=list)
    machines: set[str] = field(default_factory=set)
    #: Correct samples' energy percentiles on the task's graded references (if it has any).
    percentiles: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """The geometric mean of the correct samples' ratios (one: its own)."""
        if not self.ratios:
            return None
        return math.exp(
            math.fsum(sorted(math.log(r.ratio) for r in self.ratios)) / len(self.ratios)
        )

    @property
    def verdict(self) -> str | None:
        """costlier / cheaper / indistinguishable by the samples' own intervals; None
        when a sample has no interval."""
        if not self.ratios or any(r.low is None or r.high is None for r in self.ratios):
            return None
        if all(r.low is not None and r.low > 1.0 for r in self.ratios):
            return "costlier"
        if all(r.high is not None and r.high < 1.0 for r in self.ratios):
            return "cheaper"
        return "indistinguishable"


@dataclass
class Cell:
    """The statistics of one (model, strategy) cell."""

    model: str
    strategy: str
    tasks: dict[str, TaskCell] = field(default_factory=dict)
    items: int = 0
    skipped: int = 0
    #: Generation figures of every judged sample (None: unknown), summed order-free.
    generation_energy: list[float | None] = field(default_factory=list)
    generation_gco2e: list[float | None] = field(default_factory=list)
    generation_methods: set[str] = field(default_factory=set)
    frugality: Interval | None = None
    pass_at_1: float | None = None
    pass_at_k: dict[int, float] = field(default_factory=dict)
    #: The median over tasks of the energy percentile on graded references (tasks
    #: without graded references left out), None when no task has one.
    percentile: Percentile | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.strategy)

    @property
    def is_reference(self) -> bool:
        return self.model == REFERENCE

    @property
    def attempted(self) -> int:
        return len(self.tasks)

    @property
    def solved(self) -> int:
        return sum(1 for t in self.tasks.values() if t.correct)

    @property
    def correct(self) -> int:
        return sum(t.correct for t in self.tasks.values())

    def task_ratios(self) -> dict[str, float]:
        """Each solved task's ratio to the reference (tasks without one left out)."""
        return {k: r for k, t in sorted(self.tasks.items()) if (r := t.ratio) is not None}

    def verdicts(self) -> dict[str, int]:
        out = {"costlier": 0, "indistinguishable": 0, "cheaper": 0, "no interval": 0}
        for t in self.tasks.values():
            if t.ratios:
                out[t.verdict or "no interval"] += 1
        return out

    def per_correct(self) -> tuple[float | None, float | None]:
        """Generation (energy J, gCO2e g) per correct solution; None when unknown."""
        if not self.correct:
            return None, None

        def total(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return math.fsum(known) / self.correct if len(known) == len(values) else None

        return total(self.generation_energy), total(self.generation_gco2e)

    def label(self, with_strategy: bool = True) -> str:
        return f"{self.model} · {self.strategy}" if with_strategy else self.model

    def to_json(self) -> dict[str, Any]:
        e, g = self.per_correct()
        return {
            "model": self.model,
            "strategy": self.strategy,
            "items": self.items,
            "skipped": self.skipped,
            "tasks_attempted": self.attempted,
            "tasks_solved": self.solved,
            "correct": self.correct,
            "pass_at_1": self.pass_at_1,
            "pass_at_k": {str(k): v for k, v in self.pass_at_k.items()},
            "frugality": None if self.frugality is None else self.frugality.to_json(),
            "verdicts": self.verdicts(),
            "generation_energy_per_correct_j": e,
            "generation_gco2e_per_correct_g": g,
            "generation_methods": sorted(self.generation_methods),
            "task_ratios": self.task_ratios(),
            "energy_percentile": None if self.percentile is None else self.percentile.to_json(),
        }


@dataclass(frozen=True)
class HeadToHead:
    """Cell ``a`` against cell ``b`` on the tasks both solved."""

    a: tuple[str, str]
    b: tuple[str, str]
    ratio: Interval
    p: float
    p_holm: float
    sentence: str

    @property
    def clear(self) -> bool:
        """Significant after Holm's correction, and the interval excludes 1."""
        return self.p_holm < ALPHA and not self.ratio.contains_one

    @property
    def excludes_one(self) -> bool:
        return not self.ratio.contains_one

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"model": self.a[0], "strategy": self.a[1]},
            "b": {"model": self.b[0], "strategy": self.b[1]},
            **{f"ratio_{k}": v for k, v in self.ratio.to_json().items()},
            "p": self.p,
            "p_holm": self.p_holm,
            "clear": self.clear,
            "excludes_one": self.excludes_one,
            "sentence": self.sentence,
        }


@dataclass
class Study:
    """Cells ranked by frugality (most frugal first), head-to-head pairs, warnings."""

    cells: list[Cell]
    pairs: list[HeadToHead]
    strategies: list[str]
    warnings: list[str]
    task_names: dict[str, str]

    @property
    def several_strategies(self) -> bool:
        return len(self.strategies) > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "interval_method": INTERVAL_METHOD,
            "test_method": TEST_METHOD,
            "strategies": self.strategies,
            "cells": [c.to_json() for c in self.cells],
            "head_to_head": [p.to_json() for p in self.pairs],
            "warnings": self.warnings,
        }


def _strategy_order(names: Iterable[str]) -> list[str]:
    unique = set(names)
    return sorted(unique, key=lambda s: (s != DEFAULT_STRATEGY, s))


def _rank_key(c: Cell) -> tuple[Any, ...]:
    f = c.frugality.value if c.frugality is not None else math.inf
    return (f, -(c.pass_at_1 or 0.0), c.model, c.strategy)


def compute_study(records: Iterable[Mapping[str, Any]]) -> Study:
    """The study of prompt records (others are ignored). See the module docstring."""
    cells: dict[tuple[str, str], Cell] = {}
    machines_by_task: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        prompt = rec.get("prompt")
        if not isinstance(prompt, Mapping) or prompt.get("model") is None:
            continue
        model, strategy = str(prompt["model"]), strategy_of(prompt)
        cell = cells.setdefault((model, strategy), Cell(model, strategy))
        if rec.get("outcome") == "skipped":
            cell.skipped += 1  # never judged: neither a failure nor a pass
            continue
        cell.items += 1
        key = task_key(rec)
        tc = cell.tasks.setdefault(key, TaskCell(key))
        tc.samples += 1
        machine = rec.get("machine_id")
        if machine is not None:
            tc.machines.add(str(machine))
            machines_by_task[key].add(str(machine))
        if prompt.get("correct") is True:
            tc.correct += 1
            sr = sample_ratio(prompt)
            if sr is not None:
                tc.ratios.append(sr)
            pct = _sample_percentile(prompt)
            if pct is not None:
                tc.percentiles.append(pct)
        gen = prompt.get("generation")
        gen = gen if isinstance(gen, Mapping) else {}
        if gen.get("method"):
            cell.generation_methods.add(str(gen["method"]))
        if "energy_j" in gen or "gco2e_g" in gen:  # a failed request left nothing to say
            cell.generation_energy.append(_num(gen.get("energy_j")))
            cell.generation_gco2e.append(_num(gen.get("gco2e_g")))
    for cell in cells.values():
        _finish(cell)
    ranked = sorted((c for c in cells.values() if c.items), key=_rank_key)
    strategies = _strategy_order(c.strategy for c in ranked)
    names = _task_names(k for c in ranked for k in c.tasks)
    warnings = [
        f"task {names.get(task, task)}: its cells were measured on different machines "
        f"({', '.join(sorted(ms))}); each ratio to the reference was taken on one machine, "
        "but the cells' ratios compare across machines"
        for task, ms in sorted(machines_by_task.items())
        if len(ms) > 1
    ]
    return Study(ranked, _pairs(ranked, strategies), strategies, warnings, names)


def _finish(cell: Cell) -> None:
    if not cell.tasks:
        return
    tasks = [cell.tasks[k] for k in sorted(cell.tasks)]
    cell.pass_at_1 = math.fsum(t.correct / t.samples for t in tasks) / len(tasks)
    kmax = min(t.samples for t in tasks)
    if kmax > 1:
        ks = sorted({k for k in (2, 5, 10) if k < kmax} | {kmax})
        cell.pass_at_k = {
            k: math.fsum(pass_at_k(t.samples, t.correct, k) for t in tasks) / len(tasks) for k in ks
        }
    logs = [math.log(r) for r in cell.task_ratios().values()]
    cell.frugality = geometric_interval(logs)
    cell.percentile = median_percentile(
        [statistics.median(sorted(t.percentiles)) for t in tasks if t.percentiles]
    )


def _task_names(keys: Iterable[str]) -> dict[str, str]:
    """Short task names: the id alone unless two files share it."""
    keys = sorted(set(keys))
    by_id: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_id[k.rsplit("::", 1)[-1]].append(k)
    return {
        k: (k.rsplit("::", 1)[-1] if len(by_id[k.rsplit("::", 1)[-1]]) == 1 else k) for k in keys
    }


def _pairs(cells: Sequence[Cell], strategies: Sequence[str]) -> list[HeadToHead]:
    contenders = sorted((c for c in cells if not c.is_reference), key=lambda c: c.key)
    raw: list[tuple[Cell, Cell, Interval, float]] = []
    order = {s: i for i, s in enumerate(strategies)}
    for i, x in enumerate(contenders):
        for y in contenders[i + 1 :]:
            rx, ry = x.task_ratios(), y.task_ratios()
            common = sorted(set(rx) & set(ry))
            if not common:
                continue
            diffs = [math.log(rx[t]) - math.log(ry[t]) for t in common]
            a, b = x, y
            if x.model == y.model:
                if order[x.strategy] < order[y.strategy]:  # the later strategy against the first
                    a, b, diffs = y, x, [-d for d in diffs]
            elif math.fsum(diffs) < 0:  # the costlier side first: "costs 1.42x"
                a, b, diffs = y, x, [-d for d in diffs]
            ratio = geometric_interval(diffs)
            assert ratio is not None
            raw.append((a, b, ratio, wilcoxon_p(diffs)))
    adjusted = holm([r[3] for r in raw])
    out = []
    for (a, b, ratio, p), ph in zip(raw, adjusted, strict=True):
        text = sentence(a, b, ratio, p, ph, len(raw))
        out.append(HeadToHead(a.key, b.key, ratio, p, ph, text))

    def kind(h: HeadToHead) -> int:
        # Strategy against strategy for one model, then models under one strategy, then
        # the rest; the most certain first within each.
        return 0 if h.a[0] == h.b[0] else 1 if h.a[1] == h.b[1] else 2

    return sorted(out, key=lambda h: (kind(h), h.p_holm, h.p, h.a, h.b))


def _ci(iv: Interval, prefix: str = "95% CI ") -> str:
    from pytest_carbon.report.format import sig

    if iv.low is None or iv.high is None:
        return ""
    return f" ({prefix}{sig(iv.low)}–{sig(iv.high)})"


def _tasks_phrase(n: int) -> str:
    return "the one task both solved" if n == 1 else f"the {n} tasks both solved"


def sentence(a: Cell, b: Cell, iv: Interval, p: float, p_holm: float, pairs: int = 1) -> str:
    """One sentence for people: what A's code costs against B's, and how sure it is."""
    from pytest_carbon.report.format import ratio as fmt_ratio
    from pytest_carbon.report.format import sig

    r = fmt_ratio(iv.value)
    if a.model == b.model:
        text = (
            f"with {a.model}, the {a.strategy} prompt changed energy by {r}{_ci(iv, '')} "
            f"against the {b.strategy} prompt on {_tasks_phrase(iv.n)}"
        )
    elif a.strategy == b.strategy:
        text = (
            f"{a.model}'s correct code costs {r}{_ci(iv)} the energy of {b.model}'s on "
            f"{_tasks_phrase(iv.n)}"
        )
    else:
        text = (
            f"{a.model} with the {a.strategy} prompt: correct code costs {r}{_ci(iv)} the "
            f"energy of {b.model} with the {b.strategy} prompt on {_tasks_phrase(iv.n)}"
        )
    if iv.n < 2:
        return text + ": too few tasks for an interval"
    text += f" (Wilcoxon p = {sig(p)}, Holm-adjusted {sig(p_holm)})"
    if iv.contains_one:
        return text + ": no clear effect"
    if p_holm >= ALPHA:
        # The interval is one comparison's; the test is corrected for all of them.
        return (
            text + f": the interval excludes 1, but the difference is not significant after "
            f"Holm's correction over {pairs} pairs"
        )
    return text
