"""Judge a change: per test and metric, regression, improvement, no change or inconclusive.

How a change is judged (``docs/ci-regression.md`` has the reasoning), on the per-round
values (``samples``) of each side, lower being better for every metric:

1. **Within the run.** Three or more samples on both sides: a one-sided Mann-Whitney U
   test of "the current values exceed the baseline values moved up by the threshold"
   (p <= 0.05 / m for m judgements: Bonferroni, :data:`FAMILY_ALPHA` for the whole
   comparison), or with ``test="bootstrap"`` an interval at that level of the ratio (or
   difference) of medians beyond the threshold. Fewer samples: **inconclusive**, never a
   regression, with what to run instead. A record whose windows last under
   :data:`MIN_WINDOW_S` is too short to measure: unmeasured, never judged.
2. **Between runs.** Rounds of one run share that run's drift, so a change supported
   within the run must also exceed the between-run noise, known once 3 or more runs of
   this machine are stored: the larger of the spread of this test's stored medians
   (:func:`~pytest_carbon.compare.stats.noise_level`) and the machine's single-run
   excursion (:func:`~pytest_carbon.compare.stats.excursion_tail`: how far any of the
   suite's tests strayed from its neighbouring runs, alone, at the family's level; beside
   a neighbour sharing a core one test can run 36-57% slower for a whole run).
3. **The verdict.** Both passed: ``regression`` (or ``improvement``, downwards). With
   fewer than 3 stored runs the noise between separate runs is unknown, so every change is
   ``inconclusive`` (the A/A floor measured on this machine now, never below
   :data:`NOISE_FLOOR`, is shown, but one session cannot see the drift between runs); with
   3 or more, a change within the threshold is ``noise`` (shown as "no change"), a larger
   one ``inconclusive``.

A paired, interleaved comparison (``--carbon-compare-ref``) has its own rules, in
:func:`pytest_carbon.compare.paired.verdict`; its results use the same
:class:`MetricChange` with ``method="paired"``.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_carbon.compare import paired
from pytest_carbon.compare.stats import (
    ALPHA,
    MIN_HISTORY,
    bootstrap_interval,
    excursion_tail,
    excursions,
    mann_whitney_greater,
    metric_samples,
    noise_level,
    relative_change,
)

#: What a change between separate runs cannot be judged without (stored runs to size it).
UNSIZED = "the noise between separate runs is unknown"
#: Lowest relative noise assumed between two runs; also the floor when none was measured.
NOISE_FLOOR = 0.05
#: The chance of any false alarm in a whole comparison (family-wise, Bonferroni): each of
#: m judgements is tested at FAMILY_ALPHA / m.
FAMILY_ALPHA = 0.05
#: A record whose measured windows last less than this (duration / rounds) is too short
#: to measure: said so, never judged (a counter's update period, /proc's 10 ms ticks).
MIN_WINDOW_S = 0.01
#: Common tests needed before a suite-wide shift is called machine drift.
MIN_DRIFT_TESTS = 3
#: Samples needed on each side for a statistical test.
MIN_SAMPLES = 3
#: Threshold for metrics shown without a fail spec: smaller changes are not worth a word.
DISPLAY_THRESHOLD = 0.05
#: Metrics always shown, and those a fail spec may name.
DISPLAY_METRICS = ("energy", "duration", "gco2e")
METRICS = ("energy", "dynamic_energy", "duration", "gco2e", "edp")
UNITS = {"energy": "J", "dynamic_energy": "J", "duration": "s", "gco2e": "g", "edp": "J·s"}
#: Statuses, worst first; "noise" reads "no change" and is the paired verdict NO_CHANGE.
STATUSES = ("regression", "improvement", "unmeasured", "new", "missing", "inconclusive", "noise")
_VERDICTS = {
    "regression": paired.REGRESSION,
    "improvement": paired.IMPROVEMENT,
    "noise": paired.NO_CHANGE,
    "inconclusive": paired.INCONCLUSIVE,
}

#: Methods that read hardware counters; an estimate is not comparable with them.
_COUNTER_METHODS = {"measured", "attributed"}


# -- fail specs --------------------------------------------------------------------------


@dataclass(frozen=True)
class FailSpec:
    """A regression threshold: ``energy:10%`` (relative) or ``gco2e:0.5`` (absolute, g)."""

    metric: str
    value: float
    relative: bool
    text: str

    @property
    def threshold_text(self) -> str:
        if self.relative:
            return f"{self.value * 100:g}%"
        return f"{self.value:g} {UNITS[self.metric]}"


def parse_fail_spec(text: str) -> FailSpec:
    """``METRIC:N%`` or ``METRIC:N``. The grammar is the option's
    (:func:`pytest_carbon.options.parse_compare_fail`); :class:`ValueError` explains a bad one."""
    from pytest_carbon.options import parse_compare_fail

    try:
        clean = parse_compare_fail(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"bad fail spec {text!r}: {exc}") from None
    metric, _, value = clean.partition(":")
    relative = value.endswith("%")
    number = float(value.rstrip("%"))
    return FailSpec(metric, number / 100 if relative else number, relative, clean)


# -- one metric ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """The relative change below which two runs cannot be told apart on this machine,
    when too few runs are stored to know their spread. ``source`` says how it was found."""

    relative: float
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"relative": self.relative, "source": self.source}


DEFAULT_FLOOR = Floor(NOISE_FLOOR, "default noise floor (no A/A measurement on this machine)")


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` decided for one metric of one test."""

    status: str
    method: str
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    noise: float | None = None
    detail: str = ""


def judge(
    base: Sequence[float],
    current: Sequence[float],
    threshold: float,
    relative: bool,
    noise_history: Sequence[float] = (),
    test: str = "mann-whitney",
    floor: Floor = DEFAULT_FLOOR,
    alpha: float = ALPHA,
    tail: tuple[float | None, str] | None = None,
) -> Judgement:
    """Judge one metric's samples (see the module docstring for the rules).

    ``noise_history``: this test's per-run medians in the stored runs of this machine.
    ``floor``: the between-run noise shown when fewer than 3 runs are stored.
    ``alpha``: the significance level of this judgement (the family's share of 5%).
    ``tail``: the machine's single-run excursion at this family's level (relative change,
    description; :func:`~pytest_carbon.compare.stats.excursion_tail`), pooled over the
    suite's stored runs: the between-run noise is never below it, and while it is unknown
    (None: too few excursions) nothing is a regression. Not given: not required."""
    mb, mc = statistics.median(base), statistics.median(current)
    rel = relative_change(mb, mc)
    limit = f"{threshold * 100:g}%" if relative else f"{threshold:g}"
    if len(base) < MIN_SAMPLES or len(current) < MIN_SAMPLES:
        # One or two values a side carry no noise estimate: a change cannot be told from
        # the machine's drift. Never a regression; say what would tell.
        return Judgement(
            "inconclusive",
            "too-few-samples",
            detail=(
                f"n={len(base)}/{len(current)}: change {_pct(rel)}, but with fewer than "
                f"{MIN_SAMPLES} rounds a side a change cannot be told from noise; run both "
                "sides with --carbon-rounds=5 (or use --carbon-compare-ref, interleaved)"
            ),
        )
    between = noise_level(noise_history)
    few_runs = between is None
    if between is None:
        noise = max(floor.relative, NOISE_FLOOR)
        source = f"{floor.source}; fewer than 3 stored runs"
    else:
        # Identical stored medians (a coarse counter) would say 0%: never below the floor.
        noise = max(between, NOISE_FLOOR)
        source = f"between-run spread of {len(noise_history)} stored runs"
        if tail is not None and tail[0] is not None and tail[0] > noise:
            noise = tail[0]
            source = f"{tail[1]} of this suite's tests in the stored runs"
    tail_unknown = tail is not None and tail[0] is None
    up, down, p, interval = _within_run(base, current, threshold, relative, rel, test, alpha)
    n = f"n={len(base)}/{len(current)}"
    if p is not None:
        method = "mann-whitney"
        detail = (
            f"one-sided Mann-Whitney U: p={p:.3g} that the change exceeds {limit}, "
            f"against alpha {alpha:.3g} ({n})"
        )
    elif interval is not None:
        method = "bootstrap"
        what = "ratio" if relative else "difference"
        detail = (
            f"95% bootstrap interval of the {what} of medians [{interval[0]:.4g}, "
            f"{interval[1]:.4g}] vs threshold {limit} ({n})"
        )
    else:
        method = "threshold+noise-floor" if few_runs else "threshold+history"
        detail = f"{n} sample(s): change {_pct(rel)} vs threshold {limit}"
    inside = rel is not None and abs(rel) <= noise
    if (up or down) and not inside and few_runs:
        # Beyond what one session's A/A shows, but two separate runs differ by more than
        # that: a neighbour sharing a core slows single tests for a whole run (+36-57%
        # seen on a 2-core VM). Without stored runs to size that, never a regression.
        status = "inconclusive"
        detail += (
            f"; beyond the measured floor {noise * 100:.1f}% ({source}), but {UNSIZED}: "
            "a change cannot be told from a run that was "
            "slower alone; store 3+ runs of this machine (--carbon-autosave, or compare "
            "--history DIR) or use --carbon-compare-ref"
        )
    elif (up or down) and not inside and tail_unknown:
        # The test's own runs are known, but not yet how far any single run can stray at
        # this family's level: a test's own few runs rarely show its rare slow run.
        status = "inconclusive"
        detail += (
            f"; beyond this test's between-run spread {noise * 100:.1f}% ({source}), but "
            f"{UNSIZED} at the family's level: {tail[1] if tail else ''}; or use "
            "--carbon-compare-ref"
        )
    elif (up or down) and not inside:
        status = "regression" if up else "improvement"
        detail += f"; beyond the between-run noise {noise * 100:.1f}% ({source})"
    else:
        if (up or down) and inside:
            what = "the run-to-run noise" if not few_runs else "the measured floor"
            detail += f"; but inside {what} of {noise * 100:.1f}% ({source})"
        else:
            detail += f"; noise {noise * 100:.1f}% ({source})"
        if relative and rel is not None:
            within = abs(rel) <= threshold
        else:
            within = abs(mc - mb) <= threshold
        status = "inconclusive" if few_runs or not within else "noise"
        if status == "inconclusive" and few_runs:
            detail += ": too few stored runs to claim no change"
    return Judgement(status, method, p, interval, noise, detail)


def _within_run(
    base: Sequence[float],
    current: Sequence[float],
    threshold: float,
    relative: bool,
    rel: float | None,
    test: str,
    alpha: float = ALPHA,
) -> tuple[bool, bool, float | None, tuple[float, float] | None]:
    """(supports a rise, supports a fall, p-value, bootstrap interval) from one run's data."""
    mb, mc = statistics.median(base), statistics.median(current)
    if len(base) >= MIN_SAMPLES and len(current) >= MIN_SAMPLES:
        if test == "bootstrap":
            lo, hi = bootstrap_interval(base, current, relative, level=1 - alpha)
            rise, fall = (1 + threshold, 1 - threshold) if relative else (threshold, -threshold)
            return lo > rise, hi < fall, None, (lo, hi)
        if relative:
            raised = [b * (1 + threshold) for b in base]
            lowered = [b * (1 - threshold) for b in base]
        else:
            raised = [b + threshold for b in base]
            lowered = [b - threshold for b in base]
        p_up = mann_whitney_greater(current, raised)
        p_down = mann_whitney_greater(lowered, current)
        up = p_up <= alpha and (rel is None or rel > 0)
        down = p_down <= alpha and (rel is None or rel < 0) and not up
        p = p_up if up else p_down if down else min(p_up, p_down)
        return up, down, p, None
    if rel is None:
        # A zero baseline has no relative change: only an absolute threshold can judge it.
        return (not relative and mc - mb > threshold), False, None, None
    beyond = abs(rel) > threshold if relative else abs(mc - mb) > threshold
    return beyond and rel > 0, beyond and rel < 0, None, None


def _pct(change: float | None) -> str:
    return "n/a" if change is None else f"{change * 100:+.1f}%"


# -- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MetricChange:
    """The change of one test in one metric between the baseline and this run.

    ``base``/``current``: medians of the per-round values (None where absent).
    ``change``: ``current / base - 1`` (None where undefined); for a paired comparison,
    the median paired ratio minus 1.
    ``status``: regression, improvement, noise (no change), inconclusive, new, missing or
    unmeasured. ``method``: mann-whitney, bootstrap, threshold+noise-floor,
    threshold+history or paired. ``paired``: the paired ratio's JSON, for ``paired``.
    """

    nodeid: str
    metric: str
    status: str
    base: float | None = None
    current: float | None = None
    change: float | None = None
    method: str | None = None
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    noise: float | None = None
    spec: FailSpec | None = None
    n_base: int = 0
    n_current: int = 0
    comparable: bool = True
    detail: str = ""
    paired: Mapping[str, Any] | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def failing(self) -> bool:
        return self.status == "regression" and self.spec is not None and self.comparable

    @property
    def verdict(self) -> str:
        """The verdict word shared with paired comparisons (regression, improvement, no
        change, inconclusive), or the status where there is nothing to judge."""
        return _VERDICTS.get(self.status, self.status)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodeid": self.nodeid,
            "metric": self.metric,
            "unit": self.unit,
            "base": self.base,
            "current": self.current,
            "change": self.change,
            "status": self.status,
            "method": self.method,
            "p_value": self.p_value,
            "interval": list(self.interval) if self.interval else None,
            "noise": self.noise,
            "threshold": self.spec.text if self.spec else None,
            "n_base": self.n_base,
            "n_current": self.n_current,
            "comparable": self.comparable,
            "failing": self.failing,
            "detail": self.detail,
            "verdict": self.verdict,
        }
        if self.paired is not None:
            out["paired"] = dict(self.paired)
        return out


@dataclass
class Comparison:
    """Every test's changes, the failing ones, and what the reader should be warned about."""

    changes: list[MetricChange]
    failures: list[MetricChange]
    warnings: list[str]
    specs: list[FailSpec] = field(default_factory=list)
    #: metric -> (baseline total, current total) over the tests present on both sides.
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)
    base_label: str = "baseline"
    current_label: str = "this run"
    #: "stored" (against a stored run) or "paired" (--carbon-compare-ref, interleaved).
    mode: str = "stored"
    floor: Floor | None = None
    #: How many judgements share the family-wise 5% (Bonferroni; None: not corrected).
    family: int | None = None
    #: --carbon-compare-ref's screen: each group's result (None: not screened).
    screen: list[dict[str, Any]] | None = None

    def by_test(self) -> dict[str, dict[str, MetricChange]]:
        out: dict[str, dict[str, MetricChange]] = {}
        for c in self.changes:
            out.setdefault(c.nodeid, {}).setdefault(c.metric, c)
        return out

    def counts(self) -> dict[str, int]:
        """Tests per status; a test takes its worst status across metrics."""
        out = dict.fromkeys(STATUSES, 0)
        for per_metric in self.by_test().values():
            statuses = {c.status for c in per_metric.values()}
            out[next(s for s in STATUSES if s in statuses)] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        out = {
            "base": self.base_label,
            "current": self.current_label,
            "fail": [s.text for s in self.specs],
            "totals": {k: {"base": b, "current": c} for k, (b, c) in self.totals.items()},
            "counts": self.counts(),
            "failures": [c.to_json() for c in self.failures],
            "changes": [c.to_json() for c in self.changes],
            "warnings": list(self.warnings),
            "mode": self.mode,
        }
        if self.floor is not None:
            out["floor"] = self.floor.to_json()
        if self.screen is not None:
            out["screen"] = list(self.screen)
        if self.family is not None:
            out["family"] = {
                "judgements": self.family,
                "alpha": FAMILY_ALPHA,
                "per_judgement_alpha": FAMILY_ALPHA / max(self.family, 1),
                "correction": "bonferroni",
            }
        return out

    def render_lines(self, width: int = 100, verbose: bool = False, top: int = 20) -> list[str]:
        """The comparison as terminal lines (see :mod:`pytest_carbon.compare.render`)."""
        from pytest_carbon.compare.render import render_lines

        return render_lines(self, width=width, verbose=verbose, top=top)


def comparable_class(method: Any) -> str | None:
    if method in _COUNTER_METHODS:
        return "measured"
    return "estimated" if method == "estimated" else None


def machine_id(report: Mapping[str, Any]) -> str | None:
    mid = (report.get("machine") or {}).get("machine_id")
    return str(mid) if mid else None


def _multi_machine(report: Mapping[str, Any]) -> bool:
    return len(report.get("machines") or []) > 1


def _index(report: Mapping[str, Any], by_machine: bool) -> dict[str, list[Mapping[str, Any]]]:
    """Records by test key: the node id, prefixed by the machine in merged reports."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for rec in report.get("tests") or []:
        nodeid = str(rec.get("nodeid"))
        key = f"{rec.get('machine_id')}::{nodeid}" if by_machine else nodeid
        out.setdefault(key, []).append(rec)
    return out


def _pooled(records: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    return [v for r in records for v in metric_samples(r, metric)]


def _history_values(
    history: Sequence[Mapping[str, Any]], by_machine: bool
) -> Callable[[str, str], list[float]]:
    """Per-run medians of each (test, metric) in the stored history."""
    indexes = [_index(h, by_machine) for h in history]

    def values(key: str, metric: str) -> list[float]:
        out = []
        for idx in indexes:
            vals = _pooled(idx.get(key, ()), metric)
            if vals:
                out.append(statistics.median(vals))
        return out

    return values


def compare(
    base: Mapping[str, Any],
    current: Mapping[str, Any],
    fail: Sequence[FailSpec] = (),
    history: Sequence[Mapping[str, Any]] | None = None,
    *,
    test: str = "mann-whitney",
    floor: Floor | None = None,
) -> Comparison:
    """Compare two reports test by test; ``fail`` decides which regressions fail.

    ``history``: stored past runs of this machine, for the between-run noise. ``floor``:
    the between-run noise assumed while fewer than 3 runs are stored (default: the floor
    recorded in either report, else :data:`NOISE_FLOOR`). ``test``: ``mann-whitney``
    (default) or ``bootstrap`` for multi-sample comparisons.
    """
    if test not in ("mann-whitney", "bootstrap"):
        raise ValueError(f"unknown test {test!r}: expected mann-whitney or bootstrap")
    floor = floor or floor_of_reports(base, current) or DEFAULT_FLOOR
    warnings: list[str] = []
    mid_b, mid_c = machine_id(base), machine_id(current)
    if mid_b and mid_c and mid_b != mid_c:
        warnings.append(
            f"the baseline was measured on machine {mid_b}, this run on {mid_c}: energy "
            "differs between machines, so changes may reflect the hardware, not the code"
        )
    by_machine = _multi_machine(base) or _multi_machine(current)
    ib, ic = _index(base, by_machine), _index(current, by_machine)
    hist_values = _history_values(history or [], by_machine)

    specs_by_metric: dict[str, list[FailSpec]] = {}
    for s in fail:
        specs_by_metric.setdefault(s.metric, []).append(s)
    ordered = list(DISPLAY_METRICS) + [m for m in METRICS if m not in DISPLAY_METRICS]
    metrics = [m for m in ordered if m in DISPLAY_METRICS or m in specs_by_metric]

    common = [k for k in ib if k in ic]
    # Tests too short to measure are never judged: they are not in the family.
    judged = [
        k
        for k in common
        if all(w is None or w >= MIN_WINDOW_S for w in (_window_s(ib[k]), _window_s(ic[k])))
    ]
    family = max(len(judged), 1) * max(len(specs_by_metric), 1)
    alpha = FAMILY_ALPHA / family
    tails = _machine_tails(judged, metrics, history or [], hist_values, family)
    shifts = {
        m: _drift([relative_change(*_medians(ib[k], ic[k], m)) for k in judged]) for m in metrics
    }
    changes: list[MetricChange] = []
    mixed_methods = 0
    too_short = 0
    totals: dict[str, list[float]] = {m: [0.0, 0.0] for m in DISPLAY_METRICS}
    for key in list(ib) + [k for k in ic if k not in ib]:
        rb, rc = ib.get(key), ic.get(key)
        if rb is None or rc is None:
            status = "new" if rb is None else "missing"
            changes += [MetricChange(nodeid=key, metric=m, status=status) for m in metrics]
            continue
        classes = (
            {comparable_class(r.get("method")) for r in rb},
            {comparable_class(r.get("method")) for r in rc},
        )
        both = classes[0] | classes[1]
        comparable = not ("measured" in both and "estimated" in both and classes[0] != classes[1])
        mixed_methods += not comparable
        short = [w for w in (_window_s(rb), _window_s(rc)) if w is not None and w < MIN_WINDOW_S]
        if short:
            too_short += 1
            changes += [
                MetricChange(
                    nodeid=key,
                    metric=m,
                    status="unmeasured",
                    detail=(
                        f"too short to measure: its windows last {min(short) * 1e3:.2f} ms, "
                        f"under {MIN_WINDOW_S * 1e3:g} ms; not judged (measure it with the "
                        "carbon fixture, which repeats it, or with --carbon-compare-ref)"
                    ),
                )
                for m in metrics
            ]
            continue
        for metric in metrics:
            sb, sc = _pooled(rb, metric), _pooled(rc, metric)
            if not sb or not sc:
                changes.append(
                    MetricChange(
                        nodeid=key,
                        metric=metric,
                        status="unmeasured",
                        base=statistics.median(sb) if sb else None,
                        current=statistics.median(sc) if sc else None,
                        n_base=len(sb),
                        n_current=len(sc),
                        detail="nothing measured " + ("in the baseline" if not sb else "now"),
                    )
                )
                continue
            mb, mc = statistics.median(sb), statistics.median(sc)
            if metric in totals:
                totals[metric][0] += mb
                totals[metric][1] += mc
            specs: list[FailSpec | None] = [*specs_by_metric.get(metric, [])] or [None]
            shift = shifts.get(metric)
            # The whole suite moved: the machine and the code cannot be told apart for
            # that move, so each test is judged against its baseline moved with the suite.
            sb_judged = sb if shift is None else [b * (1.0 + shift) for b in sb]
            for spec in specs:
                j = judge(
                    sb_judged,
                    sc,
                    spec.value if spec else DISPLAY_THRESHOLD,
                    spec.relative if spec else True,
                    hist_values(key, metric),
                    test,
                    floor,
                    alpha,
                    tails.get(metric),
                )
                detail = j.detail
                if shift is not None:
                    detail = (
                        f"judged against the baseline moved with the whole suite "
                        f"({_pct(shift)}): {detail}"
                    )
                if not comparable:
                    detail += "; methods differ (measured vs estimated): not comparable"
                changes.append(
                    MetricChange(
                        nodeid=key,
                        metric=metric,
                        status=j.status,
                        base=mb,
                        current=mc,
                        change=relative_change(mb, mc),
                        method=j.method,
                        p_value=j.p_value,
                        interval=j.interval,
                        noise=j.noise,
                        spec=spec,
                        n_base=len(sb),
                        n_current=len(sc),
                        comparable=comparable,
                        detail=detail,
                    )
                )
    drift = shifts.get("energy")
    if drift is not None:
        warnings.append(
            f"the whole suite's energy moved by {_pct(drift)} (median over the common "
            "tests): the machine was likely slower or busier in one run, or the change is "
            "everywhere; that move cannot be told from the machine's, so each test is "
            "judged against its baseline moved with the suite (gate with "
            "--carbon-compare-ref to judge it)"
        )
    few = sorted({c.nodeid for c in changes if c.method == "too-few-samples"})
    if few:
        warnings.append(
            f"{len(few)} test(s) have fewer than {MIN_SAMPLES} rounds a side: a change "
            "cannot be told from noise, so they are inconclusive, never a regression; "
            "measure both runs with --carbon-rounds=5 (or use --carbon-compare-ref)"
        )
    unsized = sorted(
        {c.nodeid for c in changes if c.status == "inconclusive" and UNSIZED in c.detail}
    )
    if unsized:
        known = [t for t in tails.values() if t is not None]
        why = (
            known[0][1]
            if known
            else f"fewer than {MIN_HISTORY} stored runs of this machine (store runs with "
            "--carbon-autosave)"
        )
        warnings.append(
            f"{len(unsized)} test(s) changed beyond the threshold within the run, but "
            f"{UNSIZED}: {why}; inconclusive, never a regression (or gate with "
            "--carbon-compare-ref)"
        )
    if too_short:
        warnings.append(
            f"{too_short} test(s) too short to measure (windows under "
            f"{MIN_WINDOW_S * 1e3:g} ms): listed as unmeasured, never gated"
        )
    if mixed_methods:
        warnings.append(
            f"{mixed_methods} test(s) were measured with hardware counters on one side and "
            "estimated on the other: not comparable, so never counted as failures"
        )
    methods_b = (base.get("summary") or {}).get("methods") or {}
    methods_c = (current.get("summary") or {}).get("methods") or {}
    if not mixed_methods and methods_b and methods_c:
        cb = {comparable_class(m) for m, n in methods_b.items() if n}
        cc = {comparable_class(m) for m, n in methods_c.items() if n}
        if cb != cc:
            warnings.append(
                f"methods differ: baseline {sorted(methods_b)}, this run {sorted(methods_c)}"
            )
    has_common = any(c.status not in ("new", "missing") for c in changes)
    return Comparison(
        changes=changes,
        failures=[c for c in changes if c.failing],
        warnings=warnings,
        specs=list(fail),
        totals={m: (b, c) for m, (b, c) in totals.items()} if has_common else {},
        floor=floor,
        family=family,
    )


def _machine_tails(
    judged: Sequence[str],
    metrics: Sequence[str],
    history: Sequence[Mapping[str, Any]],
    hist_values: Callable[[str, str], list[float]],
    family: int,
) -> dict[str, tuple[float | None, str] | None]:
    """Per metric, the machine's single-run excursion at the family's level, pooled over
    the common tests long enough to judge (:func:`~pytest_carbon.compare.stats.excursions`),
    or (None, why) while too few. Nothing with fewer than :data:`MIN_HISTORY` stored runs."""
    if len(history) < MIN_HISTORY:
        return {}
    level = 1.0 - FAMILY_ALPHA / family
    out: dict[str, tuple[float | None, str] | None] = {}
    for metric in metrics:
        per_test = [excursions(hist_values(k, metric)) for k in judged]
        pooled = [x for xs in per_test for x in xs]
        value, how = excursion_tail(pooled, level)
        if value is None:
            need = math.ceil(family / FAMILY_ALPHA - 1 - 1e-9)
            tests = max(1, sum(1 for xs in per_test if xs))
            more = math.ceil(max(need - len(pooled), 0) / tests)
            how = (
                f"{len(pooled)} single-run excursions of {tests} test(s) in {len(history)} "
                f"stored runs, where a family of {family} judgements needs {need}: about "
                f"{more} more stored runs of this machine"
            )
        out[metric] = (value, how)
    return out


def _window_s(records: Sequence[Mapping[str, Any]]) -> float | None:
    """The median length of a record's measured windows (duration / rounds)."""
    vals = []
    for r in records:
        d, n = r.get("duration_s"), r.get("rounds")
        if isinstance(d, (int, float)) and isinstance(n, int) and n > 0:
            vals.append(float(d) / n)
    return statistics.median(vals) if vals else None


def floor_of_reports(*reports: Mapping[str, Any]) -> Floor | None:
    """The largest A/A floor recorded in the reports (``noise_floor``), if any."""
    found = []
    for r in reports:
        nf = r.get("noise_floor")
        if isinstance(nf, Mapping) and isinstance(nf.get("relative"), (int, float)):
            found.append(Floor(float(nf["relative"]), str(nf.get("source") or "stored floor")))
    return max(found, key=lambda f: f.relative) if found else None


def _medians(
    rb: Sequence[Mapping[str, Any]], rc: Sequence[Mapping[str, Any]], metric: str
) -> tuple[float | None, float | None]:
    sb, sc = _pooled(rb, metric), _pooled(rc, metric)
    return (statistics.median(sb) if sb else None, statistics.median(sc) if sc else None)


def _drift(changes: Sequence[float | None]) -> float | None:
    """The suite's common move: the median change over the judged tests when it exceeds
    :data:`NOISE_FLOOR` and at least two thirds of the tests moved *together* with it (a
    log change within half the median's of it), as a slower machine moves them all; else
    None. Tests that moved by different amounts (two of three changed, +30% and +200%)
    are not a common move: each is judged on its own."""
    logs = [math.log1p(c) for c in changes if c is not None and c > -1.0]
    if len(logs) < MIN_DRIFT_TESTS:
        return None
    mid = statistics.median(logs)
    if abs(mid) <= math.log1p(NOISE_FLOOR):
        return None
    together = sum(1 for x in logs if abs(x - mid) <= abs(mid) / 2)
    return math.expm1(mid) if together * 3 >= 2 * len(logs) else None
