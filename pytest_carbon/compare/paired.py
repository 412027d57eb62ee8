"""Paired, interleaved comparison: the ratio of two sides measured round by round.

Two measurements taken minutes apart on a shared machine differ by the machine's drift
(±30% on a busy 2-core VM), not only by the code. Measuring the two sides side by side,
A B B A A B ..., makes each pair see the same machine at the same moment; the ratio
within a pair cancels the drift, and the spread of the per-pair ratios is the noise that
is left. This is what asv's ``--interleave-rounds`` and "duet benchmarking" (Bulej et
al., ICPE 2020) do for time.

The statistic is the **median of the per-pair ratios** ``a_i / b_i``, with a
distribution-free confidence interval from **order statistics**: for n pairs the
interval ``[r_(k), r_(n-k+1)]`` of the sorted ratios covers the true median with
probability ``1 - 2 P(Binomial(n, 1/2) < k)``, exactly, whatever the noise's shape
(it assumes only that pairs are independent and the ratio's median is what is asked).
The largest k whose coverage is still at least the asked confidence is used; the
coverage actually reached is reported. With fewer than 6 pairs no interval reaches 95%
(5 pairs cover 93.75% at best): the interval is then the full range, with its lower
coverage, and the precision counts as not reached.

Stopping is driven by precision: pairs are added until the interval's half-width,
relative to the median, is at most ``precision`` (default 5%) or a time cap is reached.

**Many tests at once.** A CI gate judges every test of a suite; at 95% per test, one
of 20 unchanged tests would be expected to stray. :func:`family_confidence` gives the
Bonferroni level ``1 - 0.05 / m`` for ``m`` judgements, so that the chance of *any*
false alarm in the run stays at most 5% (family-wise); every interval, its stopping
rule and the least number of pairs (:func:`pairs_needed`) then use that level.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Nominal confidence of every interval.
CONFIDENCE = 0.95
#: Fewest pairs before the precision rule may stop: below 6 no 95% interval exists.
MIN_PAIRS = 6
#: Interval method, as written into reports.
METHOD = "median of paired ratios; exact binomial order-statistic 95% interval"

#: Verdict words, shared by prompt items and CI comparisons.
REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no change"
INCONCLUSIVE = "inconclusive"


def family_confidence(judgements: int, alpha: float = 1.0 - CONFIDENCE) -> float:
    """The per-judgement confidence that keeps the family-wise error of ``judgements``
    judgements at ``alpha`` (Bonferroni: valid whatever their dependence)."""
    return 1.0 - alpha / max(int(judgements), 1)


def pairs_needed(confidence: float = CONFIDENCE) -> int:
    """The fewest pairs with which an order-statistic interval reaches ``confidence``
    (6 at 95%; 13 at 1 - 0.05/200)."""
    n = 1
    while 2.0 * 0.5**n > 1.0 - confidence + 1e-15:
        n += 1
    return max(n, 2)


def _binom_cdf_half(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    if k < 0:
        return 0.0
    # scipy.stats.binom would do, but importing scipy.stats costs ~0.6 s; n is small.
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2.0**n


def median_interval(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """``(low, high, coverage)``: the order-statistic interval for the median of
    ``values``. ``coverage`` is the exact probability that it covers the median; it is
    below ``confidence`` only when there are too few values for any interval to reach it
    (then ``low, high`` are the minimum and maximum)."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    if n == 1:
        return xs[0], xs[0], 0.0
    alpha = 1.0 - confidence
    best = 1  # k = 1 is the full range
    k = 1
    while k <= n // 2 and _binom_cdf_half(k - 1, n) <= alpha / 2:
        best = k
        k += 1
    coverage = 1.0 - 2.0 * _binom_cdf_half(best - 1, n)
    return xs[best - 1], xs[n - best], coverage


def _median(values: Sequence[float]) -> float:
    xs = sorted(values)
    n = len(xs)
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2.0


@dataclass(frozen=True)
class PairedRatio:
    """The ratio ``a / b`` of two interleaved sides (a: candidate or head; b: reference
    or base). ``ratio`` is the median of the per-pair ratios; ``low``/``high`` its
    interval; ``coverage`` the interval's exact coverage; ``pairs`` the number of pairs."""

    ratio: float
    low: float
    high: float
    pairs: int
    coverage: float
    method: str = METHOD
    #: The confidence asked (95%, or the family-wise level of :func:`family_confidence`).
    confidence: float = CONFIDENCE

    @property
    def precision(self) -> float:
        """Half-width of the interval relative to the ratio (0.05 = ±5%); infinite when
        the interval does not reach the asked confidence."""
        if self.coverage + 1e-12 < self.confidence or self.ratio <= 0:
            return math.inf
        return max(self.high / self.ratio - 1.0, 1.0 - self.low / self.ratio)

    @property
    def contains_one(self) -> bool:
        return self.low <= 1.0 <= self.high

    def reached(self, precision: float) -> bool:
        return self.precision <= precision

    def describe(self, subject: str = "the reference") -> str:
        """One line for people: the ratio, its interval, and what it means in words."""
        from pytest_carbon.report.format import ratio as fmt_ratio
        from pytest_carbon.report.format import sig

        span = f"{sig(self.low)}–{sig(self.high)}"
        if self.coverage + 1e-12 < self.confidence:
            return (
                f"{fmt_ratio(self.ratio)} (range {span} over {self.pairs} pairs, covering "
                f"{self.coverage:.0%}): too few pairs"
            )
        level = f"{self.confidence * 100:.4g}%"
        text = f"{fmt_ratio(self.ratio)} ({level} CI {span}, {self.pairs} pairs)"
        if self.contains_one:
            return text + f": indistinguishable from {subject}"
        side = "costlier" if self.low > 1 else "cheaper"
        return text + f": {side} than {subject}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairedRatio:
        """The inverse of :meth:`to_json` (``precision`` and ``contains_one`` are derived)."""
        return cls(
            float(data["ratio"]),
            float(data["low"]),
            float(data["high"]),
            int(data["pairs"]),
            float(data["coverage"]),
            str(data.get("method", METHOD)),
            float(data.get("confidence", CONFIDENCE)),
        )

    @classmethod
    def parse(cls, data: Any) -> PairedRatio | None:
        """:meth:`from_json` for data read from a report: None when it is absent or not
        a paired ratio (an older report, the reference's own item)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "pairs": self.pairs,
            "coverage": self.coverage,
            "precision": None if math.isinf(self.precision) else self.precision,
            "contains_one": self.contains_one,
            "method": self.method,
            "confidence": self.confidence,
        }


def paired_ratio(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedRatio:
    """The paired ratio of two equally long series measured pair by pair."""
    if len(a) != len(b):
        raise ValueError(f"unpaired series: {len(a)} against {len(b)} values")
    ratios = [x / y for x, y in zip(a, b, strict=True) if y > 0 and x >= 0]
    if not ratios:
        raise ValueError("no pair with a positive denominator")
    low, high, coverage = median_interval(ratios, confidence)
    return PairedRatio(_median(ratios), low, high, len(ratios), coverage, METHOD, confidence)


def verdict(pr: PairedRatio, threshold: float, precision: float) -> str:
    """The verdict on a head/base (or candidate/reference) ratio.

    ``regression`` when the interval's lower bound exceeds ``1 + threshold``;
    ``improvement`` when its upper bound is below the inverse, ``1 / (1 + threshold)``;
    otherwise ``inconclusive`` when the precision was not reached, else ``no change``.
    A wide interval entirely beyond a bound is still a verdict: precision only decides
    whether "no change" may be claimed."""
    if pr.coverage + 1e-12 >= pr.confidence:
        if pr.low > 1.0 + threshold:
            return REGRESSION
        if pr.high < 1.0 / (1.0 + threshold):
            return IMPROVEMENT
    return NO_CHANGE if pr.reached(precision) else INCONCLUSIVE


@dataclass
class Interleaved:
    """What :func:`interleave` measured: the pairs (a, b) in the order taken, the order
    string ("AB", "BA", ...), the ratio, whether the precision was reached and why it
    stopped."""

    pairs: list[tuple[float, float]] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    result: PairedRatio | None = None
    reached: bool = False
    stopped: str = ""
    elapsed_s: float = 0.0


def interleave(
    measure_a: Callable[[], float],
    measure_b: Callable[[], float],
    *,
    precision: float = 0.05,
    max_time_s: float = 30.0,
    min_pairs: int = MIN_PAIRS,
    max_pairs: int = 200,
    clock: Callable[[], float] = time.monotonic,
    confidence: float = CONFIDENCE,
) -> Interleaved:
    """Measure A and B in alternating pairs, AB then BA (so that a drift within a pair
    favours neither side), until the paired ratio's interval is within ±``precision``
    (after at least ``min_pairs``), ``max_time_s`` has passed, or ``max_pairs`` pairs.

    ``measure_a``/``measure_b`` return one round's cost (energy per call, say); they may
    raise, which ends the comparison with the exception. ``clock`` is injectable so tests
    script time. ``confidence``: of the interval that decides when to stop (the
    family-wise level when many tests are judged); ``min_pairs`` is raised to what that
    level needs (:func:`pairs_needed`)."""
    min_pairs = max(min_pairs, pairs_needed(confidence))
    out = Interleaved()
    start = clock()
    while True:
        order = "AB" if len(out.pairs) % 2 == 0 else "BA"
        if order == "AB":
            a = measure_a()
            b = measure_b()
        else:
            b = measure_b()
            a = measure_a()
        out.pairs.append((a, b))
        out.orders.append(order)
        n = len(out.pairs)
        out.elapsed_s = clock() - start
        try:
            out.result = paired_ratio(
                [p[0] for p in out.pairs], [p[1] for p in out.pairs], confidence
            )
        except ValueError:
            out.result = None
        if out.result is not None and n >= min_pairs and out.result.reached(precision):
            out.reached, out.stopped = True, f"precision ±{precision:.0%} reached"
            return out
        if out.elapsed_s >= max_time_s:
            out.stopped = f"time cap {max_time_s:g} s reached"
            return out
        if n >= max_pairs:
            out.stopped = f"pair cap {max_pairs} reached"
            return out


def crossover(
    measure: Callable[[int, str], float],
    *,
    precision: float = 0.05,
    max_time_s: float = 30.0,
    max_units: int = 100,
    clock: Callable[[], float] = time.monotonic,
    confidence: float = CONFIDENCE,
) -> Interleaved:
    """Interleaved pairs whose two **processes swap sides** between pairs, for a process
    that may stay slower than the other (its memory layout, hash seed, the CPU it sits
    on) for as long as it lives.

    ``measure(process, side)``: one round of ``side`` ("A" or "B") served by ``process``
    (0 or 1). A *unit* is two pairs: process 0 serves A and process 1 serves B, then
    process 0 serves B and process 1 serves A (each pair AB or BA in turn, as in
    :func:`interleave`). With a persistent factor ``p0``, ``p1`` per process the two
    ratios are ``(A p0)/(B p1)`` and ``(A p1)/(B p0)``: their geometric mean, the
    unit's ratio, is ``A/B`` whatever the factors. The interval is the order-statistic
    interval of the units' ratios (units, not pairs, are the independent draws); it
    stops like :func:`interleave` once ``pairs_needed(confidence)`` units reach
    ``precision``. ``pairs`` holds each unit's (A, B) as geometric means."""
    min_units = pairs_needed(confidence)
    out = Interleaved()
    ratios: list[float] = []
    start = clock()
    while True:
        u = len(ratios)
        first = "AB" if u % 2 == 0 else "BA"
        rounds: list[tuple[float, float]] = []
        for swap in (0, 1):
            # Pair `swap`: process `swap` serves A, the other serves B.
            pa, pb = swap, 1 - swap
            if first == "AB":
                a, b = measure(pa, "A"), measure(pb, "B")
            else:
                b, a = measure(pb, "B"), measure(pa, "A")
            rounds.append((a, b))
            out.orders.append(f"{first}:{'A0' if swap == 0 else 'A1'}")
        (a1, b1), (a2, b2) = rounds
        ga, gb = math.sqrt(max(a1 * a2, 0.0)), math.sqrt(max(b1 * b2, 0.0))
        out.pairs.append((ga, gb))
        if b1 > 0 and b2 > 0 and a1 >= 0 and a2 >= 0:
            ratios.append(math.sqrt((a1 / b1) * (a2 / b2)))
        out.elapsed_s = clock() - start
        if ratios:
            low, high, coverage = median_interval(ratios, confidence)
            out.result = PairedRatio(
                _median(ratios),
                low,
                high,
                len(ratios),
                coverage,
                "median of swapped-unit ratios (geometric mean of the two pairs whose "
                "processes swap sides); exact binomial order-statistic interval",
                confidence,
            )
        n = len(ratios)
        if out.result is not None and n >= min_units and out.result.reached(precision):
            out.reached, out.stopped = True, f"precision ±{precision:.0%} reached"
            return out
        if out.elapsed_s >= max_time_s:
            out.stopped = f"time cap {max_time_s:g} s reached"
            return out
        if len(out.pairs) >= max_units:
            out.stopped = f"unit cap {max_units} reached"
            return out
