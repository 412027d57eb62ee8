"""Screening for ``--carbon-compare-ref``: groups of tests first, single tests only where
a group may have changed.

Comparing every test alone needs, per test, a few calibration rounds and at least 6
pairs of 50 ms rounds (13 at the family-wise level of 200 tests): minutes for a few
hundred fast tests. Unchanged code need not pay that. The screen runs **groups** of
tests, interleaved like single tests: a group's round runs each of its tests whole
(setup, call, teardown, as pytest would, unlogged) in one meter window, on either side,
repeated until the round lasts about 50 ms. Groups are the whole suite, then its files.
For each group the paired ratio head/base of every screened metric gets a 95%
order-statistic interval (:mod:`pytest_carbon.compare.paired`); the group is

* **cleared** when every interval lies within ``[1/(1+t), 1+t]`` (``t``: the metric's
  ``--carbon-compare-fail`` threshold): no change beyond the threshold in the group's
  total; its tests are reported as screened, not examined alone;
* **descended into** otherwise (an interval that reaches beyond a bound, or the time
  cap): its files, then its tests, are examined.

**What a clear proves, and what it does not.** A cleared group's *total* did not change
by more than the threshold. A test whose own change is large but whose share of the
group is small can hide in a cleared group (a test making 5% of a group's energy must
double to move the group 5%). The screen is meant for the question a CI gate asks of
unchanged code, "did anything change noticeably?", at low cost; ``--carbon-compare-
screen=off`` examines every test alone.

**False alarms stay controlled.** Groups never give a verdict: only a test examined alone
can be called a regression, from rounds measured *after* the screen chose it. Given
which tests the screen chose (a choice made from earlier, separate rounds), each
examined test's interval is taken at ``1 - 0.05 / m`` for the ``m`` examined tests x
metrics (Bonferroni), so the chance of any false regression is at most 5% given the
choice, hence at most 5% overall. This is a two-stage (screen, then confirm) procedure
whose second stage is a Bonferroni-corrected family on fresh data; the screen only
decides how much of the 5% budget is spent and on which tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_carbon.compare import paired

#: Confidence of a group's interval (a group gives no verdict: this level only decides
#: when a group counts as unchanged, i.e. the screen's power, never the false alarms).
GROUP_CONFIDENCE = 0.95
#: Most pairs one group gets before the screen descends into it.
GROUP_MAX_PAIRS = 30
#: Fewest tests in a screened group. A smaller group's tests are examined alone: for a
#: few tests the screen saves little, and a group's total dilutes one test's change (one
#: test of three made 1.3x heavier moved a suite by 1.13x; with the per-process spread of
#: a few % that a whole suite's ratio shows, 4 of 20 such runs cleared the suite).
MIN_GROUP = 6
#: Most repetitions of a group in one round.
MAX_REPEATS = 1000
#: The change a group is screened for where no ``--carbon-compare-fail`` names the
#: metric: the gate the docs recommend (``energy:10%``). A test examined alone is still
#: judged against the 5% display threshold.
DEFAULT_THRESHOLD = 0.10
#: Verdicts of a group.
CLEARED = "cleared"
DESCEND = "descend"


@dataclass
class GroupResult:
    """What the screen measured for one group: its tests, the per-metric paired ratios,
    the decision and why it stopped."""

    name: str
    nodeids: list[str]
    decision: str = DESCEND
    ratios: dict[str, paired.PairedRatio] = field(default_factory=dict)
    pairs: int = 0
    chunks: int = 1
    stopped: str = ""
    elapsed_s: float = 0.0
    #: metric -> (head's rounds, base's rounds), per repetition.
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    def describe(self, thresholds: dict[str, float]) -> str:
        parts = []
        for metric, pr in self.ratios.items():
            t = thresholds.get(metric, 0.1)
            parts.append(
                f"{metric} head/base {pr.ratio:.3f} ({pr.confidence:.0%} CI {pr.low:.3f}-"
                f"{pr.high:.3f}, {pr.pairs} pairs) against +-{t:.0%}"
            )
        what = "within the threshold" if self.decision == CLEARED else "not excluded"
        return f"{self.name} ({len(self.nodeids)} tests): {'; '.join(parts)}: {what}"

    def to_json(self, thresholds: dict[str, float]) -> dict[str, Any]:
        return {
            "group": self.name,
            "tests": len(self.nodeids),
            "decision": self.decision,
            "pairs": self.pairs,
            "chunks": self.chunks,
            "stopped": self.stopped,
            "elapsed_s": self.elapsed_s,
            "thresholds": dict(thresholds),
            "ratios": {m: pr.to_json() for m, pr in self.ratios.items()},
            "head": {m: xs for m, (xs, _) in self.series.items()},
            "base": {m: ys for m, (_, ys) in self.series.items()},
        }


def cleared(pr: paired.PairedRatio, threshold: float) -> bool:
    """True when the interval reaches its confidence and lies within
    ``[1/(1+threshold), 1+threshold]``: no change beyond the threshold."""
    if pr.coverage + 1e-12 < pr.confidence:
        return False
    return 1.0 / (1.0 + threshold) <= pr.low and pr.high <= 1.0 + threshold


def beyond(pr: paired.PairedRatio, threshold: float) -> bool:
    """True when the interval lies wholly beyond a bound (the group changed: descend now)."""
    if pr.coverage + 1e-12 < pr.confidence:
        return False
    return pr.low > 1.0 + threshold or pr.high < 1.0 / (1.0 + threshold)


def screen_group(
    name: str,
    nodeids: list[str],
    measure_pair: Callable[[int], tuple[dict[str, float], dict[str, float]]],
    thresholds: dict[str, float],
    *,
    max_time_s: float,
    max_pairs: int = GROUP_MAX_PAIRS,
    confidence: float = GROUP_CONFIDENCE,
    clock: Callable[[], float] = time.monotonic,
) -> GroupResult:
    """Measure the group pair after pair until every metric's interval is within its
    threshold (cleared), one lies wholly beyond a bound, ``max_pairs`` pairs or
    ``max_time_s`` (descend). ``measure_pair(i)`` returns the i-th pair's per-metric
    values (head, base): the caller interleaves the two sides within it (chunk by chunk,
    AB then BA, :func:`chunks`)."""
    out = GroupResult(name, list(nodeids))
    need = paired.pairs_needed(confidence)
    series: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in thresholds}
    out.series = series
    start = clock()
    while True:
        n = out.pairs
        a, b = measure_pair(n)
        for m, (xs, ys) in series.items():
            xs.append(a[m])
            ys.append(b[m])
        out.pairs = n + 1
        out.elapsed_s = clock() - start
        if out.pairs >= need:
            try:
                out.ratios = {
                    m: paired.paired_ratio(xs, ys, confidence) for m, (xs, ys) in series.items()
                }
            except ValueError:
                out.ratios = {}
            if out.ratios and all(cleared(pr, thresholds[m]) for m, pr in out.ratios.items()):
                out.decision, out.stopped = CLEARED, "every interval within its threshold"
                return out
            if any(beyond(pr, thresholds[m]) for m, pr in out.ratios.items()):
                out.stopped = "an interval lies beyond its threshold"
                return out
        if out.pairs >= max_pairs:
            out.stopped = f"pair cap {max_pairs} reached"
            return out
        if out.elapsed_s >= max_time_s:
            out.stopped = f"time cap {max_time_s:g} s reached"
            return out


def by_file(nodeids: Sequence[str]) -> dict[str, list[str]]:
    """The tests grouped by file (the part of the node id before ``::``), in order."""
    out: dict[str, list[str]] = {}
    for n in nodeids:
        out.setdefault(n.split("::", 1)[0], []).append(n)
    return out


def screen(
    nodeids: list[str],
    judge: Callable[[str, list[str]], GroupResult],
) -> tuple[set[str], list[GroupResult]]:
    """Walk the tree (the suite, then its files, small files pooled: :func:`_file_groups`)
    with ``judge``; return the tests left to examine alone and every group's result. A
    group of one test is that test: examined alone, and so is every test of a group under
    :data:`MIN_GROUP` tests. A suite of one file descends from the suite to its tests."""
    results: list[GroupResult] = []
    if len(nodeids) < MIN_GROUP:
        return set(nodeids), results
    top = judge("the suite", list(nodeids))
    results.append(top)
    if top.decision == CLEARED:
        return set(), results
    files = by_file(nodeids)
    examine: set[str] = set()
    if len(files) < 2:
        return set(nodeids), results
    for name, ids in _file_groups(files):
        if len(ids) < MIN_GROUP:
            examine.update(ids)
            continue
        result = judge(name, ids)
        results.append(result)
        if result.decision != CLEARED:
            examine.update(ids)
    return examine, results


def _file_groups(files: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """The files as groups: a file of :data:`MIN_GROUP` tests or more is its own group;
    smaller files are pooled, in order, into groups of at least MIN_GROUP tests (a last
    pool short of it joins the pool before it). A pool dilutes one test's change no more
    than a file of as many tests does, and costs one group's rounds where its tests alone
    would cost a few seconds each (toolz: 15 tests in 9 small files, 57 s alone). A pool
    still under MIN_GROUP (no other small file to join) is examined test by test."""
    out: list[tuple[str, list[str]]] = []
    pools: list[tuple[list[str], list[str]]] = []  # (file names, tests)
    for name, ids in files.items():
        if len(ids) >= MIN_GROUP:
            out.append((name, ids))
            continue
        if not pools or len(pools[-1][1]) >= MIN_GROUP:
            pools.append(([], []))
        pools[-1][0].append(name)
        pools[-1][1].extend(ids)
    if len(pools) > 1 and len(pools[-1][1]) < MIN_GROUP:
        names, ids = pools.pop()
        pools[-1][0].extend(names)
        pools[-1][1].extend(ids)
    for names, ids in pools:
        label = (
            names[0]
            if len(names) == 1
            else f"{len(names)} small files ({names[0]} ... {names[-1]})"
        )
        out.append((label, ids))
    return out


def repeats_for(window_s: float, repeats: int, min_round_s: float) -> int:
    """Repetitions of a group per round so that a round lasts about ``min_round_s``,
    from a round of ``repeats`` repetitions that lasted ``window_s``."""
    per = max(window_s / max(repeats, 1), 1e-6)
    return int(min(MAX_REPEATS, max(1, math.ceil(min_round_s / per))))


def chunks(
    nodeids: Sequence[str], seconds: dict[str, float], min_round_s: float
) -> list[list[str]]:
    """The group cut, in order, into runs of tests lasting at least ``min_round_s`` each
    (by ``seconds``, a test's time run whole), the last one merged into the one before
    when shorter. A pair of the group is its chunks, each measured on both sides one
    right after the other: the two sides of a pair then see the machine within about
    ``2 x min_round_s`` of each other, not a whole sweep of the group apart."""
    out: list[list[str]] = []
    current: list[str] = []
    total = 0.0
    for n in nodeids:
        current.append(n)
        total += max(float(seconds.get(n) or 0.0), 0.0)
        if total >= min_round_s:
            out.append(current)
            current, total = [], 0.0
    if current:
        if out:
            out[-1].extend(current)
        else:
            out.append(current)
    return out
