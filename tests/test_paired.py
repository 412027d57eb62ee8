"""The paired-ratio statistics and the interleaving loop, on known samples and a scripted
clock (no wall-clock luck)."""

from __future__ import annotations

import math

import pytest

from pytest_carbon.compare.paired import (
    IMPROVEMENT,
    INCONCLUSIVE,
    NO_CHANGE,
    REGRESSION,
    PairedRatio,
    interleave,
    median_interval,
    paired_ratio,
    verdict,
)


def test_median_interval_order_statistics_match_the_binomial_table() -> None:
    # n = 10: the 95% interval is (x_2, x_9), coverage 1 - 2 * 11/1024.
    low, high, coverage = median_interval([float(i) for i in range(10, 0, -1)])
    assert (low, high) == (2.0, 9.0)
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)
    # n = 6: the full range is the only 95% interval (coverage 1 - 2/64).
    assert median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (1.0, 6.0, pytest.approx(62 / 64))
    # n = 5: no interval reaches 95%; the full range covers 93.75%.
    low, high, coverage = median_interval([5.0, 4.0, 3.0, 2.0, 1.0])
    assert (low, high) == (1.0, 5.0)
    assert coverage == pytest.approx(0.9375)
    # n = 100: the textbook ranks are 40 and 61.
    low, high, _ = median_interval([float(i) for i in range(1, 101)])
    assert (low, high) == (40.0, 61.0)


def test_paired_ratio_is_the_median_of_per_pair_ratios() -> None:
    # A common drift (x1, x2, x3 ...) cancels within each pair.
    base = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    head = [1.1 * b for b in base]
    pr = paired_ratio(head, base)
    assert pr.ratio == pytest.approx(1.1)
    assert pr.low == pytest.approx(1.1) and pr.high == pytest.approx(1.1)
    assert pr.pairs == 7
    assert pr.precision == pytest.approx(0.0)
    assert not pr.contains_one
    with pytest.raises(ValueError, match="unpaired"):
        paired_ratio([1.0], [1.0, 2.0])


def test_precision_is_infinite_without_a_95_percent_interval() -> None:
    pr = paired_ratio([1.0] * 5, [1.0] * 5)
    assert math.isinf(pr.precision)
    assert "too few pairs" in pr.describe()
    assert pr.to_json()["precision"] is None


def test_describe_says_in_words_when_the_interval_contains_one() -> None:
    same = PairedRatio(1.02, 0.97, 1.06, 20, 0.96)
    assert "indistinguishable from the reference" in same.describe()
    worse = PairedRatio(1.30, 1.25, 1.36, 20, 0.96)
    assert "costlier than the reference" in worse.describe()
    better = PairedRatio(0.5, 0.45, 0.55, 20, 0.96)
    assert "cheaper than base" in better.describe("base")


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.12, 1.20, REGRESSION),  # lower bound beyond +10%
        (0.80, 0.88, IMPROVEMENT),  # upper bound below 1/1.1 = 0.909
        (0.98, 1.02, NO_CHANGE),  # precise, and within the threshold
        (0.80, 1.30, INCONCLUSIVE),  # precision ±5% not reached
        (1.05, 1.11, NO_CHANGE),  # above 1 but not beyond the threshold
    ],
)
def test_verdict_rules(low: float, high: float, expected: str) -> None:
    pr = PairedRatio((low + high) / 2, low, high, 30, 0.95)
    assert verdict(pr, threshold=0.10, precision=0.05) == expected


def test_verdict_never_decides_on_too_few_pairs() -> None:
    pr = PairedRatio(2.0, 1.9, 2.1, 5, 0.9375)
    assert verdict(pr, threshold=0.10, precision=0.05) == INCONCLUSIVE


class Scripted:
    """A side whose cost per round is scripted, and a clock that advances per round."""

    def __init__(self, name: str, costs: list[float], log: list[str], clock: list[float]):
        self.name, self.costs, self.log, self.clock = name, list(costs), log, clock

    def __call__(self) -> float:
        self.log.append(self.name)
        self.clock[0] += 1.0
        return self.costs.pop(0) if len(self.costs) > 1 else self.costs[0]


def test_interleave_alternates_ab_then_ba() -> None:
    log: list[str] = []
    now = [0.0]
    a = Scripted("A", [2.0], log, now)
    b = Scripted("B", [1.0], log, now)
    run = interleave(a, b, precision=0.05, max_time_s=1e9, clock=lambda: now[0])
    assert "".join(log[:8]) == "ABBAABBA"
    assert run.orders[:4] == ["AB", "BA", "AB", "BA"]
    # Constant costs: the interval is exact, so it stops at the minimum of 6 pairs.
    assert run.reached and len(run.pairs) == 6
    assert run.result is not None and run.result.ratio == pytest.approx(2.0)


def test_interleave_cancels_a_drift_shared_by_both_sides() -> None:
    # The machine slows down by 10% per round; both sides see it within a pair.
    log: list[str] = []
    now = [0.0]
    drift = [1.1**i for i in range(400)]
    a = Scripted("A", [1.3 * d for d in drift for _ in (0, 1)], log, now)
    b = Scripted("B", [d for d in drift for _ in (0, 1)], log, now)
    run = interleave(a, b, precision=0.05, max_time_s=1e9, clock=lambda: now[0])
    assert run.result is not None
    assert run.result.ratio == pytest.approx(1.3)


def test_interleave_stops_at_the_time_cap_and_says_so() -> None:
    now = [0.0]
    noisy_a = iter([1.0, 3.0] * 100)
    costs_b = iter([1.0] * 200)

    def a() -> float:
        now[0] += 1.0
        return next(noisy_a)

    def b() -> float:
        now[0] += 1.0
        return next(costs_b)

    run = interleave(a, b, precision=0.05, max_time_s=20.0, clock=lambda: now[0])
    assert not run.reached
    assert "time cap" in run.stopped
    assert len(run.pairs) == 10  # 2 clock ticks per pair


def test_json_round_trip() -> None:
    pr = paired_ratio([1.2, 1.1, 1.3, 1.25, 1.15, 1.2, 1.22], [1.0] * 7)
    data = pr.to_json()
    assert PairedRatio.from_json(data) == pr
    assert data["precision"] == pytest.approx(pr.precision)


def test_parse_gives_none_for_what_is_not_a_paired_ratio() -> None:
    assert PairedRatio.parse(None) is None
    assert PairedRatio.parse({"ratio": 1.0}) is None  # no interval: an older report
    pr = PairedRatio(1.3, 1.2, 1.4, 12, 0.96)
    assert PairedRatio.parse(pr.to_json()) == pr
